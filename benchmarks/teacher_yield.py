"""Yield of the embedded teacher: how many replies are usable, per step, reply format and re-ask.

The 16 default rows (``fetch`` of ``../shared/data/alpaca/cherry_alpaca_5_percent.json`` with
the default ``limit: 16, seed: 0``) go through the embedded llama.cpp server (the shipped
GGUF, ``teacher.max_concurrency`` slots) with the teacher params of ``params.yaml``:

- ``reflect_instruction`` and ``reflect_response`` (its ``response`` variant: the original
  rows), and ``both`` (``reflect_response`` on the rows ``reflect_instruction`` made usable);
- ``markers`` (free text read by its markers, at ``--markers-max-tokens``: unbounded free text
  from a 135M model runs to the limit, and the params' limit is sized for the schema) against
  ``json_schema`` (the step's bounded schema as ``response_format``, at ``teacher.max_tokens``);
- ``reask 0`` against ``reask 1`` (seed + 1, ``reask_temperature``). A ``reask 1`` run finds
  its first round cached from its ``reask 0`` run and pays only for the re-asks: its
  ``seconds`` are the ``reask 0`` run's plus its own.

One server serves every arm (llama.cpp applies each request's own sampling parameters and
schema). Prints a markdown table (usable, parse_error, truncated, seconds) and writes JSON.

    python benchmarks/teacher_yield.py --out /tmp/yield.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

from reflection_tuning.infra.config import section_config
from reflection_tuning.llm.config import EndpointConfig
from reflection_tuning.llm.outcome import status_metrics
from reflection_tuning.llm.runner import run_step
from reflection_tuning.llm.server import embedded_server, slot_context
from reflection_tuning.stages import fetch
from reflection_tuning.steps.reflect_instruction import ReflectInstruction
from reflection_tuning.steps.reflect_response import ReflectResponse

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "alpaca" / "cherry_alpaca_5_percent.json"
GGUF = REPO / "models" / "smollm2-135m-instruct.gguf"
FORMATS = ("markers", "json_schema")
COLS = ("step", "reply_format", "max_tokens", "reask", "rows", "usable", "usable_first_try", "parse_error", "truncated",
        "request_error", "seconds", "completion_tokens_mean")


def default_rows(work: Path, limit: int) -> list[dict]:
    """The rows ``fetch@alpaca`` samples with the default params (limit, seed 0)."""
    from reflection_tuning.infra.io import read_jsonl

    out = fetch.Outputs(rows=work / "original.jsonl", rejects=work / "rejects.jsonl", metrics=work / "fetch.json")
    cfg = section_config(fetch.Config, "datasets.alpaca", REPO / "params.yaml", source=str(DATA), limit=limit, seed=0)
    fetch.run(cfg, out, name="alpaca")
    return read_jsonl(out.rows)


def measure(step, cfg: EndpointConfig, rows: list[dict], label: str) -> tuple[dict, list]:
    """Run ``step`` on ``rows``; returns the table row and the outcomes."""
    t0 = time.perf_counter()
    run = run_step(step, cfg, rows, desc=label)
    seconds = time.perf_counter() - t0
    m = status_metrics(run.outcomes)
    replies = [c for o in run.outcomes for c in o.replies if not c.cached]
    return {
        "rows": len(rows), "usable": m["rows_ok"], "usable_first_try": m["rows_ok_first_try"],
        "parse_error": m["rows_parse_error"], "truncated": m["rows_truncated"],
        "request_error": m["rows_request_error"], "seconds": round(seconds, 1),
        "completion_tokens_mean": round(sum(c.completion_tokens for c in replies) / max(len(replies), 1)),
    }, run.outcomes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=16)
    ap.add_argument("--model", type=Path, default=GGUF, help="the GGUF the embedded server serves")
    ap.add_argument("--formats", default=",".join(FORMATS))
    ap.add_argument("--markers-max-tokens", type=int, default=768)
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=Path("teacher_yield.json"))
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="teacher_yield_"))
    work.mkdir(parents=True, exist_ok=True)
    rows = default_rows(work, args.rows)
    base = section_config(EndpointConfig, "teacher", REPO / "params.yaml", model=str(args.model),
                          cache_dir=str(work / "cache"))
    instruction, response = ReflectInstruction.shipped(), ReflectResponse.shipped()
    sizing = [step.format_input(r) for step in (instruction, response) for r in rows]
    results = []
    with embedded_server(args.model, parallel=base.max_concurrency,
                         slot_ctx=slot_context(sizing, base.max_tokens)) as url:
        for fmt in args.formats.split(","):
            seconds_first: dict[str, float] = {}
            for reask in (0, 1):
                cfg = dataclasses.replace(base, base_url=url, reply_format=fmt, reask=reask)
                if fmt == "markers":
                    cfg = dataclasses.replace(cfg, max_tokens=args.markers_max_tokens)
                made, outcomes = measure(instruction, cfg, rows, f"reflect_instruction {fmt} reask {reask}")
                usable = [{**o.row, **o.fields} for o in outcomes if o.ok]  # the new pairs, for `both`
                arms = [
                    ("reflect_instruction", made),
                    ("reflect_response", measure(response, cfg, rows, "response")[0]),
                    ("both", measure(response, cfg, usable, "both")[0]),
                ]
                for step, row in arms:
                    key = f"{step}/{fmt}"
                    if reask == 0:
                        seconds_first[key] = row["seconds"]
                    else:
                        row["seconds"] = round(row["seconds"] + seconds_first[key], 1)
                    results.append({"step": step, "reply_format": fmt, "max_tokens": cfg.max_tokens, "reask": reask,
                                    **row})
                    print(json.dumps(results[-1]), flush=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    print("| " + " | ".join(COLS) + " |\n|" + "---|" * len(COLS))
    for r in results:
        print("| " + " | ".join(str(r[c]) for c in COLS) + " |")


if __name__ == "__main__":
    main()
