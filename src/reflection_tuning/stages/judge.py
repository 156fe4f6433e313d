"""Stage ``judge@<dataset>``: a pairwise LLM judge compares the SFT answers with the baseline's.

For every prompt in ``data/K/answers.jsonl`` the judge (any OpenAI-compatible endpoint, or
``base_url: embedded`` for the local llama.cpp server) scores both answers from 1 to 10
twice, once in each order, and :func:`reflection_tuning.steps.judge.combine` turns the two
judgements into a win, tie or lose for the fine-tuned student (a judgement that failed
makes the pair ``failed``, counted apart). The step (template, schema, parser, rule, row
shape) is :mod:`reflection_tuning.steps.judge`.

Outputs: ``data/K/judgements.jsonl`` (one row per prompt: ``id``, ``set``, ``outcome``,
``sft_scores`` and ``baseline_scores`` per order, ``judge_model``, ``template_hash`` and a
``judgements`` list with each order's ``status``, scores, ``raw_reply``, ``finish_reason``
and ``error``), ``metrics/K/judge.json`` (``judge_win`` … ``judge_winning_score`` with failed pairs
excluded, ``judge_winning_score_reference`` with a failed judgement scored -1 as the
reference does, the same per set as ``judge_<set>_…``, a count per judgement status, and request counters), and
``metrics/K/judge_plot.csv`` (``label,count,set,outcome`` for a horizontal bar plot).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from reflection_tuning.infra.command import PathSpec, Section, Stage
from reflection_tuning.infra.errors import UserError
from reflection_tuning.infra.io import read_jsonl, write_csv, write_jsonl, write_metrics
from reflection_tuning.llm.config import EndpointConfig, api_key
from reflection_tuning.llm.outcome import Tally
from reflection_tuning.llm.runner import run_step
from reflection_tuning.steps import judge as core

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Config:
    """The ``judge_step:`` section: the judge's prompt files, and the sets of its metric keys
    (every set in ``sets`` gets its keys, judged or not, so the keys are stable across runs).
    The judge's endpoint is the ``judge:`` section (an :class:`EndpointConfig`, as ``teacher:``);
    ``max_chars`` bounds the explanation of a structured reply where its ``length_bounds`` applies."""

    prompt_file: str
    system_file: str
    sets: list[str]
    max_chars: dict[str, int] | None


def pair_answers(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One ``{id, set, prompt, sft, baseline}`` per prompt id, in id order.

    Raises:
        UserError: an id without exactly one ``sft`` and one ``baseline`` answer.
    """
    by_id: dict[str, dict[str, Any]] = {}
    for r in rows:
        pair = by_id.setdefault(r["id"], {"id": r["id"], "set": r["set"], "prompt": r["prompt"]})
        if r.get("role") not in core.ROLES or r["role"] in pair:
            raise UserError(f"answers: id {r['id']} has a repeated or unknown role {r.get('role')!r}; "
                            "re-run generate")
        pair[r["role"]] = r["answer"] or ""
    incomplete = [i for i, p in by_id.items() if not all(role in p for role in core.ROLES)]
    if incomplete:
        raise UserError(f"answers: ids {incomplete[:5]} lack an sft or a baseline answer; re-run generate")
    return [by_id[i] for i in sorted(by_id)]


def run(cfg: Config, judge_cfg: EndpointConfig, inputs: Inputs, outputs: Outputs,
        api_key: str | None = None) -> dict[str, Any]:
    """Judge every pair; write the judgements, the metrics and the plot data. Returns the metrics.

    Args:
        api_key: the judge's key (the command reads it: ``llm.config.api_key``); never written anywhere.
    Raises:
        UserError: a pair is incomplete (the command checks the answers and prompt files); the endpoint
            refused the first request; more than ``max_request_errors`` of the judgements are
            ``request_error`` (raised after the rows and metrics are written).
        RuntimeError, TimeoutError: the embedded judge cannot start.
    """
    step = core.JudgeStep.load(cfg.prompt_file, cfg.system_file, max_chars=cfg.max_chars if judge_cfg.bounded else None)
    pairs = pair_answers(read_jsonl(inputs.answers))
    done = run_step(step, judge_cfg, core.judge_rows(pairs), api_key=api_key, desc="judge")
    rows = []
    for n, pair in enumerate(pairs):
        judgements = [core.judgement(o) for o in done.outcomes[2 * n: 2 * n + 2]]
        rows.append(core.pair_row(pair, judgements, judge_cfg.model, step.template_hash))
    sets = [cfg.sets] if isinstance(cfg.sets, str) else list(cfg.sets)
    extra = sorted({r["set"] for r in rows} - set(sets))
    metrics: dict[str, Any] = core.tally(rows, sets + extra)
    tally = Tally()
    for o in done.outcomes:
        tally.add(o)
    counts = tally.status_metrics(prefix="judgements_", statuses=core.JUDGEMENT_STATUSES)
    metrics.update({k: v for k, v in counts.items() if k != "judgements_multi_candidate"})
    metrics.update({f"judge_{k}": v for k, v in done.stats.items()})
    write_jsonl(outputs.judgements, rows)
    write_metrics(outputs.metrics, metrics)
    write_csv(outputs.plot, ("label", "count", "set", "outcome"), core.plot_rows(metrics, sets + extra))
    log.info("judge: %d pairs: %d win, %d tie, %d lose, %d failed; winning score %s", len(rows), metrics["judge_win"],
             metrics["judge_tie"], metrics["judge_lose"], metrics["judge_failed"], metrics["judge_winning_score"])
    tally.check_request_errors(judge_cfg.max_request_errors, "judge")
    return metrics


STAGE = Stage(
    "judge", __doc__,
    sections=(Section(EndpointConfig, "judge"), Section(Config, "judge_step")),
    inputs={"answers": PathSpec("data/{dataset}/answers.jsonl", flag="input")},
    outputs={"judgements": PathSpec("data/{dataset}/judgements.jsonl", flag="output"),
             "metrics": "metrics/{dataset}/judge.json", "plot": "metrics/{dataset}/judge_plot.csv"},
    invoke=lambda call: run(call.configs[1], call.configs[0], Inputs(**call.inputs), Outputs(**call.outputs),
                            api_key=api_key(call)),
)
Inputs, Outputs = STAGE.io(__name__)


def main(argv: list[str] | None = None) -> int:
    return STAGE.main(argv)
