"""Stage ``select``: pick the training rows from the four variants and their scores.

``method`` (see :mod:`reflection_tuning.selection`): ``v2`` (Selective Reflection-Tuning,
student-selected by IFD / r-IFD), ``v1`` (Reflection-Tuning, the recycled pairs) or
``original``. Then ``top_k`` / ``ratio`` optionally keep the highest-IFD rows only.
Writes ``data/K/selected.jsonl`` and ``metrics/K/select.json``, which counts every branch
(the ``branch_*`` counts sum to ``read``).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reflection_tuning.config import ConfigError
from reflection_tuning.errors import UserError
from reflection_tuning.io import read_jsonl, write_jsonl, write_metrics
from reflection_tuning.rows import STATUS_OK, VARIANTS, is_usable
from reflection_tuning.selection import BRANCHES, METHODS, rank_limit, select_one
from reflection_tuning.stages.common import Section, parse_stage_args, stage_parser

log = logging.getLogger(__name__)

SELECTED_FIELDS = ("id", "variant", "instruction", "input", "output", "source", "ifd", "rifd")


@dataclass(frozen=True)
class Config:
    """The ``select:`` section: ``method`` (v2 | v1 | original), then ``top_k`` or ``ratio`` (or neither)."""

    method: str = "v2"
    top_k: int | None = None
    ratio: float | None = None

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"select.method: unknown method {self.method!r}; expected one of {list(METHODS)}")
        if self.top_k is not None and self.ratio is not None:
            raise ConfigError("select: give top_k or ratio, not both")
        if self.top_k is not None and self.top_k < 0:
            raise ConfigError(f"select.top_k must be >= 0, got {self.top_k}")
        if self.ratio is not None and not 0 <= self.ratio <= 1:
            raise ConfigError(f"select.ratio must be in [0, 1], got {self.ratio}")


@dataclass(frozen=True)
class Inputs:
    scores: Path
    original: Path
    instruction: Path
    response: Path
    both: Path


@dataclass(frozen=True)
class Outputs:
    selected: Path
    metrics: Path


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
            "ifd": score.get("ifd") if score.get("status") == STATUS_OK else None,
            "rifd": score.get("rifd") if score.get("status") == STATUS_OK else None,
        })
    return kept, branches


def run(cfg: Config, inputs: Inputs, outputs: Outputs) -> dict:
    """Select, rank/limit, write ``selected.jsonl`` and the metrics; returns the metrics.

    Raises:
        UserError: an input is missing (the scores only matter for ``v2`` and ranking; they
            are required for ``v2`` only). ValueError: a repeated id.
    """
    needed = [getattr(inputs, v) for v in VARIANTS] + ([inputs.scores] if cfg.method == "v2" else [])
    missing = [str(p) for p in needed if not p.exists()]
    if missing:
        raise UserError(f"select: missing {', '.join(missing)}; run the earlier stages first (dvc repro)")
    variants = {v: _index(read_jsonl(getattr(inputs, v)), getattr(inputs, v)) for v in VARIANTS}
    if inputs.scores.exists():
        scores = _index(read_jsonl(inputs.scores), inputs.scores, ("id", "variant"))
    else:
        scores = {}
    originals = list(variants["original"])
    kept, branches = select_rows(cfg.method, originals, variants, scores)
    final = rank_limit(kept, cfg.top_k, cfg.ratio)
    write_jsonl(outputs.selected, final)
    metrics: dict[str, Any] = {
        "read": len(originals),
        "kept_before_rank": len(kept),
        "dropped_by_rank": len(kept) - len(final),
        "kept": len(final),
    }
    # every method's branches, zero where unused, so the keys stay stable across experiments
    for b in sorted({b for names in BRANCHES.values() for b in names}):
        metrics[f"branch_{b}"] = branches.get(b, 0)
    for v in VARIANTS:
        metrics[f"kept_{v}"] = sum(r["variant"] == v for r in final)
    write_metrics(outputs.metrics, metrics)
    log.info("select %s: kept %d of %d (%s)", cfg.method, len(final), len(originals),
             ", ".join(f"{b}={n}" for b, n in sorted(branches.items())))
    return metrics


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser("select", __doc__)
    args, (cfg,), _ = parse_stage_args(parser, [Section(Config, "select")], argv)
    if not args.dataset:
        parser.error("--dataset is required")
    d, m = Path("data") / args.dataset, Path("metrics") / args.dataset
    inputs = Inputs(d / "scores.jsonl", *(d / f"{v}.jsonl" for v in VARIANTS))
    run(cfg, inputs, Outputs(selected=d / "selected.jsonl", metrics=m / "select.json"))
    return 0
