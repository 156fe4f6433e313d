"""Which rows to train on: the selection, pure functions over rows already read (no I/O).

``select.method``: ``v2`` (Selective Reflection-Tuning, student-selected by IFD / r-IFD),
``v1`` (Reflection-Tuning, the recycled pairs), ``original``, and the baselines ``random``
and ``length`` at the budget. The modules, in the order a selection runs them:

- :mod:`.rules`: the methods' rules, per sample (the branches each one counts);
- :mod:`.rank`: Cherry LLM's IFD ranking (``top_k`` / ``ratio``);
- :mod:`.budget`: the budget (``budget``) and how a larger selection is cut to it;
- :mod:`.config`: the ``select:`` section (:class:`Config`);
- :mod:`.pipeline`: :func:`select`, one selection start to end, with its metrics.

The ``select`` stage reads the files, calls :func:`select` once and writes what it returns.
"""

from reflection_tuning.select.budget import cut_length, cut_random, cut_to_budget, resolve_budget
from reflection_tuning.select.config import Config
from reflection_tuning.select.pipeline import Selection, decontaminate, select
from reflection_tuning.select.rank import Ranked, rank_limit
from reflection_tuning.select.rules import (
    BASELINES,
    BRANCHES,
    KEPT_BRANCHES,
    METHODS,
    select_one,
    select_original,
    select_rows,
    select_v1,
    select_v2,
    usable_score,
)

__all__ = [
    "BASELINES", "BRANCHES", "KEPT_BRANCHES", "METHODS", "Config", "Ranked", "Selection", "cut_length",
    "cut_random", "cut_to_budget", "decontaminate", "rank_limit", "resolve_budget", "select", "select_one",
    "select_original", "select_rows", "select_v1", "select_v2", "usable_score",
]
