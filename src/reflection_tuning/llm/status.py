"""The statuses of an LLM step's output row, defined once for every step (the two reflections,
the judge, ``compress``) and read by ``score`` / ``select`` through :func:`reflection_tuning.rows.is_usable`.

Only ``ok`` rows carry fields; every other status says why a row has none, so a failure is
never a silent zero or a copy of the input.
"""

from __future__ import annotations

from reflection_tuning.rows import STATUS_OK

OK = STATUS_OK
PARSE_ERROR = "parse_error"  # the reply came back but holds no usable answer
TRUNCATED = "truncated"  # the reply hit max_tokens: never parsed as complete (unless the step reads cut replies)
REQUEST_ERROR = "request_error"  # the request failed after its retries
COST_CAP = "cost_cap"  # not sent: it could have taken the spend over max_cost
UPSTREAM_UNUSABLE = "upstream_unusable"  # not sent: the row this one builds on is not ok

STATUSES = (OK, PARSE_ERROR, TRUNCATED, REQUEST_ERROR, COST_CAP, UPSTREAM_UNUSABLE)
# A reply that the re-ask (``teacher.reask``) sends again: it came back but is not usable.
REASKABLE = frozenset({PARSE_ERROR, TRUNCATED})

__all__ = ["COST_CAP", "OK", "PARSE_ERROR", "REASKABLE", "REQUEST_ERROR", "STATUSES", "TRUNCATED",
           "UPSTREAM_UNUSABLE"]
