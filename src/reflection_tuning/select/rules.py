"""Which variant of each sample to train on: pure functions over score rows, no I/O.

Methods:
    ``v2``        Selective Reflection-Tuning (arXiv 2402.10110, Sec. 3; the reference's
                  selection code): student-selected, see :func:`select_v2`.
    ``v1``        Reflection-Tuning (arXiv 2310.11716): the recycled pair, no student
                  selection, see :func:`select_v1`.
    ``original``  the original rows, unchanged (the baseline).
    ``random``    a seeded uniform sample of the original rows, at the budget (Xia et al.,
                  arXiv 2410.09335: random is a hard baseline for selection), :func:`cut_random`.
    ``length``    the original rows with the longest responses, in tokens of the student's
                  tokenizer, at the budget (Zhao et al., arXiv 2402.04833), :func:`cut_length`.

``select.budget`` (an int, or ``{match: v2}``: as many rows as v2 keeps on the same scores,
:func:`resolve_budget`) sets the rows kept, so that methods compare on equal terms. A
method that keeps more is cut to the budget: ``random`` and ``length`` by their own rule,
the others by a seeded uniform sample (or facility location, :mod:`.diversity`).

After a method has kept rows, ``top_k`` or ``ratio`` may keep the highest-IFD ones only
(Cherry LLM's ranking, arXiv 2308.12032, Sec. 3; Cherry_LLM ``cherry_seletion/
data_by_IFD.py`` and Superfiltering ``code_ifd/select_data.py``): rows with IFD >= 1 or
without a usable IFD are dropped first (the instruction does not help), then IFD
descending, ties broken by ``id``; see :func:`rank_limit`.

IFD and r-IFD are read each through its own status (``ifd_status``, ``rifd_status`` of
the score row): a failed r-IFD removes only the comparisons that need that r-IFD.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from reflection_tuning.rows import STATUS_OK
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
    if not row or ratio_status(row, key) != STATUS_OK:
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


class Ranked(NamedTuple):
    """What :func:`rank_limit` returns: the rows kept, in rank order, and the counts it dropped."""

    rows: list[Mapping[str, Any]]
    dropped_ifd_ge1: int  # IFD >= 1: the instruction does not help the student
    dropped_unscored: int  # no usable IFD: cannot be ranked (never read as 0)
    dropped_by_rank: int  # below the top_k / ratio cut


def rank_limit(rows: Sequence[Mapping[str, Any]], top_k: int | None = None,
               ratio: float | None = None) -> Ranked:
    """Cherry LLM's IFD ranking: keep the ``top_k`` (or ``floor(ratio * n)``) rows of highest ``ifd``.

    With ``top_k`` or ``ratio``, rows with IFD >= 1 (Cherry LLM, arXiv 2308.12032, Sec. 3:
    the instruction gives no help; Superfiltering's ``filter_threash`` 1) and rows without
    a usable IFD are dropped first; ``n`` counts the rows left (as Cherry_LLM's
    ``data_by_IFD.py`` takes ``sample_rate`` of its filtered list). Then IFD descending,
    ties by ``id``; the result is in that rank order. Neither given: every row, unranked
    and unfiltered (the method's selection as it is).

    Raises:
        ValueError: both given, ``top_k < 0``, or ``ratio`` outside [0, 1].
    """
    if top_k is not None and ratio is not None:
        raise ValueError("give top_k or ratio, not both")
    if top_k is not None and top_k < 0:
        raise ValueError(f"top_k must be >= 0, got {top_k}")
    if ratio is not None and not 0 <= ratio <= 1:
        raise ValueError(f"ratio must be in [0, 1], got {ratio}")
    if top_k is None and ratio is None:
        return Ranked(list(rows), 0, 0, 0)

    values = [usable_score({"ifd_status": STATUS_OK, "ifd": r.get("ifd")}, "ifd") for r in rows]
    unscored = sum(v is None for v in values)
    ge1 = sum(v is not None and v >= 1 for v in values)
    candidates = [(v, r) for v, r in zip(values, rows) if v is not None and v < 1]
    ranked = [r for v, r in sorted(candidates, key=lambda vr: (-vr[0], str(vr[1].get("id", ""))))]
    limit = top_k if top_k is not None else math.floor(ratio * len(ranked))
    return Ranked(ranked[:limit], ge1, unscored, max(len(ranked) - limit, 0))


def resolve_budget(budget: int | Mapping[str, str] | None, match_count: Any = None) -> int | None:
    """The number of rows to keep: ``budget`` itself, or for ``{match: v2}`` ``match_count("v2")``.

    Args:
        budget: None (no budget), an int >= 0, or ``{"match": method}``.
        match_count: ``method -> rows that method keeps`` (called only for ``match``).
    Raises:
        ValueError: a negative int, or a mapping that is not ``{match: <method>}``.
    """
    if budget is None:
        return None
    if isinstance(budget, bool):
        raise ValueError(f"budget must be an int or {{match: v2}}, got {budget!r}")
    if isinstance(budget, int):
        if budget < 0:
            raise ValueError(f"budget must be >= 0, got {budget}")
        return budget
    if isinstance(budget, Mapping) and set(budget) == {"match"} and budget["match"] in METHODS:
        return int(match_count(budget["match"]))
    raise ValueError(f"budget must be an int or {{match: <method>}} with a method of {METHODS}, got {budget!r}")


def cut_random(rows: Sequence[Mapping[str, Any]], n: int, seed: int) -> list[Mapping[str, Any]]:
    """A seeded uniform sample of ``n`` rows (all if fewer), in ``id`` order.

    The sample depends only on the seed and the set of ids (the rows are sorted by ``id``
    first), not on the order they come in.
    """
    import random

    ordered = sorted(rows, key=lambda r: str(r.get("id", "")))
    if n >= len(ordered):
        return ordered
    keep = sorted(random.Random(seed).sample(range(len(ordered)), n))
    return [ordered[i] for i in keep]


def cut_length(rows: Sequence[Mapping[str, Any]], n: int, tokens: Mapping[Any, int]) -> list[Mapping[str, Any]]:
    """The ``n`` rows with the longest responses: ``tokens[id]`` descending, ties by ``id``.

    Args:
        tokens: response length of each row, in tokens of the student's tokenizer.
    Raises:
        KeyError: a row without a length.
    """
    ranked = sorted(rows, key=lambda r: (-tokens[r["id"]], str(r["id"])))
    return ranked[:n]
