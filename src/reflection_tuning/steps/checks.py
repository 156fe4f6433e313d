"""Whether a parsed reply is whole: the checks every rewrite step runs before a row is ``ok``.
Pure, no I/O.

- ``truncated``: a field ends at its length bound (``max_chars``, sent as the JSON schema's
  ``maxLength``): a server that constrains its decoding to the schema closed the string
  there, so the model did not finish it, though the reply is valid JSON with
  ``finish_reason: stop``.
- ``repetitive``: a field is degenerate, one phrase repeated: its word n-gram repetition
  ratio is above ``max_repetition``. The ratio is Data-Juicer's ``word_repetition_filter``
  (modelscope/data-juicer, ``data_juicer/ops/filter/word_repetition_filter.py``): of a
  text's word n-grams, the share that belong to an n-gram occurring more than once.
- ``copy``: a new field only repeats the critique, another new field, or the original row's
  field (a small teacher writes "The Instruction is weak" as critique, instruction and answer).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reflection_tuning import status as st
from reflection_tuning.llm.step import Failure

_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class ReplyChecks:
    """The checks of one step's replies.

    Attributes:
        max_chars: ``{field: characters}`` bounds sent in the JSON schema and stated in the
            prompt (``None``: no bounds, e.g. a remote teacher whose answers may be long).
        max_repetition: the highest word n-gram repetition ratio (0..1) of an ``ok`` field.
        repetition_ngram: n, in words.
    """

    max_chars: Mapping[str, int] | None
    max_repetition: float
    repetition_ngram: int


def repetition_ratio(text: str, n: int) -> float:
    """The word n-gram repetition ratio of ``text`` (0: no n-gram repeats; 1: every one does).

    Of the text's word n-grams (lower-cased ``\\w+`` words), the share whose n-gram occurs more
    than once, as Data-Juicer's ``word_repetition_filter`` counts it. A text of fewer than
    ``n`` words has no n-gram: 0.
    """
    words = _WORD.findall(text.lower())
    grams = Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))
    total = sum(grams.values())
    return sum(c for c in grams.values() if c > 1) / total if total else 0.0


def _norm(text: str) -> str:
    return " ".join(_WORD.findall(text.lower()))


def whole(fields: Mapping[str, str], row: Mapping[str, Any], checks: ReplyChecks, *,
          structured: bool) -> tuple[Failure | None, float]:
    """Whether the new ``fields`` of a reply (``critique`` plus the rewritten ones, as the
    reply wrote them) are whole: ``(None, ratio)`` when they are, else ``(Failure, ratio)``
    whose reason names the field. ``ratio`` is the highest repetition ratio of a new field.

    Args:
        row: the input row (its ``instruction`` / ``output``: what a copy repeats).
        structured: the reply was constrained by the JSON schema, so a field at its bound was cut.
    """
    new = {k: v for k, v in fields.items() if k != "critique"}
    ratios = {k: repetition_ratio(v, checks.repetition_ngram) for k, v in fields.items()}
    ratio = max((ratios[k] for k in new), default=0.0)
    if structured and checks.max_chars:
        for k, v in fields.items():
            bound = checks.max_chars.get(k)
            if bound is not None and len(v) >= bound:
                return Failure(st.TRUNCATED, f"{k} ends at its bound of {bound} characters "
                                                 "(the decoder closed it, not the model)"), ratio
    for k, r in ratios.items():
        if r > checks.max_repetition:
            return Failure(st.REPETITIVE, f"{k} repeats itself: word {checks.repetition_ngram}-gram repetition "
                                              f"ratio {r:.2f} > {checks.max_repetition}"), ratio
    critique = _norm(fields.get("critique", ""))
    for k, v in new.items():
        text = _norm(v)
        others = [(o, _norm(w)) for o, w in new.items() if o != k]
        # all of it stands in the critique, and is no small part of it (a short answer may be quoted)
        if critique and text and text in critique and 2 * len(text) >= len(critique):
            return Failure(st.COPY, f"{k} only repeats the critique"), ratio
        for o, w in others:
            if text and text == w:
                return Failure(st.COPY, f"{k} only repeats the new {o}"), ratio
        if text and text == _norm(str(row.get(k) or "")):
            return Failure(st.COPY, f"{k} only repeats the original {k}"), ratio
    return None, ratio


def bounds_sentence(max_chars: Mapping[str, int], names: Mapping[str, str]) -> str:
    """The sentence a prompt gains when bounds are sent: each field's bound in characters
    (``names``: how the prompt calls each field)."""
    parts = [f"{names.get(k, k)} at most {v} characters" for k, v in max_chars.items()]
    return "Keep every part complete within its length: " + ", ".join(parts) + "."
