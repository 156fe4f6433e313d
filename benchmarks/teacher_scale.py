"""Teacher stage at scale: ``reflect_instruction`` against an instant OpenAI-compatible endpoint.

What grows with the number of rows when the teacher costs nothing: the stage's own work
(reading, prompting, dispatch, parsing, writing). For each size, synthetic-but-distinct
rows are made from the real Alpaca file (row ``i`` is Alpaca row ``i mod 3111`` with the
copy number appended to its instruction, so every id differs), and ``reflect_instruction``'s
``run`` sends them all to a local aiohttp server that answers every chat completion at
once with a reply the stage parses. The server runs in its own process and each size in a
fresh (spawned) process, so the peak RSS printed is the stage's alone.

Prints requests/s and peak RSS per size, then ``ratio:`` lines against the targets of
issue 14: peak RSS <= 1 GB at 200k requests, >= 300 requests/s. ``--ceiling N`` also sends
the stage's own requests for N rows through the openai SDK alone (no stage: no parsing,
cache, statuses or writing), at the same concurrency against the same endpoint, with the
SDK's default httpx transport and with its aiohttp one (the stage's): the most the client
library gives on this machine, so the share of it the stage's own work leaves, and what
the transport is worth.

    python benchmarks/teacher_scale.py --sizes 2000,10000        # small: a shared machine
    python benchmarks/teacher_scale.py                           # 10k, 50k, 200k
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing as mp
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "alpaca" / "cherry_alpaca_5_percent.json"
RSS_TARGET_MB = 1024
RATE_TARGET = 300.0
RSS_TARGET_AT = 200_000


def _reply(messages: list[dict]) -> str:
    """A reply in the format the instruction prompt asks for, distinct per request."""
    tag = hashlib.sha256(json.dumps(messages).encode()).hexdigest()[:12]
    return (f"[New Instruction] Explain, step by step and with an example, the idea in request {tag}. [End]\n"
            f"[New Answer] Here is a detailed, step-by-step explanation of request {tag}, with an example. [End]")


def _serve(port_queue: mp.Queue) -> None:  # type: ignore[type-arg]
    """The instant endpoint: POST /v1/chat/completions, answered at once (runs in its own process)."""
    import asyncio

    from aiohttp import web

    async def completions(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        text = _reply(body["messages"])
        if body.get("stream"):  # the teacher streams: one content chunk, one finish chunk with usage, [DONE]
            base = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": int(time.time()),
                    "model": body.get("model", "bench")}
            chunks = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": text},
                                            "finish_reason": None}]},
                      {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                       "usage": {"prompt_tokens": 200, "completion_tokens": 40, "total_tokens": 240}}]
            sse = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
            return web.Response(text=sse, content_type="text/event-stream")
        return web.json_response({
            "id": "chatcmpl-bench", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", "bench"),
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": 200, "completion_tokens": 40, "total_tokens": 240},
        })

    async def main() -> None:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", completions)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        port_queue.put(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        await asyncio.Event().wait()

    asyncio.run(main())


def _write_rows(path: Path, size: int) -> None:
    """``size`` distinct canonical rows from the real Alpaca file, written one line at a time."""
    from reflection_tuning.rows import canonical

    records = json.loads(DATA.read_text(encoding="utf-8"))
    with open(path, "w", encoding="utf-8") as f:
        for i in range(size):
            r = records[i % len(records)]
            copy = i // len(records)
            instruction = r["instruction"] if copy == 0 else f"{r['instruction']} (copy {copy})"
            row = canonical(instruction, r.get("input", ""), r["output"], "bench", input_mode="merge")
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def _prompt_files():
    """The shipped ``reflect_instruction`` prompt files (the stage's ``Config``)."""
    from reflection_tuning.stages.reflect_instruction import Config
    from reflection_tuning.steps.reflect_instruction import ReflectInstruction

    return Config(*(str(p) for p in ReflectInstruction.template_files()))


def _run_size(url: str, rows: str, concurrency: int, out: mp.Queue) -> None:  # type: ignore[type-arg]
    """One size in a fresh process: run the stage, report (seconds, rows ok, peak RSS in MB)."""
    import logging

    from reflection_tuning.infra.config import section_config
    from reflection_tuning.llm.config import EndpointConfig
    from reflection_tuning.stages.reflect_instruction import Inputs, Outputs, run

    logging.basicConfig(level=logging.WARNING)
    teacher = section_config(
        EndpointConfig,
        "teacher",
        REPO / "params.yaml",
        model="bench",
        base_url=url,
        api_key_env=None,
        cache_dir=None,
        max_concurrency=concurrency,
        max_retries=0,
        timeout=120,
    )
    work = Path(rows).parent
    cfg = _prompt_files()
    t0 = time.perf_counter()
    metrics = run(cfg, teacher, Inputs(original=Path(rows)),
                  Outputs(instruction=work / "instruction.jsonl", metrics=work / "metrics.json"))
    seconds = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    out.put((seconds, metrics.get("rows_ok", 0), peak_mb))


def _sdk_ceiling(url: str, rows: str, concurrency: int, transport: str, out: mp.Queue) -> None:  # type: ignore[type-arg]
    """The stage's own requests for ``rows`` (its ``format_input``) streamed through
    ``openai.AsyncOpenAI`` alone, ``concurrency`` in flight, each read to its end, with the
    ``httpx`` (the SDK's default) or ``aiohttp`` transport; reports the seconds (runs in a
    fresh process)."""
    import asyncio

    import openai

    from reflection_tuning.infra.io import read_jsonl
    from reflection_tuning.rows import FIELDS
    from reflection_tuning.steps.reflect_instruction import ReflectInstruction

    step = ReflectInstruction(_prompt_files().prompt(FIELDS))
    batch = [step.format_input(r) for r in read_jsonl(rows)]

    async def go() -> float:
        http = openai.DefaultAioHttpClient() if transport == "aiohttp" else None
        client = openai.AsyncOpenAI(base_url=url, api_key="unused", max_retries=0, http_client=http)
        window = asyncio.Semaphore(concurrency)

        async def one(messages: list[dict]) -> None:
            async with window:
                stream = await client.chat.completions.create(
                    model="bench", messages=messages, stream=True, stream_options={"include_usage": True})
                async for _ in stream:
                    pass

        t0 = time.perf_counter()
        await asyncio.gather(*(one(m) for m in batch))
        seconds = time.perf_counter() - t0
        await client.close()
        return seconds

    out.put(asyncio.run(go()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,50000,200000", help="comma-separated row counts")
    parser.add_argument("--concurrency", type=int, default=64, help="requests in flight (teacher.max_concurrency)")
    parser.add_argument("--ceiling", type=int, default=5000, help="requests for the SDK-alone ceiling (0: skip)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]

    ctx = mp.get_context("spawn")
    ports: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    server = ctx.Process(target=_serve, args=(ports,), daemon=True)
    server.start()
    try:
        url = f"http://127.0.0.1:{ports.get(timeout=60)}/v1"
        results = {}
        for size in sizes:
            with tempfile.TemporaryDirectory() as tmp:
                rows = Path(tmp) / "original.jsonl"
                _write_rows(rows, size)
                out: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
                child = ctx.Process(target=_run_size, args=(url, str(rows), args.concurrency, out))
                child.start()
                seconds, ok, peak = out.get()
                child.join()
            results[size] = (seconds, ok, peak)
            print(f"reflect_instruction {size:>8} requests  in flight {args.concurrency}  {seconds:8.1f} s  "
                  f"{size / seconds:7.1f} req/s  peak RSS {peak:7.1f} MB  rows ok {ok}", flush=True)
        ceiling = {}
        if args.ceiling:
            with tempfile.TemporaryDirectory() as tmp:
                rows = Path(tmp) / "original.jsonl"
                _write_rows(rows, args.ceiling)
                for transport in ("httpx", "aiohttp"):
                    out = ctx.Queue()  # type: ignore[assignment]
                    child = ctx.Process(target=_sdk_ceiling, args=(url, str(rows), args.concurrency, transport, out))
                    child.start()
                    ceiling[transport] = args.ceiling / out.get()
                    child.join()
                    print(f"openai SDK alone   {args.ceiling:>8} requests  in flight {args.concurrency}  "
                          f"{ceiling[transport]:7.1f} req/s ({transport} transport; the stage's own requests)",
                          flush=True)
    finally:
        server.terminate()
        server.join()

    largest = max(results)
    seconds, _, peak = results[largest]
    rate = min(size / s for size, (s, _, _) in results.items())
    note = "" if largest >= RSS_TARGET_AT else f" (measured at {largest} requests, target is at {RSS_TARGET_AT})"
    print(f"\nratio: peak RSS / target = {peak:.0f} MB / {RSS_TARGET_MB} MB = {peak / RSS_TARGET_MB:.2f}  "
          f"(target <= 1.00){note}")
    print(
        f"ratio: slowest req/s / target = {rate:.0f} / {RATE_TARGET:.0f} = {rate / RATE_TARGET:.2f}  (target >= 1.00)"
    )
    if ceiling:
        print(f"ratio: slowest req/s / openai SDK alone (aiohttp, the stage's transport) = {rate:.0f} / "
              f"{ceiling['aiohttp']:.0f} = {rate / ceiling['aiohttp']:.2f}  (the share of the library's ceiling "
              "the stage keeps)")
        print(f"ratio: openai SDK alone, aiohttp / httpx transport = {ceiling['aiohttp']:.0f} / "
              f"{ceiling['httpx']:.0f} = {ceiling['aiohttp'] / ceiling['httpx']:.2f}")
    if len(results) > 1:
        smallest = min(results)
        growth = (results[largest][2] - results[smallest][2]) / (largest - smallest) * 1024
        print(f"peak RSS growth: {growth:.2f} KB per row between {smallest} and {largest} rows")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
