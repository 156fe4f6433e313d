"""Which variant of each sample to train on: the methods' rules, pure functions over score rows.

Methods:
    ``v2``        Selective Reflection-Tuning (arXiv 2402.10110, Sec. 3; the reference's
                  selection code): student-selected, see :func:`select_v2`.
    ``v1``        Reflection-Tuning (arXiv 2310.11716): the recycled pair, no student
                  selection, see :func:`select_v1`.
    ``original``  the original rows, unchanged (the baseline).
    ``random``, ``length``  the original rows, cut to the budget by their own rule
                  (:mod:`.budget`).

IFD and r-IFD are read each through its own status (``ifd_status``, ``rifd_status`` of
the score row): a failed r-IFD removes only the comparisons that need that r-IFD.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from reflection_tuning import status as st
from reflection_tuning.rows import VARIANTS, is_usable
from reflection_tuning.score.ifd import ratio_status

METHODS = ("v2", "v1", "original", "random", "length")
BASELINES = ("random", "length")  # the original rows, cut to the budget by their own rule

# Every branch a sample can end in, per method; each is counted in the select metrics.
BRANCHES = {
    "v2": (
        "both",  # instruction accepted; r-IFD(both) < r-IFD(instruction), IFD(both) < 1, r-IFD(both) < 1
        "both_not_easier",  # instruction accepted; r-IFD(both) >= r-IFD(instruction): not kept
        "both_filtered",  # instruction accepted, r-IFD lower, but IFD(both) >= 1 or r-IFD(both) >= 1
        "response",  # instruction rejected; r-IFD(response) < r-IFD(original), IFD < 1, r-IFD < 1
        "response_not_easier",  # instruction rejected; r-IFD(response) >= r-IFD(original): not kept
        "response_filtered",  # instruction rejected, r-IFD lower, but IFD(response) >= 1 or r-IFD >= 1
        "unscored",  # a score the rule needs is missing or failed: not kept (never read as 0)
    ),
    "v1": ("both", "instruction_fallback", "original_fallback", "unusable"),
    "original": ("original", "unusable"),
    "random": ("original", "unusable"),
    "length": ("original", "unusable"),
}
KEPT_BRANCHES = {"both", "response", "instruction_fallback", "original_fallback", "original"}


def usable_score(row: Mapping[str, Any] | None, key: str) -> float | None:
    """``row[key]`` (``ifd`` or ``rifd``) if that ratio's status is ``ok`` and the value a finite number, else None.

    The status read is ``<key>_status`` (``status`` in rows that predate it): IFD and r-IFD
    are independent, and a failed r-IFD never hides an IFD.
    """
    if not row or ratio_status(row, key) != st.OK:
        return None
    value = row.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def select_v2(scores: Mapping[str, Mapping[str, Any] | None]) -> tuple[str | None, str]:
    """Selective Reflection-Tuning's rule for one sample (method.md, "Selection, method v2").

    Args:
        scores: score rows by variant (``original``, ``instruction``, ``response``,
            ``both``), each with ``status``, ``ifd``, ``rifd``; missing variants may be absent.
    Returns:
        (the kept variant or None, the branch). IFD(instruction) == IFD(original) and equal
        r-IFDs are "not greater"/"not lower": the strict comparisons of the reference.

    A reflected instruction without a usable IFD (the teacher failed on it, or its score
    failed) is *rejected*, not a reason to drop the sample: there is no evidence that it is
    better, so the sample goes on to the response branch. The reference reached the same
    branch by silently putting the original back in place of a failed reflection (equal
    IFDs are "not greater"); here the failure stays visible in the score rows. Whatever is
    kept needs every score its own comparison uses: a failed one is ``unscored``.
    """
    ifd_ins = usable_score(scores.get("instruction"), "ifd")
    ifd_ori = usable_score(scores.get("original"), "ifd")
    if ifd_ins is not None and ifd_ori is not None and ifd_ins > ifd_ori:
        # the reflected instruction is harder to follow: accepted
        candidate, baseline = "both", "instruction"
    else:  # rejected: compare the reflected response with the original pair
        candidate, baseline = "response", "original"
    rifd_new = usable_score(scores.get(candidate), "rifd")
    rifd_old = usable_score(scores.get(baseline), "rifd")
    ifd_new = usable_score(scores.get(candidate), "ifd")
    if rifd_new is None or rifd_old is None or ifd_new is None:
        return None, "unscored"
    if not rifd_new < rifd_old:
        return None, f"{candidate}_not_easier"
    if not (ifd_new < 1 and rifd_new < 1):
        return None, f"{candidate}_filtered"
    return candidate, candidate


def select_v1(usable: Mapping[str, bool]) -> tuple[str | None, str]:
    """Reflection-Tuning V1: train on the recycled pair, one row per original sample.

    The recycled pair is ``both`` (Q*, A**): the reflected instruction with its reflected
    response. Recycled Alpaca keeps every sample (52k in, 52k out), so when the teacher
    failed on ``both`` we fall back to ``instruction`` (Q*, A_Q*), and then to the original.

    Args:
        usable: by variant, whether its row is usable (teacher status ``ok``).
    """
    if usable.get("both"):
        return "both", "both"
    if usable.get("instruction"):
        return "instruction", "instruction_fallback"
    if usable.get("original"):
        return "original", "original_fallback"
    return None, "unusable"


def select_original(usable: Mapping[str, bool]) -> tuple[str | None, str]:
    """The baseline: the original pair of every sample."""
    return ("original", "original") if usable.get("original") else (None, "unusable")


def select_one(method: str, scores: Mapping[str, Mapping[str, Any] | None],
               usable: Mapping[str, bool]) -> tuple[str | None, str]:
    """Dispatch to the method's rule; v2 also requires the kept variant's row to be usable.

    Raises:
        ValueError: unknown method.
    """
    if method == "v2":
        variant, branch = select_v2(scores)
        if variant is not None and not usable.get(variant):
            return None, "unscored"  # scored ok but its text is gone: cannot train on it
        return variant, branch
    if method == "v1":
        return select_v1(usable)
    if method == "original" or method in BASELINES:
        return select_original(usable)
    raise ValueError(f"unknown selection method {method!r}; expected one of {METHODS}")


def select_rows(method: str, originals: Sequence[str], variants: Mapping[str, Mapping[str, dict]],
                scores: Mapping[tuple[str, str], dict]) -> tuple[list[dict[str, Any]], Counter]:
    """Apply ``method`` to each original id; returns (the kept rows, a Counter of branches).

    Args:
        originals: the sample ids, in order.
        variants: ``{variant: {id: teacher row}}``.
        scores: ``{(id, variant): score row}``.
    Returns:
        rows of ``id``, ``variant``, ``instruction``, ``input``, ``output``, ``source``,
        ``ifd``, ``rifd`` (None unless usable).
    Raises:
        ValueError: unknown method.
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
