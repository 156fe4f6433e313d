"""Stage ``select``: pick the training rows from the four variants and their scores.

``method`` (see :mod:`reflection_tuning.select`): ``v2`` (Selective Reflection-Tuning,
student-selected by IFD / r-IFD), ``v1`` (Reflection-Tuning, the recycled pairs) or
``original``. Then ``top_k`` / ``ratio`` optionally keep the highest-IFD rows only: rows
with IFD >= 1 or no usable IFD are dropped first (``dropped_ifd_ge1``,
``dropped_unscored``), then IFD descending (Cherry LLM; :func:`selection.rank_limit`).
Writes ``data/K/selected.jsonl`` and ``metrics/K/select.json``, which counts every branch
(the ``branch_*`` counts sum to ``read``).

Budget (``budget``: an int, or ``{match: v2}``) and baselines: ``random`` and ``length``
keep the original rows cut to the budget by their own rule; another method that keeps
more rows than the budget is cut by a seeded uniform sample (``seed``), or with
``diversity: facility_location`` by greedy facility location over the embeddings the
score stage stored (``data/K/embeddings.npz``, ``score.embed: true``;
:mod:`reflection_tuning.diversity`), which reports ``diversity_coverage``.

Teacher–student compatibility (:mod:`reflection_tuning.compatibility`): how IFD and r-IFD
moved from the original to the candidate v2 weighed, and the share accepted, per teacher:
``compat_*`` metrics, ``metrics/K/select_shift.csv`` (plot) and ``select_compat.csv`` (table).

Decontamination (:mod:`reflection_tuning.decontamination`): the selected rows are checked
for word ``decontaminate_ngram``-gram overlap with every prompt set under
``eval_prompts_dir``, and the counts per set go to the metrics; with ``decontaminate:
true`` the contaminated rows are dropped (before ``top_k`` / ``ratio``) and written to
``data/K/select_rejects.jsonl`` with their reason and sets (``kept_before_rank =
dropped_contaminated + dropped_ifd_ge1 + dropped_unscored + dropped_by_rank +
dropped_by_budget + kept``).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import reflection_tuning.compatibility as compatibility
from reflection_tuning.config import ConfigError
from reflection_tuning.decontamination import build_index, overlap_report, read_eval_sets
from reflection_tuning.errors import UserError
from reflection_tuning.io import read_jsonl, write_jsonl, write_metrics
from reflection_tuning.rows import VARIANTS, is_usable
from reflection_tuning.select import (
    BASELINES,
    BRANCHES,
    METHODS,
    Ranked,
    cut_length,
    cut_random,
    rank_limit,
    resolve_budget,
    select_one,
    usable_score,
)
from reflection_tuning.stages.common import PathSpec, Section, Stage
from reflection_tuning.student import StudentConfig

log = logging.getLogger(__name__)

Method = Literal[METHODS]  # select.METHODS: v2 | v1 | original | random | length
Diversity = Literal["facility_location"]


@dataclass(frozen=True)
class Config:
    """The ``select:`` section: ``method`` (v2 | v1 | original | random | length), then ``top_k`` or
    ``ratio`` (or neither), then ``budget`` (rows; an int or ``{match: v2}``) with ``seed`` and ``diversity``."""

    method: Method
    top_k: int | None
    ratio: float | None
    eval_prompts_dir: str | None  # the directory of evaluation prompt sets to check (None: no check)
    decontaminate_ngram: int  # words per n-gram (13: GPT-3, lm-eval)
    decontaminate: bool  # drop the rows that overlap an evaluation prompt
    budget: int | dict | None  # rows kept: an int, or {match: v2}
    seed: int  # the random baseline's and the budget cut's sample
    diversity: Diversity | None  # facility_location: cut to the budget by diversity

    def __post_init__(self) -> None:
        if self.top_k is not None and self.ratio is not None:
            raise ConfigError("select: give top_k or ratio, not both")
        if self.top_k is not None and self.top_k < 0:
            raise ConfigError(f"select.top_k must be >= 0, got {self.top_k}")
        if self.ratio is not None and not 0 <= self.ratio <= 1:
            raise ConfigError(f"select.ratio must be in [0, 1], got {self.ratio}")
        if self.decontaminate_ngram < 1:
            raise ConfigError(f"select.decontaminate_ngram must be >= 1, got {self.decontaminate_ngram}")
        if self.decontaminate and self.eval_prompts_dir is None:
            raise ConfigError("select.decontaminate needs select.eval_prompts_dir")
        try:
            resolve_budget(self.budget, lambda method: 0)
        except ValueError as e:
            raise ConfigError(f"select.budget: {e}") from None
        if self.method in BASELINES and self.budget is None:
            raise ConfigError(f"select.method {self.method} needs select.budget (an int or {{match: v2}})")
        if self.diversity and (self.budget is None or self.method in BASELINES):
            raise ConfigError("select.diversity needs select.budget and a method among v2, v1, original")


def _index(rows: list[dict[str, Any]], where: Path, key: tuple[str, ...] = ("id",)) -> dict[Any, dict[str, Any]]:
    out: dict[Any, dict[str, Any]] = {}
    for r in rows:
        k = tuple(r.get(x) for x in key) if len(key) > 1 else r.get("id")
        if k in out:
            raise ValueError(f"{where}: {'/'.join(key)} {k} appears twice")
        out[k] = r
    return out


def select_rows(method: str, originals: list[str], variants: dict[str, dict[str, dict]],
                scores: dict[tuple[str, str], dict]) -> tuple[list[dict[str, Any]], Counter]:
    """Apply ``method`` to each original id; returns (kept rows, a Counter of branches).

    Args:
        originals: the sample ids, in order.
        variants: ``{variant: {id: row}}``.
        scores: ``{(id, variant): score row}``.
    """
    kept, branches = [], Counter()
    for i in originals:
        by_variant = {v: scores.get((i, v)) for v in VARIANTS}
        usable = {v: is_usable(variants[v].get(i)) for v in VARIANTS}
        variant, branch = select_one(method, by_variant, usable)
        branches[branch] += 1
        if variant is None:
            continue
        row, score = variants[variant][i], by_variant[variant] or {}
        kept.append({
            "id": i, "variant": variant, "instruction": row["instruction"], "input": row.get("input") or "",
            "output": row["output"], "source": row.get("source"),
            "ifd": usable_score(score, "ifd"),
            "rifd": usable_score(score, "rifd"),
        })
    return kept, branches


def decontaminate(cfg: Config,
                  rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """The n-gram overlap of ``rows`` with the prompt sets; drops the contaminated rows if asked.

    Returns:
        (the rows kept, the rows dropped with ``reason: "contaminated"`` and their
        ``eval_sets``, the overlap metrics; empty when there is no prompt directory).
    Raises:
        UserError: see :func:`decontamination.read_eval_sets`.
    """
    if cfg.eval_prompts_dir is None:
        return rows, [], {}
    index = build_index(read_eval_sets(Path(cfg.eval_prompts_dir)), cfg.decontaminate_ngram)
    metrics, by_row = overlap_report(rows, index)
    log.info("%d of %d selected rows overlap an evaluation prompt (%d-grams)%s", len(by_row), len(rows),
             cfg.decontaminate_ngram, "; dropped" if cfg.decontaminate else "")
    if not cfg.decontaminate:
        return rows, [], metrics
    kept = [r for r in rows if r["id"] not in by_row]
    dropped = [{**r, "reason": "contaminated", "eval_sets": by_row[r["id"]]} for r in rows if r["id"] in by_row]
    return kept, dropped, metrics


@dataclass
class Steps:
    """The rows after each step of one selection, for the metrics."""

    kept: list[dict[str, Any]]
    branches: Counter
    clean: list[dict[str, Any]]
    dropped: list[dict[str, Any]]
    contamination: dict[str, Any]
    ranked: Ranked


def _steps(cfg: Config, originals: list[str], variants: dict, scores: dict) -> Steps:
    kept, branches = select_rows(cfg.method, originals, variants, scores)
    clean, dropped, contamination = decontaminate(cfg, kept)
    return Steps(kept, branches, clean, dropped, contamination, rank_limit(clean, cfg.top_k, cfg.ratio))


def cut_to_budget(cfg: Config, rows: list[dict[str, Any]], budget: int | None,
                  count_tokens: Callable[[str], int] | None = None,
                  embeddings: Path | None = None) -> tuple[list[dict[str, Any]], float | None]:
    """``rows`` cut to ``budget`` by the method's rule; returns (rows, facility-location coverage or None).

    Raises:
        UserError: ``length`` without a tokenizer, or diversity without stored embeddings.
    """
    if budget is None or (len(rows) <= budget and cfg.method != "random"):
        return rows, None
    if cfg.method == "length":
        if count_tokens is None:
            raise UserError("select: method length needs the student's tokenizer")
        return cut_length(rows, budget, {r["id"]: count_tokens(r["output"]) for r in rows}), None
    if cfg.diversity == "facility_location":
        from reflection_tuning.diversity import facility_location
        from reflection_tuning.score.embed import load_embeddings

        ordered = sorted(rows, key=lambda r: str(r["id"]))
        picked = facility_location(load_embeddings(embeddings, [(r["id"], r["variant"]) for r in ordered]), budget)
        return [ordered[i] for i in picked.indices], picked.coverage
    return cut_random(rows, budget, cfg.seed), None


def run(cfg: Config, inputs: Inputs, outputs: Outputs, count_tokens: Callable[[str], int] | None = None) -> dict:
    """Select, rank/limit, cut to the budget, write ``selected.jsonl`` and the metrics; returns the metrics.

    ``count_tokens``: a response's length in the student's tokens (method ``length``).

    Raises:
        ValueError: a repeated id.
    """
    variants = {v: _index(read_jsonl(getattr(inputs, v)), getattr(inputs, v)) for v in VARIANTS}
    scores = _index(read_jsonl(inputs.scores), inputs.scores, ("id", "variant"))
    originals = list(variants["original"])
    steps = _steps(cfg, originals, variants, scores)

    def match_count(method: str) -> int:  # what `method` keeps on the same scores, with no budget
        other = replace(cfg, method=method, budget=None, diversity=None)
        return len(_steps(other, originals, variants, scores).ranked.rows)

    budget = resolve_budget(cfg.budget, match_count)
    final, coverage = cut_to_budget(cfg, steps.ranked.rows, budget, count_tokens, inputs.embeddings)
    write_jsonl(outputs.selected, final)
    if outputs.rejects is not None:
        write_jsonl(outputs.rejects, steps.dropped)
    metrics: dict[str, Any] = {
        "read": len(originals),
        "kept_before_rank": len(steps.kept),
        "dropped_contaminated": len(steps.kept) - len(steps.clean),
        "dropped_ifd_ge1": steps.ranked.dropped_ifd_ge1,
        "dropped_unscored": steps.ranked.dropped_unscored,
        "dropped_by_rank": steps.ranked.dropped_by_rank,
        "budget": budget,
        "dropped_by_budget": len(steps.ranked.rows) - len(final),
        "diversity_coverage": coverage,
        "kept": len(final),
        **steps.contamination,
    }
    # every method's branches, zero where unused, so the keys stay stable across experiments
    for b in sorted({b for names in BRANCHES.values() for b in names}):
        metrics[f"branch_{b}"] = steps.branches.get(b, 0)
    for v in VARIANTS:
        metrics[f"kept_{v}"] = sum(r["variant"] == v for r in final)
    shift_rows = compatibility.shifts(originals, variants, scores)  # the student's view, whatever the method
    metrics.update(compatibility.metrics(shift_rows))
    if outputs.shift is not None and outputs.compat is not None:
        compatibility.write_csvs(outputs.shift, outputs.compat, shift_rows)
    write_metrics(outputs.metrics, metrics)
    log.info("select %s: kept %d of %d (%s)", cfg.method, len(final), len(originals),
             ", ".join(f"{b}={n}" for b, n in sorted(steps.branches.items())))
    return metrics


def _data(name: str, **kw: Any) -> PathSpec:
    return PathSpec(f"data/{{dataset}}/{name}", **kw)


STAGE = Stage(
    "select", __doc__,
    sections=(Section(Config, "select"), Section(StudentConfig, "student")),
    # select.eval_prompts_dir is read from the config (a dep ${select.eval_prompts_dir} in dvc.yaml)
    inputs={"scores": _data("scores.jsonl"), **{v: _data(f"{v}.jsonl") for v in VARIANTS},
            "embeddings": _data("embeddings.npz", optional=True)},
    outputs={"selected": _data("selected.jsonl", flag="output"),
             "metrics": "metrics/{dataset}/select.json",
             "rejects": _data("select_rejects.jsonl", optional=True),
             "shift": PathSpec("metrics/{dataset}/select_shift.csv", optional=True),
             "compat": PathSpec("metrics/{dataset}/select_compat.csv", optional=True)},
)
Inputs, Outputs = STAGE.io(__name__)


def main(argv: list[str] | None = None) -> int:
    call = STAGE.parse(argv)
    cfg, student = call.configs
    count_tokens = None
    if cfg.method == "length":
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(student.model)
        count_tokens = lambda text: len(tokenizer(text, add_special_tokens=False).input_ids)  # noqa: E731
    run(cfg, Inputs(**call.inputs), Outputs(**call.outputs), count_tokens)
    return 0
