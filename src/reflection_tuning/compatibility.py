"""Teacher–student compatibility: how the student's IFD and r-IFD moved from the original to
the reflected candidate that Selective Reflection-Tuning's rule weighed, and how often the
student accepted it, per teacher and branch. Pure functions over score rows, no I/O.

For each sample, :func:`reflection_tuning.select.rules.select_v2` picks the candidate (``both`` when the
reflected instruction is accepted, ``response`` otherwise); the shift is
``IFD(candidate) - IFD(original)`` and ``r-IFD(candidate) - r-IFD(original)`` (a negative
r-IFD shift: the response makes the instruction easier to guess). ``accepted`` is whether
v2 kept the candidate. Samples whose scores v2 could not use (``unscored``) carry no shift.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from reflection_tuning.rows import VARIANTS
from reflection_tuning.select.rules import select_v2, usable_score

CANDIDATES = ("both", "response")
TABLE_FIELDS = ("teacher", "candidate", "samples", "accepted", "accepted_share", "ifd_shift_median",
                "ifd_shift_mean", "rifd_shift_median", "rifd_shift_mean")


def _diff(new: float | None, old: float | None) -> float | None:
    return None if new is None or old is None else new - old


def shifts(ids: Sequence[str], variants: Mapping[str, Mapping[str, Mapping[str, Any]]],
           scores: Mapping[tuple[str, str], Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per scored sample: ``id, teacher, candidate, branch, accepted, ifd_shift, rifd_shift``.

    ``teacher`` is the candidate row's ``teacher_model`` (``unknown`` when absent).
    """
    out = []
    for i in ids:
        by_variant = {v: scores.get((i, v)) for v in VARIANTS}
        variant, branch = select_v2(by_variant)
        if branch == "unscored":
            continue
        candidate = "both" if branch.startswith("both") else "response"
        row = (variants.get(candidate) or {}).get(i) or {}
        out.append({
            "id": i, "teacher": row.get("teacher_model") or "unknown", "candidate": candidate, "branch": branch,
            "accepted": variant is not None,
            "ifd_shift": _diff(usable_score(by_variant[candidate], "ifd"), usable_score(by_variant["original"], "ifd")),
            "rifd_shift": _diff(usable_score(by_variant[candidate], "rifd"),
                                usable_score(by_variant["original"], "rifd")),
        })
    return out


def _stats(xs: list[float]) -> tuple[float | None, float | None]:
    return (statistics.median(xs), statistics.fmean(xs)) if xs else (None, None)


def table(shift_rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per (teacher, candidate): samples, accepted, their share, and the median / mean shifts."""
    out = []
    for teacher in sorted({r["teacher"] for r in shift_rows}):
        for cand in CANDIDATES:
            rs = [r for r in shift_rows if r["teacher"] == teacher and r["candidate"] == cand]
            if not rs:
                continue
            acc = sum(r["accepted"] for r in rs)
            ifd_m, ifd_a = _stats([r["ifd_shift"] for r in rs if r["ifd_shift"] is not None])
            rifd_m, rifd_a = _stats([r["rifd_shift"] for r in rs if r["rifd_shift"] is not None])
            out.append(dict(zip(TABLE_FIELDS, (teacher, cand, len(rs), acc, acc / len(rs), ifd_m, ifd_a,
                                               rifd_m, rifd_a))))
    return out


def metrics(shift_rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Flat, stable keys over all teachers: ``compat_<candidate>_{samples,accepted_share,ifd_shift_median,
    rifd_shift_median}``."""
    m: dict[str, Any] = {}
    for cand in CANDIDATES:
        rs = [r for r in shift_rows if r["candidate"] == cand]
        m[f"compat_{cand}_samples"] = len(rs)
        m[f"compat_{cand}_accepted_share"] = sum(r["accepted"] for r in rs) / len(rs) if rs else None
        for key in ("ifd_shift", "rifd_shift"):
            m[f"compat_{cand}_{key}_median"] = _stats([r[key] for r in rs if r[key] is not None])[0]
    return m


def write_csvs(shift_path: Any, table_path: Any, shift_rows: Sequence[Mapping[str, Any]]) -> None:
    """The plot data (one row per sample) and the per-teacher table, as CSV."""
    from reflection_tuning.infra.io import write_csv

    fields = ("id", "teacher", "candidate", "branch", "accepted", "ifd_shift", "rifd_shift")
    write_csv(shift_path, list(fields), ([r[f] for f in fields] for r in sorted(shift_rows, key=lambda r: r["id"])))
    write_csv(table_path, list(TABLE_FIELDS), ([r[f] for f in TABLE_FIELDS] for r in table(shift_rows)))
