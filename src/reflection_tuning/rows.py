"""The canonical row: the one schema every stage reads and writes, and the one place that
names its fields, its variants, its statuses and its input modes.

A row is ``{"id", "instruction", "input", "output", "source"}`` (:data:`FIELDS` are its
text), plus stage fields. All four variants of a sample (:data:`VARIANTS`) keep the ``id``
of the original row, so they join on it.

Statuses, the ``status`` of a row (and ``ifd_status`` / ``rifd_status`` of a score row):

- an LLM step's row (the two reflections, ``compress``, the judge), :data:`STEP_STATUSES`:
  only ``ok`` rows carry fields; every other status says why a row has none, so a failure
  is never a silent zero or a copy of the input;
- a score row, :data:`SCORE_STATUSES`: ``ok`` (a finite positive value), ``unusable``
  (the variant row is not ok, never scored), ``empty`` (a term over zero target tokens),
  ``nan`` (a term missing, NaN, infinite or not positive);
- :data:`STATUS_MISSING`: no row of that variant for the sample's ``id``.
"""

from __future__ import annotations

import hashlib
import json

FIELDS = ("instruction", "input", "output")
VARIANTS = ("original", "instruction", "response", "both")

STATUS_OK = "ok"  # the only status whose row is scored, selected or trained on
# An LLM step's row that is not ok.
STATUS_PARSE_ERROR = "parse_error"  # the reply came back but holds no usable answer
STATUS_TRUNCATED = "truncated"  # cut: the reply hit max_tokens, or a field ends at its length bound
STATUS_REPETITIVE = "repetitive"  # degenerate: a field repeats one phrase (word n-gram repetition ratio)
STATUS_COPY = "copy"  # a new field only repeats the critique, another new field or the original
STATUS_REQUEST_ERROR = "request_error"  # the request failed after its retries
STATUS_COST_CAP = "cost_cap"  # not sent: it could have taken the spend over max_cost
STATUS_UPSTREAM_UNUSABLE = "upstream_unusable"  # not sent: the row this one builds on is not ok
STEP_STATUSES = (STATUS_OK, STATUS_PARSE_ERROR, STATUS_TRUNCATED, STATUS_REPETITIVE, STATUS_COPY,
                 STATUS_REQUEST_ERROR, STATUS_COST_CAP, STATUS_UPSTREAM_UNUSABLE)
# A score row (and each of its ratios) that is not ok.
STATUS_UNUSABLE = "unusable"
STATUS_EMPTY = "empty"
STATUS_NAN = "nan"
SCORE_STATUSES = (STATUS_OK, STATUS_UNUSABLE, STATUS_EMPTY, STATUS_NAN)
STATUS_MISSING = "missing"
STATUSES = frozenset(STEP_STATUSES + SCORE_STATUSES + (STATUS_MISSING,))


def row_id(instruction: str, input: str, output: str) -> str:
    """A stable content hash (16 hex chars of SHA-256) of one (instruction, input, output) triple."""
    blob = json.dumps([instruction, input, output], ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


# How an ``input`` field reaches a prompt (params ``datasets.<name>.input`` for fetch,
# ``score.input_mode`` for the scoring templates): folded into the instruction (``merge_input``),
# or kept apart for the templates' with-input shape.
INPUT_MODES = ("merge", "keep")
INPUT_SEPARATOR = "\n\n"


def merge_input(instruction: str, input: str) -> str:
    """One instruction holding the instruction and its input, the same text every time.

    The input follows the instruction after one blank line (``INPUT_SEPARATOR``): that is
    how Alpaca's own prompt sets an input apart from its instruction, so the student reads
    the same words in the same order with or without the merge, and the original parts can
    be found again. An input that is empty or all whitespace adds nothing. Why merge at all:
    the reference scored and trained on instructions that already hold their input
    (Reflection-Tuning, arXiv 2310.11716, its ``cherry_alpaca_5_percent_compressed.json``),
    so that IFD(instruction) and IFD(original) compare one template shape.
    """
    if not input.strip():
        return instruction
    return instruction.rstrip() + INPUT_SEPARATOR + input.strip()


def canonical(instruction: str, input: str, output: str, source: str, input_mode: str = "keep") -> dict:
    """A canonical row with its ``id``.

    The ``id`` hashes the triple as read, before any merge, so a sample has the same ``id``
    under ``input_mode`` ``merge`` and ``keep``, and rows without an input keep the ``id``
    they always had. With ``merge`` the row's ``input`` is ``""`` (see ``merge_input``).

    Raises:
        ValueError: ``input_mode`` is not one of ``INPUT_MODES``.
    """
    if input_mode not in INPUT_MODES:
        raise ValueError(f"unknown input mode {input_mode!r}; expected one of {INPUT_MODES}")
    id_ = row_id(instruction, input, output)
    if input_mode == "merge":
        instruction, input = merge_input(instruction, input), ""
    return {"id": id_, "instruction": instruction, "input": input, "output": output, "source": source}


def is_usable(row: dict | None) -> bool:
    """A variant row can be scored or trained on: status ``ok`` and text fields present.

    ``original`` rows carry no status: fetch wrote them, so they are ok by construction.
    """
    if row is None or row.get("status", STATUS_OK) != STATUS_OK:
        return False
    return isinstance(row.get("instruction"), str) and isinstance(row.get("output"), str)
