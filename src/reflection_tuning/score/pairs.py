"""A row's four scoring pairs (``templates.scoring_pairs``) through a scorer: the score fields of
every row, a plain rows file scored and written back (the ``score`` command's plain mode), and
the scorer's counters as metrics.

Per row the four terms are scored (Cherry LLM, arXiv 2308.12032, Sec. 3; Selective
Reflection-Tuning, arXiv 2402.10110, Sec. 3). The conditional terms go first; when one was
truncated to ``max_length``, its "alone" term is cut to the same number of target tokens, so
that both PPLs of a ratio cover the same text, as the reference does with
``max_length - prompt_length + 1``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reflection_tuning import status as st
from reflection_tuning.infra.io import read_jsonl, write_jsonl, write_metrics
from reflection_tuning.rows import VARIANTS, is_usable
from reflection_tuning.score.batching import Request, ScorerStats
from reflection_tuning.score.ifd import TERMS, score_fields
from reflection_tuning.score.shard import Shard, gather
from reflection_tuning.score.summary import score_metrics
from reflection_tuning.templates import scoring_pairs

CONDITIONAL = {"a": "a_given_q", "q": "q_given_a"}  # alone term -> the conditional it must match


def score_rows(rows: Sequence[dict[str, Any]], scorer: Any, template: str,
               input_mode: str = "merge") -> list[dict[str, Any]]:
    """The score fields of each row (``status``, ``ifd_status``, ``rifd_status``, ``ppl_*``, ``ifd``,
    ``rifd``, ``loss_*``, ``tokens_*``, ``truncated``).

    Rows that are not :func:`~reflection_tuning.rows.is_usable` get status ``unusable`` (all three
    statuses) and nulls.
    ``scorer`` is a :class:`reflection_tuning.score.scorer.Scorer`; ``input_mode`` is
    ``score.input_mode`` (see :func:`templates.scoring_pairs`).
    """
    idx = [i for i, r in enumerate(rows) if is_usable(r)]
    pairs = {i: scoring_pairs(template, rows[i]["instruction"], rows[i].get("input") or "", rows[i]["output"],
                              scorer.tokenizer, input_mode) for i in idx}
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
            fields.update({"status": st.UNUSABLE, "ifd_status": st.UNUSABLE, "rifd_status": st.UNUSABLE,
                           **{f"tokens_{t}": None for t in TERMS}, "truncated": None})
        else:
            res = {t: results[i, t] for t in TERMS}
            fields = score_fields({t: r.loss for t, r in res.items()}, {t: r.tokens for t, r in res.items()})
            fields["truncated"] = any(r.truncated for r in res.values())
        out.append(fields)
    return out


def scorer_metrics(scorer: Any, shard: Shard) -> dict[str, Any]:
    """The scorer's counters, summed over the ranks (a collective: every rank calls it)."""
    s = ScorerStats.merge(gather(scorer.stats, shard))
    return {"pairs": s.pairs, "pairs_unique": s.unique_pairs, "pairs_scored": s.pairs_scored,
            "pairs_cached": s.pairs_cached, "batches": s.batches, "tokens_forward": s.tokens_forward,
            "tokens_scored": s.tokens_target, "padding_fraction": s.padding_fraction, "straddles": s.straddles,
            "oom_splits": s.oom_splits}


def score_file(input: Path, output: Path, metrics: Path | None, scorer: Any, template: str, input_mode: str,
               shard: Shard = Shard(), started: float | None = None) -> dict[str, Any]:
    """Score the plain ``{instruction, input, output}`` rows of ``input``; write them to ``output``
    in their order, each with its score fields, and the metrics to ``metrics`` (unless None).

    Rows without a ``variant`` count as ``original`` in the metrics. ``started``: the
    ``time.monotonic()`` the run began (default: now), for ``seconds``. In a data-parallel job
    every rank calls this; only rank 0 writes. Returns the metrics (on every rank).
    """
    started = time.monotonic() if started is None else started
    rows = read_jsonl(input)
    out = [{**r, **f} for r, f in zip(rows, score_rows(rows, scorer, template, input_mode))]
    variants = list(dict.fromkeys(r.get("variant", VARIANTS[0]) for r in rows))
    m = {**score_metrics(out, variants), **scorer_metrics(scorer, shard), "ranks": shard.world}
    m["seconds"] = time.monotonic() - started
    if shard.is_main:
        write_jsonl(output, out, sort_by=())  # no sort key: keep the input order
        if metrics:
            write_metrics(metrics, m)
    return m
