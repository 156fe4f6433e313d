"""IFD and r-IFD from mean negative log-likelihoods: pure math, no torch.

Every input is a mean NLL in nats per target token (or the perplexity ``exp`` of one).
A value that cannot be computed is an explicit failure, ``Ratio(None, status)``: the
reference scorer (Reflection_Tuning ``selection_code/data_analysis.py``) returned ``0``
on failure, which then passed every ``< 1`` filter and got selected. Never here.

IFD and r-IFD are independent: each has its own status (``ifd_status``, ``rifd_status``),
and a failure of one never removes the other, as in the reference, where each ratio
stands alone and a failure only removes the comparisons that need it.

Statuses (:data:`reflection_tuning.status.SCORE`):
    ``ok``     the value is a finite positive number.
    ``empty``  a term was computed over zero target tokens.
    ``nan``    a term is missing (None), NaN, infinite, or not positive.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, NamedTuple

from reflection_tuning import status as st

# The four perplexity terms, named as in the score rows (`ppl_<term>`, `loss_<term>`, `tokens_<term>`)
# and as the keys of templates.scoring_pairs.
TERMS = ("a_given_q", "a", "q_given_a", "q")


class Ratio(NamedTuple):
    """A score ratio, or why there is none: ``value`` is None unless ``status == "ok"``."""

    value: float | None
    status: str


def _finite_positive(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0


def perplexity(loss: float | None) -> float | None:
    """``exp(loss)`` for a mean NLL ``loss`` (nats/token); None if it is None, NaN, inf or overflows.

    A loss of 0 is legal (PPL 1); a negative loss is not an NLL and gives None.
    """
    if loss is None or isinstance(loss, bool) or not isinstance(loss, (int, float)):
        return None
    if not math.isfinite(loss) or loss < 0:
        return None
    try:
        value = math.exp(loss)
    except OverflowError:
        return None
    return value if math.isfinite(value) else None


def ratio(num: float | None, den: float | None, tokens_num: int | None = None, tokens_den: int | None = None) -> Ratio:
    """``num / den`` of two perplexities, or a failure.

    ``tokens_*`` are the target-token counts behind each perplexity; 0 means the term was
    never computed (status ``empty``), None means "not known" and is not checked.
    """
    if tokens_num == 0 or tokens_den == 0:
        return Ratio(None, st.EMPTY)
    if not (_finite_positive(num) and _finite_positive(den)):
        return Ratio(None, st.NAN)
    value = num / den
    if not math.isfinite(value) or value <= 0:
        return Ratio(None, st.NAN)
    return Ratio(value, st.OK)


def ifd(ppl_a_given_q: float | None, ppl_a: float | None, tokens_a_given_q: int | None = None,
        tokens_a: int | None = None) -> Ratio:
    """Instruction-Following Difficulty, ``IFD(Q, A) = PPL(A | Q) / PPL(A)``.

    Cherry LLM, "From Quantity to Quality" (Li et al., NAACL 2024, arXiv 2308.12032), Sec. 3
    ("Instruction-Following Difficulty"): the conditioned answer score over the direct
    answer score. IFD >= 1 means the instruction does not help the model predict the
    answer (Cherry LLM filters those out).
    """
    return ratio(ppl_a_given_q, ppl_a, tokens_a_given_q, tokens_a)


def rifd(ppl_q_given_a: float | None, ppl_q: float | None, tokens_q_given_a: int | None = None,
         tokens_q: int | None = None) -> Ratio:
    """Reversed IFD, ``r-IFD(Q, A) = PPL(Q | A') / PPL(Q)``, with A' the reverse prompt around A.

    Selective Reflection-Tuning (Li et al., ACL Findings 2024, arXiv 2402.10110), Sec. 3
    ("reversed-IFD"): how much the response helps the student guess the instruction. A
    lower value means a more feasible pair for the student.
    """
    return ratio(ppl_q_given_a, ppl_q, tokens_q_given_a, tokens_q)


def score_fields(losses: Mapping[str, float | None], tokens: Mapping[str, int | None]) -> dict[str, Any]:
    """The score-row fields from the four mean losses (nats/token) and target-token counts.

    Args:
        losses: ``{term: mean NLL or None}`` for every term in :data:`TERMS`.
        tokens: ``{term: target tokens scored}``.
    Returns:
        ``status``, ``ifd_status``, ``rifd_status``, ``ppl_<term>``, ``ifd``, ``rifd``,
        ``loss_<term>``, ``tokens_<term>``.
        ``ifd`` is None unless ``ifd_status`` is ``ok``, ``rifd`` unless ``rifd_status`` is;
        neither depends on the other. ``status`` summarises the row: ``ok`` if both ratios
        are, else the first failure (IFD's first); a consumer of one ratio reads that
        ratio's own status (:func:`ratio_status`). ``ppl_<term>`` is None where the loss is
        not a usable NLL.
    """
    ppls = {t: perplexity(losses.get(t)) for t in TERMS}
    r_ifd = ifd(ppls["a_given_q"], ppls["a"], tokens.get("a_given_q"), tokens.get("a"))
    r_rifd = rifd(ppls["q_given_a"], ppls["q"], tokens.get("q_given_a"), tokens.get("q"))
    status = r_ifd.status if r_ifd.status != st.OK else r_rifd.status
    out: dict[str, Any] = {"status": status, "ifd_status": r_ifd.status, "rifd_status": r_rifd.status}
    for t in TERMS:
        out[f"ppl_{t}"] = ppls[t]
    out["ifd"] = r_ifd.value
    out["rifd"] = r_rifd.value
    for t in TERMS:
        loss = losses.get(t)
        out[f"loss_{t}"] = loss if loss is not None and math.isfinite(loss) else None
    for t in TERMS:
        out[f"tokens_{t}"] = tokens.get(t)
    return out


def ratio_status(row: Mapping[str, Any], key: str) -> str | None:
    """The status of ratio ``key`` (``ifd`` or ``rifd``) in a score row: ``<key>_status``.

    A row written before the per-ratio statuses existed has only ``status``, which then
    stands for both ratios.
    """
    return row.get(f"{key}_status", row.get("status"))
