"""Teacher throughput: the embedded server against ``transformers serve``, and this sliding window
against the reference scheme and sequential calls.

``--servers``: the same real Alpaca rows, sent as ``reflect_instruction`` requests (the
stage's reply format and window, cache off), to the embedded llama.cpp server and to
``transformers serve --continuous-batching`` (the ``bench`` extra) on the same model, one
server at a time, alternating; ``ratio:`` is llama.cpp / transformers serve completion
tokens/s (target >= 2).

Otherwise the rows go to the embedded server, cache off, four ways:

- ``window@10``: this project's sliding window, 10 requests in flight;
- ``reference@10``: tianyi-lab/Reflection_Tuning's scheme: batches of 10, each gathered and
  waited for before the next is sent (the slowest reply of a batch holds the other 9 slots);
- ``window@default``: the sliding window at ``teacher.max_concurrency`` (8);
- ``sequential``: one request at a time.

Only the dispatch differs: every scheme uses the same client, server and requests. Prints
the median completion tokens/s of ``--repeats`` alternating runs (``harness.py``) and the
ratios; ``ratio:`` is window@10 / reference@10 (target >= 1.5); window@default / sequential
(target >= 4) is printed above it.

    python benchmarks/teacher_throughput.py --servers --repeats 2   # 32 rows, 128 tokens
    python benchmarks/teacher_throughput.py             # 32 rows, 128 tokens, 3 repeats
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from reflection_tuning.infra.config import section_config
from reflection_tuning.llm.cache import Completion
from reflection_tuning.llm.config import EndpointConfig
from reflection_tuning.llm.server import HOST, _healthy, embedded_server, free_port, slot_context
from reflection_tuning.llm.session import Session
from reflection_tuning.rows import canonical
from reflection_tuning.steps.reflect_instruction import ReflectInstruction

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "alpaca" / "cherry_alpaca_5_percent.json"


def requests(rows: int) -> list[list[dict[str, str]]]:
    records = json.loads(DATA.read_text(encoding="utf-8"))[:rows]
    step = ReflectInstruction.shipped()
    return [step.format_input(canonical(r["instruction"], r.get("input", ""), r["output"], "cherry_alpaca"))
            for r in records]


async def window(teacher: Session, batch) -> list[Completion]:
    return list(await asyncio.gather(*(teacher.complete(m) for m in batch)))


async def reference(teacher: Session, batch, size: int) -> list[Completion]:
    out: list[Completion] = []
    for start in range(0, len(batch), size):  # send a batch, wait for all of it, then the next
        out += await asyncio.gather(*(teacher.complete(m) for m in batch[start : start + size]))
    return out


@contextlib.contextmanager
def transformers_serve(model_dir: str, *, concurrency: int, slot_tokens: int, device: str = "cpu") -> Iterator[str]:
    """``transformers serve --continuous-batching`` on a free loopback port, its KV cache sized
    for ``concurrency`` requests of ``slot_tokens`` each (transformers sizes it from free host
    memory otherwise, which on CPU makes every step slower; on CUDA it sizes it itself). Yields
    its OpenAI base URL."""
    port = free_port()
    pages = -(-2 * concurrency * slot_tokens // 256)  # 256-token pages, twice the work for headroom
    cmd = [str(Path(sys.executable).parent / "transformers"), "serve", model_dir, "--continuous-batching",
           "--host", HOST, "--port", str(port), "--device", device, "--default-seed", "0"]
    if device == "cpu":
        cmd += ["--cb-num-blocks", str(pages), "--cb-max-batch-tokens", "1024"]
    log = tempfile.NamedTemporaryFile(prefix="transformers-serve-", suffix=".log", delete=False)  # noqa: SIM115 - the server writes it until it stops
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    try:
        started = time.monotonic()
        while not _healthy(f"http://{HOST}:{port}/health"):
            if proc.poll() is not None or time.monotonic() - started > 300:
                raise RuntimeError(f"transformers serve did not start; log {log.name}")
            time.sleep(0.5)
        yield f"http://{HOST}:{port}/v1"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)


def compare_servers(args, base: EndpointConfig, batch) -> None:
    """Completion tokens/s of the embedded llama.cpp server (at each of ``--threads``) and of
    ``transformers serve``, each with the stage's window (``teacher.max_concurrency``), on the
    same requests. ``ratio:`` is llama.cpp at its default threads over transformers serve."""
    from harness import Bench

    from reflection_tuning.llm.server import decode_threads
    from reflection_tuning.llm.stream import json_schema_format

    window_size = base.max_concurrency
    slot = slot_context(batch, args.max_tokens)
    gguf = str(REPO / "models/smollm2-135m-instruct.gguf")
    schema = (
        json_schema_format("reflect_instruction", ReflectInstruction.schema)
        if base.reply_format == "json_schema"
        else None
    )
    threads = sorted({decode_threads(), *(int(t) for t in args.threads.split(",") if t)})
    llama = {t: f"llama.cpp, {t} thread{'s' if t > 1 else ''}" for t in threads}
    bench = Bench("teacher_throughput --servers", {"requests": f"{args.rows} real Alpaca rows",
                                                  "max_tokens": args.max_tokens, "in_flight": window_size,
                                                  "reply_format": base.reply_format, "repeats": args.repeats,
                                                  "default_threads": decode_threads()})
    rates: dict[str, list[float]] = {}
    with contextlib.ExitStack() as stack:
        urls = {llama[t]: stack.enter_context(embedded_server(gguf, parallel=window_size, slot_ctx=slot, threads=t))
                for t in threads}
        # transformers serve ignores response_format: it gets the same messages, answered in free text
        urls["transformers serve"] = stack.enter_context(transformers_serve(args.model, concurrency=window_size,
                                                                            slot_tokens=slot))

        def side(name: str) -> int:
            cfg = dataclasses.replace(base, max_concurrency=window_size)
            fmt = None if name == "transformers serve" else schema
            seconds, completion = timed(cfg, urls[name], batch, "window", window_size, response_format=fmt)
            rates.setdefault(name, []).append(completion / seconds)
            return completion

        for name in urls:  # warm-up: load the weights, fill the caches
            timed(dataclasses.replace(base, max_concurrency=2), urls[name], batch[:2], "window", 2)
        bench.alternate({name: (lambda name=name: side(name)) for name in urls}, args.repeats)
    rate = {k: statistics.median(v) for k, v in rates.items()}
    for name, r in rate.items():
        print(f"{name:<24} median {r:7.1f} completion tokens/s")
    bench.finish(rate[llama[decode_threads()]] / rate["transformers serve"], ">= 2", args.json,
                 **{f"tokens_per_s_{k}": round(v, 1) for k, v in rate.items()})


def timed(cfg: EndpointConfig, url: str, batch, scheme: str, size: int,
          response_format: dict | None = None) -> tuple[float, int]:
    teacher = Session(cfg, template_hash="bench", base_url=url, response_format=response_format)

    async def go():
        try:
            if scheme == "reference":
                return await reference(teacher, batch, size)
            return await window(teacher, batch)
        finally:
            await teacher.aclose()

    t0 = time.perf_counter()
    replies = asyncio.run(go())
    return time.perf_counter() - t0, sum(r.completion_tokens for r in replies)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(REPO / "models/smollm2-135m-instruct.gguf"),
                        help="the embedded server's GGUF (with --servers: transformers serve's model directory)")
    parser.add_argument("--servers", action="store_true",
                        help="llama.cpp against transformers serve, at the stage's window")
    parser.add_argument("--threads", default="1,2", help="with --servers: llama.cpp decoding threads to compare "
                        "(the default, every core but one, is always run)")
    parser.add_argument("--base-url", default=None, help="an OpenAI-compatible endpoint (default: embedded server)")
    parser.add_argument("--rows", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--reference-batch", type=int, default=10)
    parser.add_argument("--schemes", default="window@10,reference@10,window@default,sequential")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each scheme, alternating; median kept")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()

    from harness import Bench

    default = section_config(EndpointConfig, "teacher", REPO / "params.yaml").max_concurrency
    base = section_config(
        EndpointConfig,
        "teacher",
        REPO / "params.yaml",
        model=args.model,
        max_tokens=args.max_tokens,
        cache_dir=None,
        timeout=1800,
        max_retries=0,
        embedded_sampling=None,  # the same requests to every server (transformers serve refuses llama.cpp's fields)
    )
    batch = requests(args.rows)
    if args.servers:
        if args.model.endswith(".gguf"):
            args.model = str(REPO / "models/smollm2-135m-instruct")
        compare_servers(args, base, batch)
        return
    plans = {"window@10": ("window", 10), "reference@10": ("reference", args.reference_batch),
             "window@default": ("window", default), "sequential": ("window", 1)}
    schemes = args.schemes.split(",")
    peak = max(plans[s][1] for s in schemes)
    slot = slot_context(batch, args.max_tokens)
    bench = Bench("teacher_throughput", {"model": args.model, "requests": f"{args.rows} real Alpaca rows",
                                        "max_tokens": args.max_tokens, "schemes": args.schemes,
                                        "repeats": args.repeats}, "cpu" if args.base_url is None else args.base_url)
    rates: dict[str, list[float]] = {}

    def side(name: str, url: str):
        scheme, size = plans[name]
        seconds, completion = timed(dataclasses.replace(base, max_concurrency=size), url, batch, scheme, size)
        rates.setdefault(name, []).append(completion / seconds)
        return completion

    def run_all(url: str) -> None:
        timed(dataclasses.replace(base, max_concurrency=2), url, batch[:2], "window", 2)  # warm-up
        bench.alternate({name: (lambda name=name: side(name, url)) for name in schemes}, args.repeats)

    if args.base_url:
        run_all(args.base_url)
    else:
        with embedded_server(args.model, parallel=peak, slot_ctx=slot) as url:
            run_all(url)
    # completion tokens differ a little between schemes (sampling): rates, not times, are compared
    rate = {k: statistics.median(v) for k, v in rates.items()}
    for name in schemes:
        print(f"{name:<16} median {rate[name]:7.1f} completion tokens/s")
    if "window@default" in rate and "sequential" in rate:
        print(f"window@{default} / sequential:  {rate['window@default'] / rate['sequential']:.2f}x  (target >= 4x)")
    if "window@10" in rate and "reference@10" in rate:
        bench.finish(rate["window@10"] / rate["reference@10"], ">= 1.5", args.json,
                     **{f"tokens_per_s_{k}": round(v, 1) for k, v in rate.items()})
    else:
        bench.finish(float("nan"), ">= 1.5 (window@10 / reference@10 not both run)", args.json)


if __name__ == "__main__":
    main()
