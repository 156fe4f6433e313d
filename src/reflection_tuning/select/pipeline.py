"""One selection, start to end, on rows already read: pure, the ``select`` stage does the I/O.

In order: the method's rule per sample (:func:`.rules.select_rows`), decontamination against
the evaluation prompt sets (:mod:`reflection_tuning.decontamination`; with ``decontaminate``
the contaminated rows are dropped), the IFD ranking (:func:`.rank.rank_limit`), the budget
(:mod:`.budget`; ``{match: v2}`` runs the same steps with v2), and the metrics: every
branch of every method (``branch_*``, zero where unused), ``kept_<variant>``, the counts
of each step (``kept_before_rank = dropped_contaminated + dropped_ifd_ge1 +
dropped_unscored + dropped_by_rank + dropped_by_budget + kept``), the overlap counts and
the teacher-student compatibility (:mod:`reflection_tuning.compatibility`).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import reflection_tuning.compatibility as compatibility
from reflection_tuning.decontamination import Index, build_index, overlap_report
from reflection_tuning.rows import VARIANTS
from reflection_tuning.select.budget import Vectors, cut_to_budget, resolve_budget
from reflection_tuning.select.config import Config
from reflection_tuning.select.rank import Ranked, rank_limit
from reflection_tuning.select.rules import BRANCHES, select_rows

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Selection:
    """What :func:`select` returns: what the stage writes."""

    rows: list[dict[str, Any]]  # the training rows (selected.jsonl)
    rejects: list[dict[str, Any]]  # the rows dropped as contaminated, with reason and eval_sets
    shifts: list[dict[str, Any]]  # the compatibility rows, per sample (select_shift.csv, select_compat.csv)
    metrics: dict[str, Any]  # metrics/K/select.json


def decontaminate(cfg: Config, rows: list[dict[str, Any]],
                  index: Index | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """The n-gram overlap of ``rows`` with the prompt sets of ``index``; drops the contaminated rows if asked.

    Returns:
        (the rows kept, the rows dropped with ``reason: "contaminated"`` and their
        ``eval_sets``, the overlap metrics; empty when ``index`` is None).
    """
    if index is None:
        return rows, [], {}
    metrics, by_row = overlap_report(rows, index)
    log.info("%d of %d selected rows overlap an evaluation prompt (%d-grams)%s", len(by_row), len(rows),
             cfg.decontaminate_ngram, "; dropped" if cfg.decontaminate else "")
    if not cfg.decontaminate:
        return rows, [], metrics
    kept = [r for r in rows if r["id"] not in by_row]
    dropped = [{**r, "reason": "contaminated", "eval_sets": by_row[r["id"]]} for r in rows if r["id"] in by_row]
    return kept, dropped, metrics


@dataclass(frozen=True)
class _Steps:
    """The rows after each step of one method's selection, for the metrics."""

    kept: list[dict[str, Any]]
    branches: Counter
    dropped: list[dict[str, Any]]
    contamination: dict[str, Any]
    ranked: Ranked


def _steps(cfg: Config, method: str, originals: Sequence[str], variants: Mapping, scores: Mapping,
           index: Index | None) -> _Steps:
    kept, branches = select_rows(method, originals, variants, scores)
    clean, dropped, contamination = decontaminate(cfg, kept, index)
    return _Steps(kept, branches, dropped, contamination, rank_limit(clean, cfg.top_k, cfg.ratio))


def select(cfg: Config, variants: Mapping[str, Mapping[str, dict]], scores: Mapping[tuple[str, str], dict],
           eval_sets: Mapping[str, Sequence[str]] | None = None, count_tokens: Callable[[str], int] | None = None,
           vectors: Vectors | None = None) -> Selection:
    """Select, decontaminate, rank/limit and cut to the budget; count every step.

    Args:
        variants: ``{variant: {id: teacher row}}`` of the four variants; the ids of
            ``original``, in order, are the samples.
        scores: ``{(id, variant): score row}``.
        eval_sets: the evaluation prompt sets, ``{name: prompts}`` (None: no overlap check).
        count_tokens: a response's length in the student's tokens (method ``length``).
        vectors: the stored embeddings of (id, variant) keys (``diversity``).
    Raises:
        ValueError: an unknown method.
        UserError: see :func:`.budget.cut_to_budget`.
    """
    originals = list(variants["original"])
    index = None if eval_sets is None else build_index(eval_sets, cfg.decontaminate_ngram)
    steps = _steps(cfg, cfg.method, originals, variants, scores, index)
    # {match: <method>}: the rows that method keeps on the same scores, with no budget
    budget = resolve_budget(cfg.budget, lambda method: len(
        (steps if method == cfg.method else _steps(cfg, method, originals, variants, scores, index)).ranked.rows))
    final, coverage = cut_to_budget(cfg, steps.ranked.rows, budget, count_tokens, vectors)
    shifts = compatibility.shifts(originals, variants, scores)  # the student's view, whatever the method
    metrics: dict[str, Any] = {
        "read": len(originals),
        "kept_before_rank": len(steps.kept),
        "dropped_contaminated": len(steps.dropped),
        "dropped_ifd_ge1": steps.ranked.dropped_ifd_ge1,
        "dropped_unscored": steps.ranked.dropped_unscored,
        "dropped_by_rank": steps.ranked.dropped_by_rank,
        "budget": budget,
        "dropped_by_budget": len(steps.ranked.rows) - len(final),
        "diversity_coverage": coverage,
        "kept": len(final),
        **steps.contamination,
        # every method's branches, zero where unused, so the keys stay stable across experiments
        **{f"branch_{b}": steps.branches.get(b, 0) for b in sorted({b for bs in BRANCHES.values() for b in bs})},
        **{f"kept_{v}": sum(r["variant"] == v for r in final) for v in VARIANTS},
        **compatibility.metrics(shifts),
    }
    log.info("select %s: kept %d of %d (%s)", cfg.method, len(final), len(originals),
             ", ".join(f"{b}={n}" for b, n in sorted(steps.branches.items())))
    return Selection(list(final), steps.dropped, shifts, metrics)
