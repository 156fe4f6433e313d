"""Every status a row can have, each with one name, defined once (read as ``st.OK``, ``st.TRUNCATED``).

- An LLM step's row (the two reflections, ``compress``, the judge), :data:`STEP`: only ``ok``
  rows carry fields; every other status says why a row has none, so a failure is never a
  silent zero or a copy of the input.
- A score row (and each of its ratios), :data:`SCORE`: ``ok`` (a finite positive value),
  ``unusable`` (the variant row is not ok, never scored), ``empty`` (a term over zero target
  tokens), ``nan`` (a term missing, NaN, infinite or not positive).
- :data:`MISSING`: no row of that variant for the sample's ``id``.
"""

from __future__ import annotations

OK = "ok"  # the only status whose row is scored, selected or trained on: the whole reply
# An LLM step's row that is not ok.
PARSE_ERROR = "parse_error"  # the reply came back but holds no usable answer
TRUNCATED = "truncated"  # cut: the reply hit max_tokens, or a field ends at its length bound
REPETITIVE = "repetitive"  # degenerate: a field repeats one phrase (word n-gram repetition ratio)
COPY = "copy"  # a new field only repeats the critique, another new field or the original
REQUEST_ERROR = "request_error"  # the request failed after its retries
COST_CAP = "cost_cap"  # not sent: it could have taken the spend over max_cost
UPSTREAM_UNUSABLE = "upstream_unusable"  # not sent: the row this one builds on is not ok
STEP = (OK, PARSE_ERROR, TRUNCATED, REPETITIVE, COPY, REQUEST_ERROR, COST_CAP, UPSTREAM_UNUSABLE)
# A reply that came back but is not usable: the re-ask (``teacher.reask``) sends it again.
REASKABLE = frozenset({PARSE_ERROR, TRUNCATED, REPETITIVE, COPY})
# A score row (and each of its ratios) that is not ok.
UNUSABLE = "unusable"
EMPTY = "empty"
NAN = "nan"
SCORE = (OK, UNUSABLE, EMPTY, NAN)
MISSING = "missing"
ALL = frozenset(STEP + SCORE + (MISSING,))
