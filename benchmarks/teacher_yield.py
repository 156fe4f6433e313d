"""Yield of the embedded teacher: how many replies parse, per step and per prompt/re-ask setting.

The 16 default rows (``fetch`` of ``../shared/data/alpaca/cherry_alpaca_5_percent.json`` with
the default ``limit: 16, seed: 0``) go through ``reflect_instruction`` and ``reflect_response``
(the ``response`` variant: the original rows) on the embedded SmolLM2-135M teacher, with:

- ``markers-old``: the marker-only prompts this project had before (``git show <rev>:prompts/…``),
  alone and with the two re-asks below;
- ``critique``: the critique-first prompts (reference structure), at ``--max-tokens`` and ``--long``;
- ``+reask``: ``reask: 1`` (seed + 1, ``reask_temperature`` 0.7, the same messages);
- ``+reask-feedback``: ``reask: 1`` with ``reask_feedback`` (the failed reply and why);
- ``+freq``: ``frequency_penalty`` (``transformers serve``: repetition penalty 1 + it).

Each setting starts its own server (continuous batching shares the first request's generation
config, so settings must not share a server). One request cache is shared: a ``+reask`` run
finds its first round cached from its base setting and pays only for the re-asks; its
``seconds`` are the base run's plus its own. Prints a markdown table and writes JSON.

    nice -n 10 python benchmarks/teacher_yield.py --out /tmp/yield.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import subprocess
import tempfile
import time
from pathlib import Path

from reflection_tuning.config import section_config
from reflection_tuning.llm.config import EndpointConfig
from reflection_tuning.llm.outcome import status_metrics
from reflection_tuning.llm.runner import run_step
from reflection_tuning.rows import FIELDS
from reflection_tuning.stages import fetch
from reflection_tuning.steps.prompt import HERE as STEPS_DIR
from reflection_tuning.steps.prompt import load_prompt
from reflection_tuning.steps.reflect_instruction import ReflectInstruction
from reflection_tuning.steps.reflect_response import ReflectResponse

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "alpaca" / "cherry_alpaca_5_percent.json"
STEPS = {"reflect_instruction": ReflectInstruction, "reflect_response": ReflectResponse}


def default_rows(work: Path, limit: int) -> list[dict]:
    """The rows ``fetch@alpaca`` samples with the default params (limit, seed 0)."""
    from reflection_tuning.io import read_jsonl

    out = fetch.Outputs(rows=work / "original.jsonl", rejects=work / "rejects.jsonl", metrics=work / "fetch.json")
    cfg = section_config(fetch.Config, "datasets.alpaca", REPO / "params.yaml", source=str(DATA), limit=limit, seed=0)
    fetch.run(cfg, out, name="alpaca")
    return read_jsonl(out.rows)


def old_prompts(rev: str, work: Path) -> Path:
    """The marker-only prompt files of ``rev`` (``prompts/<step>.txt`` in the ``{field}`` /
    ``{if input}…{endif}`` syntax), written under ``work/old`` as Jinja2 templates."""
    d = work / "old"
    d.mkdir(exist_ok=True)
    for step in STEPS:
        for suffix, out in ((".txt", ".j2"), (".system.txt", ".system.txt")):
            text = subprocess.run(["git", "-C", str(REPO), "show", f"{rev}:prompts/{step}{suffix}"],
                                  check=True, capture_output=True, text=True).stdout
            if out == ".j2":
                text = re.sub(r"\{if (\w+)\}", r"{% if \1.strip() %}", text).replace("{endif}", "{% endif %}")
                text = re.sub(r"\{(instruction|input|output)\}", r"{{ \1 }}", text)
            (d / f"{step}{out}").write_text(text, encoding="utf-8")
    return d


def settings(args) -> list[tuple[str, str, dict]]:
    """(name, prompt set, teacher overrides)."""
    long = {"max_tokens": args.long}
    return [
        ("markers-old", "old", {"max_tokens": args.max_tokens}),
        ("markers-old+reask", "old", {"max_tokens": args.max_tokens, "reask": 1}),
        ("markers-old+reask-feedback", "old", {"max_tokens": args.max_tokens, "reask": 1, "reask_feedback": True}),
        (f"critique@{args.max_tokens}", "new", {"max_tokens": args.max_tokens}),
        (f"critique@{args.long}", "new", long),
        (f"critique@{args.long}+reask", "new", {**long, "reask": 1}),
        (f"critique@{args.long}+reask-feedback", "new", {**long, "reask": 1, "reask_feedback": True}),
        (f"critique@{args.long}+freq{args.freq:g}", "new", {**long, "frequency_penalty": args.freq}),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=16)
    ap.add_argument("--model", type=Path, default=None, help="transformers dir (default: convert the embedded GGUF)")
    ap.add_argument("--old-rev", default="567f726", help="git revision of the marker-only prompts")
    ap.add_argument("--new-prompts", type=Path, default=STEPS_DIR,
                    help="directory of the critique-first prompts")
    ap.add_argument("--max-tokens", type=int, default=384)
    ap.add_argument("--long", type=int, default=768)
    ap.add_argument("--concurrency", type=int, default=None,
                    help="requests in flight (default: teacher.max_concurrency, as the stage)")
    ap.add_argument("--freq", type=float, default=0.1)
    ap.add_argument("--only", default="", help="comma-separated step:setting pairs to run, in this order "
                    "(default: every setting of every step)")
    ap.add_argument("--steps", default=",".join(STEPS))
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=Path("teacher_yield.json"))
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="teacher_yield_"))
    work.mkdir(parents=True, exist_ok=True)
    model = args.model
    if model is None:
        from reflection_tuning.stages.models import Config, Outputs, run

        model = work / "smollm2-135m-instruct"
        if not (model / "config.json").is_file():
            cfg = section_config(Config, "models", REPO / "params.yaml")
            run(cfg, Outputs(model_dir=model, metrics=work / "models.json"))
    rows = default_rows(work, args.rows)
    dirs = {"old": old_prompts(args.old_rev, work), "new": args.new_prompts}
    # No re-ask unless an arm asks for one: the params' own re-ask would hide the first try.
    base = section_config(EndpointConfig, "teacher", REPO / "params.yaml", model=str(model), cache_dir=str(work / "cache"),
                          timeout=3600, max_retries=1, reask=0, reask_feedback=False,
                          frequency_penalty=None)
    if args.concurrency is not None:
        base = dataclasses.replace(base, max_concurrency=args.concurrency)
    results = json.loads(args.out.read_text()) if args.out.is_file() else []
    done = {(r["step"], r["setting"]) for r in results}
    table = {name: (prompts, overrides) for name, prompts, overrides in settings(args)}
    plan = ([tuple(p.split(":", 1)) for p in args.only.split(",")] if args.only
            else [(s, name) for s in args.steps.split(",") for name in table])
    for step_name, name in plan:
        prompts, overrides = table[name]
        if (step_name, name) in done:
            continue
        d = dirs[prompts]
        step = STEPS[step_name](load_prompt(d / f"{step_name}.j2", d / f"{step_name}.system.txt", FIELDS))
        cfg = dataclasses.replace(base, **overrides)
        t0 = time.perf_counter()
        run = run_step(step, cfg, rows, desc=f"{step_name} {name}")
        seconds = time.perf_counter() - t0
        m = status_metrics(run.outcomes)
        replies = [c for o in run.outcomes for c in o.replies]
        base_name = name.split("+")[0]  # a re-ask run's first round is the base setting's, from the cache
        first_round = next((r for r in results if r["step"] == step_name and r["setting"] == base_name), None)
        if "reask" in name and first_round:
            seconds += first_round["seconds"]
        results.append({
            "step": step_name, "setting": name, "rows": len(rows), "ok": m["rows_ok"],
            "ok_first_try": m["rows_ok_first_try"], "ok_reasked": m["rows_ok_reasked"],
            "parse_error": m["rows_parse_error"], "truncated": m["rows_truncated"],
            "request_error": m["rows_request_error"], "seconds": round(seconds, 1),
            "completion_tokens_mean": round(sum(c.completion_tokens for c in replies) / max(len(replies), 1)),
            "requests_sent": run.stats["requests_sent"], "cache_hits": run.stats["cache_hits"],
        })
        print(json.dumps(results[-1]), flush=True)
        args.out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    cols = ("step", "setting", "ok", "ok_first_try", "ok_reasked", "parse_error", "truncated", "request_error",
            "seconds", "completion_tokens_mean")
    print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for r in results:
        print("| " + " | ".join(str(r[c]) for c in cols) + " |")


if __name__ == "__main__":
    main()
