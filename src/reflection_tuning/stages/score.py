"""Stage ``score``: the student's IFD and r-IFD of every variant of every sample.

Pipeline mode (``reflection-tuning score --dataset K``) reads ``data/K/{original,
instruction,response,both}.jsonl`` and writes ``data/K/scores.jsonl`` (one row per
(id, variant)), ``metrics/K/score.json`` and ``metrics/K/score_ifd.csv`` (plot data).
Plain mode (``reflection-tuning score --input rows.jsonl --output scored.jsonl``) scores
plain ``{instruction, input, output}`` rows and writes them back with the score fields.

Per row the four terms of ``templates.scoring_pairs`` are scored (Cherry LLM, arXiv
2308.12032, Sec. 3; Selective Reflection-Tuning, arXiv 2402.10110, Sec. 3). The
conditional terms go first; when one was truncated to ``max_length``, its "alone" term
is cut to the same number of target tokens, so that both PPLs of a ratio cover the same
text, as the reference does with ``max_length - prompt_length + 1``.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reflection_tuning.config import ConfigError
from reflection_tuning.errors import UserError
from reflection_tuning.io import read_jsonl, write_csv, write_jsonl, write_metrics
from reflection_tuning.rows import STATUS_OK, VARIANTS, is_usable
from reflection_tuning.scoring.ifd import TERMS, score_fields
from reflection_tuning.stages.common import Section, parse_stage_args, stage_parser
from reflection_tuning.student import StudentConfig
from reflection_tuning.templates import TEMPLATES, scoring_pairs

log = logging.getLogger(__name__)

STATUS_UNUSABLE = "unusable"
STATUSES = ("ok", STATUS_UNUSABLE, "empty", "nan")
CONDITIONAL = {"a": "a_given_q", "q": "q_given_a"}  # alone term -> the conditional it must match


@dataclass(frozen=True)
class Config:
    """The ``score:`` section. ``max_length``, ``batch_tokens``: tokens; ``device``: auto | cpu | cuda[:N]."""

    template: str = "alpaca"
    max_length: int = 1024
    batch_tokens: int = 8192
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.template not in TEMPLATES:
            raise ConfigError(f"score.template: {self.template!r} is not one of {TEMPLATES}")
        if self.max_length < 2 or self.batch_tokens < 1:
            raise ConfigError("score: max_length must be >= 2 and batch_tokens >= 1")


@dataclass(frozen=True)
class Inputs:
    original: Path
    instruction: Path
    response: Path
    both: Path


@dataclass(frozen=True)
class Outputs:
    scores: Path
    metrics: Path
    plot: Path


def score_rows(rows: Sequence[dict[str, Any]], scorer: Any, template: str) -> list[dict[str, Any]]:
    """The score fields of each row (``status``, ``ppl_*``, ``ifd``, ``rifd``, ``loss_*``, ``tokens_*``, ``truncated``).

    Rows that are not :func:`usable` get status ``unusable`` and nulls. ``scorer`` is a
    :class:`reflection_tuning.scoring.scorer.Scorer`.
    """
    from reflection_tuning.scoring.scorer import Request

    idx = [i for i, r in enumerate(rows) if is_usable(r)]
    pairs = {i: scoring_pairs(template, rows[i]["instruction"], rows[i].get("input") or "", rows[i]["output"],
                              scorer.tokenizer) for i in idx}
    # Conditional terms first: a truncated one caps its "alone" term to the same target tokens.
    keys = [(i, t) for i in idx for t in CONDITIONAL.values()]
    results = dict(zip(keys, scorer.score([Request(*pairs[i][t]) for i, t in keys])))
    keys = [(i, t) for i in idx for t in CONDITIONAL]
    caps = [results[i, CONDITIONAL[t]].tokens if results[i, CONDITIONAL[t]].truncated else None for i, t in keys]
    results.update(zip(keys, scorer.score([Request(*pairs[i][t], cap) for (i, t), cap in zip(keys, caps)])))

    out = []
    for i in range(len(rows)):
        if i not in pairs:
            fields = score_fields({}, {})
            fields.update({"status": STATUS_UNUSABLE, **{f"tokens_{t}": None for t in TERMS}, "truncated": None})
        else:
            res = {t: results[i, t] for t in TERMS}
            fields = score_fields({t: r.loss for t, r in res.items()}, {t: r.tokens for t, r in res.items()})
            fields["truncated"] = any(r.truncated for r in res.values())
        out.append(fields)
    return out


def _mean(xs: list[float]) -> float | None:
    return statistics.fmean(xs) if xs else None


def _median(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


def score_metrics(rows: Sequence[dict[str, Any]], variants: Sequence[str]) -> dict[str, Any]:
    """Flat metrics per variant: rows, a count per status, failed, mean/median IFD and r-IFD,
    the share of ok rows with IFD < 1, the share of scored rows truncated."""
    m: dict[str, Any] = {"rows": len(rows)}
    for v in variants:
        rs = [r for r in rows if r.get("variant", "original") == v]
        ok = [r for r in rs if r["status"] == STATUS_OK]
        scored = [r for r in rs if r["status"] != STATUS_UNUSABLE]
        m[f"{v}_rows"] = len(rs)
        for s in STATUSES:
            m[f"{v}_status_{s}"] = sum(r["status"] == s for r in rs)
        m[f"{v}_failed"] = len(scored) - len(ok)  # scored but no usable ratio (empty, nan)
        for key in ("ifd", "rifd"):
            values = [r[key] for r in ok]
            m[f"{v}_{key}_mean"] = _mean(values)
            m[f"{v}_{key}_median"] = _median(values)
        m[f"{v}_ifd_lt1_share"] = sum(r["ifd"] < 1 for r in ok) / len(ok) if ok else None
        m[f"{v}_truncated_share"] = sum(bool(r["truncated"]) for r in scored) / len(scored) if scored else None
    return m


def _scorer_metrics(scorer: Any) -> dict[str, Any]:
    s = scorer.stats
    return {"pairs": s.pairs, "pairs_unique": s.unique_pairs, "batches": s.batches,
            "tokens_forward": s.tokens_forward, "tokens_scored": s.tokens_target,
            "padding_fraction": s.padding_fraction, "straddles": s.straddles, "oom_splits": s.oom_splits}


def write_plot(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """``id,variant,ifd,rifd`` of the ok rows, for DVC histogram plots."""
    ok = sorted((r for r in rows if r["status"] == STATUS_OK), key=lambda r: (str(r["id"]), r["variant"]))
    write_csv(path, ["id", "variant", "ifd", "rifd"], ([r["id"], r["variant"], repr(r["ifd"]), repr(r["rifd"])] for r in ok))


def _load_scorer(cfg: Config, student: StudentConfig) -> Any:
    from reflection_tuning.scoring.scorer import HFScorer

    return HFScorer.from_pretrained(student.model, cfg.device, max_length=cfg.max_length,
                                    batch_tokens=cfg.batch_tokens)


def gather_variants(inputs: Inputs) -> list[dict[str, Any]]:
    """One row per (original id, variant); a variant missing for an id is a ``None`` placeholder row.

    Raises:
        UserError: an input is missing. ValueError: an id repeats within a file.
    """
    missing = [str(getattr(inputs, v)) for v in VARIANTS if not getattr(inputs, v).exists()]
    if missing:
        raise UserError(f"score: missing {', '.join(missing)}; run the fetch and reflect stages first")
    out = []
    by_variant = {}
    for v in VARIANTS:
        rows = read_jsonl(getattr(inputs, v))
        index: dict[str, dict] = {}
        for r in rows:
            if r["id"] in index:
                raise ValueError(f"{getattr(inputs, v)}: id {r['id']} appears twice")
            index[r["id"]] = r
        by_variant[v] = index
    ids = list(by_variant["original"])
    for v in VARIANTS[1:]:
        extra = set(by_variant[v]) - set(ids)
        if extra:
            log.warning("%s: %d ids not in the original rows are ignored", v, len(extra))
    for i in ids:
        for v in VARIANTS:
            row = by_variant[v].get(i)
            out.append({"id": i, "variant": v, "_row": row})
    return out


def run(cfg: Config, student: StudentConfig, inputs: Inputs, outputs: Outputs, scorer: Any = None) -> dict:
    """Score all four variants of every original row; write scores, metrics and plot data.

    ``scorer`` defaults to the student model loaded per ``cfg``. Returns the metrics written.
    """
    start = time.monotonic()
    entries = gather_variants(inputs)
    scorer = scorer or _load_scorer(cfg, student)
    fields = score_rows([e["_row"] or {"status": "missing"} for e in entries], scorer, cfg.template)
    rows = [{"id": e["id"], "variant": e["variant"], **f} for e, f in zip(entries, fields)]
    write_jsonl(outputs.scores, rows, sort_by=("id", "variant"))
    write_plot(outputs.plot, rows)
    metrics = {**score_metrics(rows, VARIANTS), **_scorer_metrics(scorer), "seconds": time.monotonic() - start}
    write_metrics(outputs.metrics, metrics)
    log.info("scored %d rows (%d ok) in %.1fs", len(rows), sum(r["status"] == STATUS_OK for r in rows),
             metrics["seconds"])
    return metrics


def run_plain(cfg: Config, student: StudentConfig, input: Path, output: Path, metrics: Path | None = None,
              scorer: Any = None) -> dict:
    """Score plain ``{instruction, input, output}`` rows; write them back, in order, with the score fields."""
    start = time.monotonic()
    if not Path(input).exists():
        raise UserError(f"score: input file {input} does not exist")
    rows = read_jsonl(input)
    scorer = scorer or _load_scorer(cfg, student)
    fields = score_rows(rows, scorer, cfg.template)
    out = [{**r, **f} for r, f in zip(rows, fields)]
    write_jsonl(output, out, sort_by=())  # no sort key: keep the input order
    variants = list(dict.fromkeys(r.get("variant", "original") for r in rows))
    m = {**score_metrics(out, variants), **_scorer_metrics(scorer), "seconds": time.monotonic() - start}
    if metrics:
        write_metrics(metrics, m)
    return m


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser("score", __doc__)
    parser.add_argument("--input", type=Path, default=None, help="plain mode: rows to score")
    parser.add_argument("--output", type=Path, default=None, help="plain mode: where to write the scored rows")
    parser.add_argument("--metrics", type=Path, default=None, help="plain mode: metrics file (optional)")
    args, (cfg, student), _ = parse_stage_args(
        parser, [Section(Config, "score"), Section(StudentConfig, "student")], argv)
    if args.input or args.output:
        if not (args.input and args.output):
            parser.error("plain mode needs both --input and --output")
        run_plain(cfg, student, args.input, args.output, args.metrics)
        return 0
    if not args.dataset:
        parser.error("give --dataset K (pipeline mode) or --input/--output (plain mode)")
    d, m = Path("data") / args.dataset, Path("metrics") / args.dataset
    inputs = Inputs(*(d / f"{v}.jsonl" for v in VARIANTS))
    run(cfg, student, inputs, Outputs(scores=d / "scores.jsonl", metrics=m / "score.json", plot=m / "score_ifd.csv"))
    return 0
