"""Stage ``reflect_response``: the teacher rewrites answers, giving A* for (Q, A) and A** for (Q*, A_Q*).

Reflection-Tuning (arXiv 2310.11716): the teacher critiques an answer (helpfulness,
relevance, accuracy, level of detail) and writes a better one. It runs on every original
row (variant ``response``: Q, A*) and on every ok ``instruction`` row (variant ``both``:
Q*, A**); a ``both`` row whose instruction variant is not ok is ``upstream_unusable``.
Each output file has one row per original row.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from reflection_tuning.io import read_jsonl, write_jsonl, write_metrics
from reflection_tuning.llm import status as st
from reflection_tuning.llm.runner import Outcome, api_key_from_env, run_step, status_metrics, token_metrics
from reflection_tuning.stages.common import PathSpec, Section, Stage
from reflection_tuning.teacher import TeacherConfig
from reflection_tuning.teacher.prompts import load_prompt
from reflection_tuning.teacher.reflect import check_rows, require_files, teacher_row
from reflection_tuning.teacher.steps import ReflectResponse

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Config:
    """The ``reflect_response:`` section: the prompt template and system prompt files."""

    prompt_file: str
    system_file: str

    def step(self) -> ReflectResponse:
        """The step with this section's prompt (``estimate`` builds its requests from it)."""
        return ReflectResponse(load_prompt(self.prompt_file, self.system_file))


@dataclass(frozen=True)
class Inputs:
    original: Path
    instruction: Path


@dataclass(frozen=True)
class Outputs:
    response: Path
    both: Path
    metrics: Path


def upstream_rows(originals: list[dict], reflected: dict[str, dict]) -> tuple[list[dict | None], list[dict]]:
    """The instruction row of every original (``None`` when missing), and the ok ones: the
    rows whose ``both`` variant is sent (``estimate`` uses this too)."""
    upstream = [reflected.get(r["id"]) for r in originals]
    return upstream, [u for u in upstream if u is not None and u.get("status") == st.OK]


def run(cfg: Config, teacher_cfg: TeacherConfig, inputs: Inputs, outputs: Outputs, api_key: str | None = None) -> dict:
    """Write the ``response`` and ``both`` rows and the metrics; return the metrics.

    Args:
        api_key: the teacher key (``main`` reads it from the environment); never written anywhere.

    Raises:
        UserError: an input or a prompt file is missing, or the embedded model directory.
        ValueError: a bad input row or template.
        RuntimeError, TimeoutError: the embedded teacher cannot start.
    """
    require_files("reflect_response", input=inputs.original, instruction=inputs.instruction,
                  prompt_file=cfg.prompt_file, system_file=cfg.system_file)
    step = cfg.step()
    originals = read_jsonl(inputs.original)
    check_rows(originals, str(inputs.original))
    reflected = {r["id"]: r for r in read_jsonl(inputs.instruction)}
    stale = set(reflected) - {r["id"] for r in originals}
    if stale:
        log.warning("%s: %d rows have no original row; ignored", inputs.instruction, len(stale))
    upstream, usable = upstream_rows(originals, reflected)
    done = run_step(step, teacher_cfg, originals + usable, api_key=api_key, desc="reflect_response")
    common = {"teacher_model": teacher_cfg.model, "template_hash": step.template_hash}
    response_out = done.outcomes[: len(originals)]
    response_rows = [teacher_row(o.row, "response", o, **common) for o in response_out]

    both_results = iter(done.outcomes[len(originals):])
    both_rows, both_out = [], []
    for row, up in zip(originals, upstream):
        if up is None or up.get("status") != st.OK:
            error = "no instruction row for this id" if up is None else f"instruction variant is {up.get('status')}"
            outcome = Outcome(row, st.UPSTREAM_UNUSABLE, reason=error, attempts=0)
        else:
            outcome = next(both_results)
            both_out.append(outcome)
        both_rows.append(teacher_row(outcome.row, "both", outcome, **common))

    write_jsonl(outputs.response, response_rows)
    write_jsonl(outputs.both, both_rows)
    metrics = {
        "rows_in": len(originals),
        **status_metrics(response_out, prefix="response_rows_"),
        **status_metrics(both_out, prefix="both_rows_", statuses_of=[r["status"] for r in both_rows]),
        **done.stats,
        **token_metrics(done.outcomes, teacher_cfg.price_usd()),
    }
    write_metrics(outputs.metrics, metrics)
    log.info("reflect_response: %d rows in; response %d ok; both %d ok, %d upstream unusable",
             len(originals), metrics["response_rows_ok"], metrics["both_rows_ok"],
             metrics["both_rows_upstream_unusable"])
    return metrics


STAGE = Stage(
    "reflect_response", __doc__,
    sections=(Section(TeacherConfig, "teacher"), Section(Config, "reflect_response")),
    inputs={"original": PathSpec("data/{dataset}/original.jsonl", flag="input"),
            "instruction": "data/{dataset}/instruction.jsonl"},
    outputs={"response": PathSpec("data/{dataset}/response.jsonl", flag="output_response"),
             "both": PathSpec("data/{dataset}/both.jsonl", flag="output_both"),
             "metrics": "metrics/{dataset}/reflect_response.json"},
)


def main(argv: list[str] | None = None) -> int:
    call = STAGE.parse(argv)
    teacher_cfg, cfg = call.configs
    run(cfg, teacher_cfg, Inputs(**call.inputs), Outputs(**call.outputs),
        api_key=api_key_from_env(teacher_cfg, dict(os.environ)))
    return 0
