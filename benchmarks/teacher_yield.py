"""Yield of the embedded teacher: the replies of each status, per step, sampler and prompt.

The measurement that chooses the embedded teacher's defaults (``teacher.embedded_sampling``,
and whether the prompt states the length bounds or carries an example). The 16 default rows
(``datasets.alpaca`` of ``params.yaml`` as ``fetch`` samples them: ``data/samples/alpaca.jsonl``,
limit 16, seed 0) go through one embedded llama.cpp server (the shipped GGUF,
``teacher.max_concurrency`` slots), with the teacher params of ``params.yaml`` but
``reply_format: json_schema`` and ``reask: 0`` (the first try is measured), in five arms:

- ``none``, ``dry``, ``dry+rep``: the sampler, ``embedded_sampling`` null, DRY 0.8 / allowed
  length 2, DRY + ``repeat_penalty`` 1.1; the steps' ``max_chars`` bounds are in the schema
  and stated in the prompt (``length_bounds: auto`` on the embedded server);
- on the best of these (most ok rows over the three steps, then fewest seconds):
  ``unstated``, the bounds in the schema only, not said in the prompt; ``one_shot``, one example
  exchange before the request (a user turn for :data:`EXAMPLE`, a row of the shipped data that
  is not among the 16, and a good JSON reply, :data:`SHOTS`).

Each arm runs ``reflect_instruction``, ``reflect_response`` (its ``response`` variant: the
originals) and ``both`` (``reflect_response`` on the rows ``reflect_instruction`` made ok), with
a cache of its own. Prints a markdown table (rows per status, seconds) and writes JSON.

    python benchmarks/teacher_yield.py --out /tmp/yield.json
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import tempfile
import time
from pathlib import Path
from unittest import mock

from reflection_tuning import status as st
from reflection_tuning.infra.config import section_config
from reflection_tuning.infra.io import read_jsonl
from reflection_tuning.llm.config import EndpointConfig
from reflection_tuning.llm.outcome import Tally
from reflection_tuning.llm.runner import run_step
from reflection_tuning.llm.server import embedded_server, slot_context
from reflection_tuning.readers import Config as DatasetConfig
from reflection_tuning.stages import fetch
from reflection_tuning.steps.prompt import PromptFiles
from reflection_tuning.steps.reflect_instruction import ReflectInstruction
from reflection_tuning.steps.reflect_response import ReflectResponse
from reflection_tuning.steps.rewrite import RewriteStep

log = logging.getLogger("teacher_yield")

REPO = Path(__file__).resolve().parents[1]
PARAMS = REPO / "params.yaml"
GGUF = REPO / "models" / "smollm2-135m-instruct.gguf"
DRY = {"dry_multiplier": 0.8, "dry_allowed_length": 2}
SAMPLERS = {"none": None, "dry": DRY, "dry+rep": {**DRY, "repeat_penalty": 1.1}}
PROMPTS = ("stated", "unstated", "one_shot")
STATUSES = (st.OK, st.TRUNCATED, st.REPETITIVE, st.COPY, st.PARSE_ERROR, st.REQUEST_ERROR)
STEPS = ("reflect_instruction", "reflect_response", "both")

# The one-shot example: row 36 of data/samples/alpaca.jsonl (not among the 16 default rows).
EXAMPLE = {"instruction": "Name a disease that is caused by an infectious organism.", "input": "",
           "output": "Tuberculosis is a disease caused by bacteria called Mycobacterium tuberculosis that is spread "
                     "through the air by coughing and sneezing. The disease is primarily found in the lungs but can "
                     "also affect other organs in the body. Symptoms can include fever, night sweats, weight loss "
                     "and tiredness."}
_TB = ("Tuberculosis (TB) is caused by the bacterium Mycobacterium tuberculosis. It spreads through the air: when a "
       "person with active TB of the lungs coughs, sneezes or speaks, others breathe in the bacteria. Most infected "
       "people keep the bacteria in check and have latent TB, with no symptoms and no risk to others; about one in "
       "ten later develops active disease, more often when the immune system is weak (HIV, diabetes, malnutrition). "
       "TB mostly attacks the lungs, but it can also reach the lymph nodes, bones, kidneys and brain. Active TB of "
       "the lungs causes a cough lasting three weeks or more, sometimes with blood, chest pain, fever, night sweats, "
       "weight loss and tiredness. It is diagnosed with a skin or blood test for the infection, a chest X-ray, and a "
       "sputum test that finds the bacteria. It is cured with several antibiotics taken together for at least six "
       "months; stopping early breeds drug-resistant TB. It is prevented by treating the sick early, ventilating "
       "rooms, testing close contacts, and the BCG vaccine for children.")
SHOTS = {
    "reflect_instruction": {
        "critique": "The instruction is too simple: it asks only for a name, so it needs little knowledge, no "
                    "detail and no reasoning, and any infectious disease answers it. The answer names "
                    "tuberculosis and its cause, but it is short: it says nothing of latent infection, "
                    "diagnosis, treatment or prevention. A weak instruction asked for little, so the answer gave "
                    "little.",
        "instruction": "Choose one disease caused by a bacterium, such as tuberculosis. Explain how the bacterium "
                       "spreads, why some infected people never fall ill, which organs it attacks, what symptoms "
                       "it causes, and how the disease is diagnosed, treated and prevented.",
        "output": _TB,
    },
    "reflect_response": {
        "critique": "The answer is relevant and accurate: tuberculosis is caused by Mycobacterium tuberculosis "
                    "and spreads through the air. It lacks detail: it does not say that most infections stay "
                    "latent, how the disease is diagnosed, or that antibiotics cure it.",
        "output": _TB,
    },
}


def default_rows(work: Path, limit: int) -> list[dict]:
    """The rows ``fetch@alpaca`` samples with the default params (``limit`` rows, seed 0)."""
    cfg = section_config(DatasetConfig, "datasets.alpaca", PARAMS, limit=limit, seed=0)
    if not Path(cfg.source).is_absolute():
        cfg = dataclasses.replace(cfg, source=str(REPO / cfg.source))
    out = fetch.Outputs(rows=work / "original.jsonl", rejects=work / "rejects.jsonl", metrics=work / "fetch.json")
    fetch.run(cfg, out, name="alpaca")
    return read_jsonl(out.rows)


def make_step(cls: type[RewriteStep], prompt: str) -> RewriteStep:
    """The shipped step with its params' checks, bounded (the embedded server); ``prompt``:
    ``stated`` as the stage sends it, ``unstated`` without the bounds sentence (the schema keeps
    the bounds), ``one_shot`` with the example exchange before the request."""
    checks = section_config(PromptFiles, cls.name, PARAMS).checks(True)
    step = cls.shipped(checks)
    if prompt == "unstated":
        step.format_input = cls.shipped(dataclasses.replace(checks, max_chars=None)).format_input
    elif prompt == "one_shot":
        stated, shot = step.format_input, json.dumps(SHOTS[cls.name], ensure_ascii=False)

        def format_input(row):
            example, messages = stated(EXAMPLE), stated(row)
            return [*messages[:-1], example[-1], {"role": "assistant", "content": shot}, messages[-1]]

        step.format_input = format_input
    return step


def measure(step: RewriteStep, cfg: EndpointConfig, rows: list[dict], label: str) -> tuple[dict, list]:
    """Run ``step`` on ``rows``: the table row (rows per status, seconds, tokens) and the outcomes."""
    t0 = time.perf_counter()
    outcomes = run_step(step, cfg, rows, desc=label).outcomes
    seconds = time.perf_counter() - t0
    tally = Tally()
    for o in outcomes:
        tally.add(o)
    m, tokens = tally.status_metrics(), tally.token_metrics()
    row = {"rows": len(rows), **{s: m[f"rows_{s}"] for s in STATUSES}, "seconds": round(seconds, 1),
           "completion_tokens_mean": round(tokens["completion_tokens"] / max(len(rows), 1))}
    log.info("%s: %s", label, json.dumps(row))
    return row, outcomes


def run_arm(arm: str, sampling: dict | None, prompt: str, base: EndpointConfig, rows: list[dict],
            work: Path) -> list[dict]:
    """The three steps of one arm, with a cache of its own."""
    cfg = dataclasses.replace(base, embedded_sampling=sampling, cache_dir=str(work / "cache" / arm))
    instruction, response = make_step(ReflectInstruction, prompt), make_step(ReflectResponse, prompt)
    made, outcomes = measure(instruction, cfg, rows, f"{arm} reflect_instruction")
    ok = [{**o.row, **o.fields} for o in outcomes if o.ok]  # the new pairs, for `both`
    runs = [("reflect_instruction", made), ("reflect_response", measure(response, cfg, rows, f"{arm} response")[0]),
            ("both", measure(response, cfg, ok, f"{arm} both")[0])]
    return [{"arm": arm, "embedded_sampling": sampling, "prompt": prompt, "step": s, **r} for s, r in runs]


def best_sampler(results: list[dict], arms: list[str]) -> str:
    """The sampler arm of ``arms`` with the most ok rows over the three steps; fewest seconds breaks a tie."""
    def score(arm: str) -> tuple[int, float]:
        mine = [r for r in results if r["arm"] == arm]
        return sum(r["ok"] for r in mine), -sum(r["seconds"] for r in mine)
    return max(arms, key=score)


def table(results: list[dict]) -> str:
    cols = ("arm", "step", "rows", *STATUSES, "seconds", "completion_tokens_mean")
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in results]
    lines += ["", "| arm | embedded_sampling | bounds in the prompt | ok (instruction / response / both) | seconds |",
              "|---|---|---|---|---|"]
    for arm in dict.fromkeys(r["arm"] for r in results):
        mine = {r["step"]: r for r in results if r["arm"] == arm}
        first = mine[STEPS[0]]
        said = {"stated": "stated", "unstated": "not stated", "one_shot": "stated, one-shot"}[first["prompt"]]
        oks = " / ".join(f"{mine[s]['ok']} of {mine[s]['rows']}" for s in STEPS)
        lines.append(f"| {arm} | {json.dumps(first['embedded_sampling'])} | {said} | {oks} | "
                     f"{sum(r['seconds'] for r in mine.values()):.0f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=16)
    ap.add_argument("--model", type=Path, default=GGUF, help="the GGUF the embedded server serves")
    ap.add_argument("--samplers", default=",".join(SAMPLERS), help="the sampler arms to run")
    ap.add_argument("--best", choices=tuple(SAMPLERS), default=None,
                    help="the sampler of the prompt arms (default: the best sampler arm measured)")
    ap.add_argument("--prompts", default="unstated,one_shot", help="the prompt arms on the best sampler ('' none)")
    ap.add_argument("--work", type=Path, default=None, help="rows and caches (default: a new temp dir)")
    ap.add_argument("--out", type=Path, default=Path("teacher_yield.json"))
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    work = args.work or Path(tempfile.mkdtemp(prefix="teacher_yield_"))
    work.mkdir(parents=True, exist_ok=True)
    rows = default_rows(work, args.rows)
    if EXAMPLE["instruction"] in {r["instruction"] for r in rows}:
        raise SystemExit("the one-shot example is one of the measured rows: pick another")
    base = section_config(EndpointConfig, "teacher", PARAMS, model=str(args.model), reply_format="json_schema",
                          reask=0, base_url="embedded")
    sizing = [make_step(cls, p).format_input(r) for cls in (ReflectInstruction, ReflectResponse) for p in PROMPTS
              for r in rows]
    results: list[dict] = []
    t0 = time.perf_counter()
    server = embedded_server(args.model, parallel=base.max_concurrency, slot_ctx=slot_context(sizing, base.max_tokens))
    # One server for every arm: for base_url embedded (what sends embedded_sampling) each step's
    # Session starts a server of its own, so it is handed this one's URL instead.
    with server as url, mock.patch("reflection_tuning.llm.server.embedded_server",
                                   lambda *a, **k: contextlib.nullcontext(url)):
        arms = args.samplers.split(",")
        for arm in arms:
            results += run_arm(arm, SAMPLERS[arm], "stated", base, rows, work)
        best = args.best or best_sampler(results, arms)
        log.info("prompt arms on the sampler %s", best)
        for prompt in filter(None, args.prompts.split(",")):
            results += run_arm(f"{best} {prompt}", SAMPLERS[best], prompt, base, rows, work)
    wall = round(time.perf_counter() - t0)
    out = {"rows": [r["id"] for r in rows], "best_sampler": best, "wall_seconds": wall,
           "example": EXAMPLE, "shots": SHOTS, "results": results}
    args.out.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    print(table(results))
    print(f"\nbest sampler: {best}; wall {wall} s; JSON {args.out}")


if __name__ == "__main__":
    main()
