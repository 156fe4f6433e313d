"""Teacher dispatch throughput: this sliding window against the reference scheme and sequential calls.

The same real Alpaca rows are sent as ``reflect_instruction`` requests to the embedded
teacher (``transformers serve --continuous-batching``), cache off, four ways:

- ``window@10``: this project's sliding window, 10 requests in flight;
- ``reference@10``: tianyi-lab/Reflection_Tuning's scheme: batches of 10, each gathered and
  waited for before the next is sent (the slowest reply of a batch holds the other 9 slots);
- ``window@default``: the sliding window at ``teacher.max_concurrency`` (8);
- ``sequential``: one request at a time.

Only the dispatch differs: every scheme uses the same client, server and requests. Prints
the median completion tokens/s of ``--repeats`` alternating runs (``harness.py``) and the
ratios; ``ratio:`` is window@10 / reference@10 (target >= 1.5); window@default / sequential
(target >= 4) is printed above it.

    python benchmarks/teacher_throughput.py     # 32 rows, 128 tokens, 3 repeats: ~20 min on an idle 2-core CPU
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import statistics
import time
from pathlib import Path

from reflection_tuning.config import section_config
from reflection_tuning.rows import canonical
from reflection_tuning.llm.config import EndpointConfig
from reflection_tuning.llm.client import Completion, Teacher
from reflection_tuning.steps.reflect_instruction import ReflectInstruction
from reflection_tuning.llm.server import embedded_server

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "alpaca" / "cherry_alpaca_5_percent.json"


def requests(rows: int) -> list[list[dict[str, str]]]:
    records = json.loads(DATA.read_text(encoding="utf-8"))[:rows]
    step = ReflectInstruction.shipped()
    return [step.format_input(canonical(r["instruction"], r.get("input", ""), r["output"], "cherry_alpaca"))
            for r in records]


async def window(teacher: Teacher, batch) -> list[Completion]:
    return list(await asyncio.gather(*(teacher.complete(m) for m in batch)))


async def reference(teacher: Teacher, batch, size: int) -> list[Completion]:
    out: list[Completion] = []
    for start in range(0, len(batch), size):  # send a batch, wait for all of it, then the next
        out += await asyncio.gather(*(teacher.complete(m) for m in batch[start : start + size]))
    return out


def timed(cfg: EndpointConfig, url: str, batch, scheme: str, size: int) -> tuple[float, int]:
    teacher = Teacher(cfg, template_hash="bench", base_url=url)

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
    parser.add_argument("--model", default=str(REPO / "models/smollm2-135m-instruct"))
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
    base = section_config(EndpointConfig, "teacher", REPO / "params.yaml", model=args.model, max_tokens=args.max_tokens, cache_dir=None, timeout=1800, max_retries=0)
    batch = requests(args.rows)
    plans = {"window@10": ("window", 10), "reference@10": ("reference", args.reference_batch),
             "window@default": ("window", default), "sequential": ("window", 1)}
    schemes = args.schemes.split(",")
    peak = max(plans[s][1] for s in schemes)
    # the KV cache holds every request in flight at the widest scheme
    tokens = 2 * peak * (max(sum(len(m["content"]) for m in msgs) for msgs in batch) // 3 + 64 + args.max_tokens)
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
        with embedded_server(args.model, seed=0, kv_cache_tokens=tokens) as url:
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
