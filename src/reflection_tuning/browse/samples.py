"""One record per sample for the data browser: the four variants joined by ``id``.

A record holds what the page shows of one sample: the selection branch, the kept variant,
each variant's status, IFD and r-IFD, the teacher's critique (or its error), and the text of
every reflection as a word-level diff against the original (:func:`word_diff`). The diff
holds every word of both sides, so the page rebuilds the reflection's text from it and the
text is stored once.

The branch is recomputed with the select stage's own rule (:func:`reflection_tuning.select.select_one`), so
samples that were not kept show why (``response_not_easier``, ``unscored``, …); ``kept`` is
the variant found in ``selected.jsonl`` (None when ranking, decontamination or the rule
dropped the sample).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from typing import Any

from reflection_tuning import status as st
from reflection_tuning.rows import FIELDS, VARIANTS, is_usable
from reflection_tuning.select import select_one

# a word or a punctuation mark with the whitespace after it: a changed word is one edit, and
# difflib stays fast (whitespace alone would be the most frequent token of every text)
_TOKENS = re.compile(r"\w+\s*|[^\w\s]\s*|\s+")


def word_diff(a: str, b: str) -> list[list[str]]:
    """The word-level diff of ``a`` into ``b`` as ``[op, text]`` segments (difflib).

    ``op`` is ``=`` (in both), ``-`` (only in ``a``) or ``+`` (only in ``b``); joining the
    ``=`` and ``-`` texts gives ``a``, the ``=`` and ``+`` texts give ``b``. The units are words
    and single punctuation marks, each with the whitespace after it.
    """
    ta, tb = _TOKENS.findall(a), _TOKENS.findall(b)
    segments: list[list[str]] = []

    def add(op: str, text: str) -> None:
        if not text:
            return
        if segments and segments[-1][0] == op:
            segments[-1][1] += text
        else:
            segments.append([op, text])

    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, ta, tb, autojunk=False).get_opcodes():
        if tag == "equal":
            add("=", "".join(ta[i1:i2]))
        else:
            add("-", "".join(ta[i1:i2]))
            add("+", "".join(tb[j1:j2]))
    return segments


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _note(row: Mapping[str, Any]) -> str | None:
    """What the teacher said about a row: its critique, else the error, else nothing."""
    return row.get("critique") or row.get("error") or None


def sample_record(sid: str, rows: Mapping[str, Mapping[str, Any] | None],
                  scores: Mapping[str, Mapping[str, Any] | None], method: str, kept: str | None) -> dict[str, Any]:
    """The browser's record of one sample.

    Args:
        rows: by variant, its row (None when the variant file has no row for ``sid``).
        scores: by variant, its ``scores.jsonl`` row (None when unscored).
        method: ``select.method`` (v2 | v1 | original), to recompute the branch.
        kept: the variant in ``selected.jsonl``, or None.
    Returns:
        ``{id, branch, kept, original: {instruction, input, output}, v: {variant: {status,
        ifd, rifd, note, diff: {field: segments} or raw (the failed reply)}}}``; ``status`` is
        the teacher's status of the row (``missing`` when absent), else the score's status
        when that is not ``ok``.
    """
    original = rows.get("original") or {}
    usable = {v: is_usable(rows.get(v)) for v in VARIANTS}
    _, branch = select_one(method, scores, usable)
    out: dict[str, Any] = {
        "id": sid, "branch": branch, "kept": kept,
        "original": {f: original.get(f) or "" for f in FIELDS}, "v": {},
    }
    for v in VARIANTS:
        row, score = rows.get(v), scores.get(v) or {}
        status = st.MISSING if row is None else row.get("status", st.OK)
        if status == st.OK and score and score.get("status") != st.OK:
            status = f"score_{score.get('status')}"
        entry: dict[str, Any] = {
            "status": status,
            "ifd": _number(score.get("ifd")) if score.get("status") == st.OK else None,
            "rifd": _number(score.get("rifd")) if score.get("status") == st.OK else None,
        }
        if v != "original" and row is not None:
            entry["note"] = _note(row)
            if usable[v]:
                entry["diff"] = {f: word_diff(out["original"][f], row.get(f) or "") for f in FIELDS}
            elif row.get("raw_reply"):  # why it failed; an ok row's reply is its diff's text
                entry["raw"] = row["raw_reply"]
        out["v"][v] = entry
    return out


def sample_records(variants: Mapping[str, Sequence[Mapping[str, Any]]], scores: Sequence[Mapping[str, Any]],
                   selected: Sequence[Mapping[str, Any]], method: str) -> list[dict[str, Any]]:
    """One record per original row, sorted by ``id`` (see :func:`sample_record`).

    Args:
        variants: by variant, the rows of ``data/K/<variant>.jsonl`` (``original`` is required).
        scores: the rows of ``scores.jsonl`` (``id``, ``variant``, ``status``, ``ifd``, ``rifd``).
        selected: the rows of ``selected.jsonl`` (``id``, ``variant``).
    """
    by_variant = {v: {r["id"]: r for r in variants.get(v, ())} for v in VARIANTS}
    by_score: dict[str, dict[str, Mapping[str, Any]]] = {}
    for s in scores:
        by_score.setdefault(s["id"], {})[s["variant"]] = s
    kept = {r["id"]: r.get("variant") for r in selected}
    return [
        sample_record(sid, {v: by_variant[v].get(sid) for v in VARIANTS}, by_score.get(sid, {}), method, kept.get(sid))
        for sid in sorted(by_variant["original"])
    ]
