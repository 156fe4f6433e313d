"""The canonical row: the one schema every stage reads and writes.

A row is ``{"id", "instruction", "input", "output", "source"}``, plus stage fields. All
four variants of a sample (``original``, ``instruction``, ``response``, ``both``) keep
the ``id`` of the original row, so they join on it.
"""

from __future__ import annotations

import hashlib
import json

VARIANTS = ("original", "instruction", "response", "both")

# Per-row status values. Only STATUS_OK rows are scored; every other value says why not.
STATUS_OK = "ok"


def row_id(instruction: str, input: str, output: str) -> str:
    """A stable content hash (16 hex chars of SHA-256) of one (instruction, input, output) triple."""
    blob = json.dumps([instruction, input, output], ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def canonical(instruction: str, input: str, output: str, source: str) -> dict:
    """A canonical row with its ``id``."""
    return {
        "id": row_id(instruction, input, output),
        "instruction": instruction,
        "input": input,
        "output": output,
        "source": source,
    }


def is_usable(row: dict | None) -> bool:
    """A variant row can be scored or trained on: status ``ok`` and text fields present.

    ``original`` rows carry no status: fetch wrote them, so they are ok by construction.
    """
    if row is None or row.get("status", STATUS_OK) != STATUS_OK:
        return False
    return isinstance(row.get("instruction"), str) and isinstance(row.get("output"), str)


def merge_input(instruction: str, input: str) -> str:
    """The instruction with its input folded in: ``instruction + "\\n\\n" + input``; no input, unchanged.

    One deterministic rule wherever an input is folded (fetch with ``input: merge``, and
    the score stage's ``input: merge``), so that a merged row and a row merged at scoring
    time give the same text. A blank line keeps the input a paragraph of its own, as the
    Alpaca template sets it apart.
    """
    return f"{instruction}\n\n{input}" if input else instruction
