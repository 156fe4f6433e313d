"""The canonical row: the one schema every stage reads and writes, and the one place that
names its fields, its variants and its input modes (its statuses: :mod:`reflection_tuning.status`).

A row is ``{"id", "instruction", "input", "output", "source"}`` (:data:`FIELDS` are its
text), plus stage fields. All four variants of a sample (:data:`VARIANTS`) keep the ``id``
of the original row, so they join on it.

Every row's ``status`` (and a score row's ``ifd_status`` / ``rifd_status``) is one of
:mod:`reflection_tuning.status`; only ``ok`` rows carry fields.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from reflection_tuning import status as st
from reflection_tuning.infra.errors import UserError

FIELDS = ("instruction", "input", "output")
VARIANTS = ("original", "instruction", "response", "both")


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
    if row is None or row.get("status", st.OK) != st.OK:
        return False
    return isinstance(row.get("instruction"), str) and isinstance(row.get("output"), str)


def check_rows(rows: Iterable[dict[str, Any]], where: str, sorted_ids: bool = False) -> int:
    """Check that every row has an ``id`` and string ``instruction`` / ``output`` (and, with
    ``sorted_ids``, that the ids ascend, as every stage writes them); return how many rows
    there are (``rows`` may be a stream: it is read once).

    Raises:
        UserError: the first bad row, named by its position in ``where``.
    """
    n, last = 0, None
    for n, row in enumerate(rows, start=1):
        missing = [k for k in ("id", "instruction", "output") if not isinstance(row.get(k), str)]
        if missing:
            raise UserError(f"{where}: row {n} (id {row.get('id')}) has no string {missing}; give the rows "
                            "fetch writes (reflection-tuning fetch), or fix that row")
        if sorted_ids and last is not None and row["id"] <= last:
            raise UserError(f"{where}: row {n} (id {row['id']}) is not after id {last}; the rows must be sorted by "
                            "id with no repeat, as fetch writes them")
        last = row["id"]
    return n
