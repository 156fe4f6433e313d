"""Cherry LLM's IFD ranking of the rows a method kept (``select.top_k`` / ``select.ratio``).

After a method has kept rows, ``top_k`` or ``ratio`` may keep the highest-IFD ones only
(Cherry LLM's ranking, arXiv 2308.12032, Sec. 3; Cherry_LLM ``cherry_seletion/
data_by_IFD.py`` and Superfiltering ``code_ifd/select_data.py``): rows with IFD >= 1 or
without a usable IFD are dropped first (the instruction does not help), then IFD
descending, ties broken by ``id``; see :func:`rank_limit`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from reflection_tuning import status as st
from reflection_tuning.select.rules import usable_score


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

    values = [usable_score({"ifd_status": st.OK, "ifd": r.get("ifd")}, "ifd") for r in rows]
    unscored = sum(v is None for v in values)
    ge1 = sum(v is not None and v >= 1 for v in values)
    candidates = [(v, r) for v, r in zip(values, rows) if v is not None and v < 1]
    ranked = [r for v, r in sorted(candidates, key=lambda vr: (-vr[0], str(vr[1].get("id", ""))))]
    limit = top_k if top_k is not None else math.floor(ratio * len(ranked))
    return Ranked(ranked[:limit], ge1, unscored, max(len(ranked) - limit, 0))
