"""The statuses of an LLM step's output row (the two reflections, the judge, ``compress``),
by the short names the ``llm`` package uses. They are defined once, in
:mod:`reflection_tuning.rows`, and read by ``score`` / ``select`` through
:func:`reflection_tuning.rows.is_usable`.
"""

from __future__ import annotations

from reflection_tuning.rows import STATUS_COPY as COPY
from reflection_tuning.rows import STATUS_COST_CAP as COST_CAP
from reflection_tuning.rows import STATUS_OK as OK
from reflection_tuning.rows import STATUS_PARSE_ERROR as PARSE_ERROR
from reflection_tuning.rows import STATUS_REPETITIVE as REPETITIVE
from reflection_tuning.rows import STATUS_REQUEST_ERROR as REQUEST_ERROR
from reflection_tuning.rows import STATUS_TRUNCATED as TRUNCATED
from reflection_tuning.rows import STATUS_UPSTREAM_UNUSABLE as UPSTREAM_UNUSABLE
from reflection_tuning.rows import STEP_STATUSES as STATUSES

# A reply that the re-ask (``teacher.reask``) sends again: it came back but is not usable.
REASKABLE = frozenset({PARSE_ERROR, TRUNCATED, REPETITIVE, COPY})

__all__ = ["COPY", "COST_CAP", "OK", "PARSE_ERROR", "REASKABLE", "REPETITIVE", "REQUEST_ERROR", "STATUSES",
           "TRUNCATED", "UPSTREAM_UNUSABLE"]
