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
from reflection_tuning.rows import STATUS_OK
from reflection_tuning.stages.common import Section, parse_stage_args, resolve_paths, stage_parser
from reflection_tuning.teacher import TeacherConfig
from reflection_tuning.teacher.parse import parse_response_reply
from reflection_tuning.teacher.prompts import load_prompt
from reflection_tuning.teacher.reflect import (
    STATUS_UPSTREAM_UNUSABLE,
    api_key_from_env,
    check_rows,
    outcome_row,
    require_files,
    send_all,
    status_metrics,
    teacher_row,
    token_metrics,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Config:
    """The ``reflect_response:`` section: the prompt template and system prompt files."""

    template: str = "prompts/reflect_response.txt"
    system: str = "prompts/reflect_response.system.txt"


@dataclass(frozen=True)
class Inputs:
    original: Path
    instruction: Path


@dataclass(frozen=True)
class Outputs:
    response: Path
    both: Path
    metrics: Path


def _keeper(row: dict):
    """The fields of an ok row: ``row``'s instruction and input, the teacher's better answer."""
    return lambda parsed: {"instruction": row["instruction"], "input": row.get("input") or "", "output": parsed["output"]}


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
                  template=cfg.template, system=cfg.system)
    prompt = load_prompt(cfg.template, cfg.system)
    originals = read_jsonl(inputs.original)
    check_rows(originals, str(inputs.original))
    reflected = {r["id"]: r for r in read_jsonl(inputs.instruction)}
    stale = set(reflected) - {r["id"] for r in originals}
    if stale:
        log.warning("%s: %d rows have no original row; ignored", inputs.instruction, len(stale))
    upstream = [reflected.get(r["id"]) for r in originals]
    usable = [u for u in upstream if u is not None and u.get("status") == STATUS_OK]
    batch = [prompt.messages(r["instruction"], r.get("input") or "", r["output"]) for r in originals]
    batch += [prompt.messages(u["instruction"], u.get("input") or "", u["output"]) for u in usable]
    results, stats = send_all(teacher_cfg, batch, template_hash=prompt.hash, api_key=api_key, desc="reflect_response")
    common = {"teacher_model": teacher_cfg.model, "template_hash": prompt.hash}

    response_rows, response_parsed = [], []
    for row, result in zip(originals, results[: len(originals)]):
        new, p = outcome_row(row, "response", result, parse_response_reply, _keeper(row),
                             max_tokens=teacher_cfg.max_tokens, **common)
        response_rows.append(new)
        response_parsed.append(p)

    both_results = iter(results[len(originals):])
    both_rows, both_parsed = [], []
    for row, up in zip(originals, upstream):
        if up is None or up.get("status") != STATUS_OK:
            error = "no instruction row for this id" if up is None else f"instruction variant is {up.get('status')}"
            both_rows.append(teacher_row(row, "both", status=STATUS_UPSTREAM_UNUSABLE, error=error, **common))
            both_parsed.append(None)
            continue
        new, p = outcome_row(up, "both", next(both_results), parse_response_reply, _keeper(up),
                             max_tokens=teacher_cfg.max_tokens, **common)
        both_rows.append(new)
        both_parsed.append(p)

    write_jsonl(outputs.response, response_rows)
    write_jsonl(outputs.both, both_rows)
    metrics = {
        "rows_in": len(originals),
        **status_metrics(response_rows, response_parsed, prefix="response_"),
        **status_metrics(both_rows, both_parsed, prefix="both_"),
        **stats,
        **token_metrics(results, teacher_cfg.price_usd()),
    }
    write_metrics(outputs.metrics, metrics)
    log.info("reflect_response: %d rows in; response %d ok; both %d ok, %d upstream unusable",
             len(originals), metrics["response_rows_ok"], metrics["both_rows_ok"],
             metrics["both_rows_upstream_unusable"])
    return metrics


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser("reflect_response", __doc__)
    parser.add_argument("--input", type=Path, default=None, help="original rows (default data/K/original.jsonl)")
    parser.add_argument("--instruction", type=Path, default=None, help="default data/K/instruction.jsonl")
    parser.add_argument("--output-response", type=Path, default=None, help="default data/K/response.jsonl")
    parser.add_argument("--output-both", type=Path, default=None, help="default data/K/both.jsonl")
    parser.add_argument("--metrics", type=Path, default=None, help="default metrics/K/reflect_response.json")
    args, (teacher_cfg, cfg), _ = parse_stage_args(
        parser, [Section(TeacherConfig, "teacher"), Section(Config, "reflect_response")], argv
    )
    paths = resolve_paths(parser, args, {
        "input": "data/{dataset}/original.jsonl",
        "instruction": "data/{dataset}/instruction.jsonl",
        "output_response": "data/{dataset}/response.jsonl",
        "output_both": "data/{dataset}/both.jsonl",
        "metrics": "metrics/{dataset}/reflect_response.json",
    })
    api_key = api_key_from_env(teacher_cfg, dict(os.environ))
    run(cfg, teacher_cfg, Inputs(original=paths["input"], instruction=paths["instruction"]),
        Outputs(response=paths["output_response"], both=paths["output_both"], metrics=paths["metrics"]),
        api_key=api_key)
    return 0
