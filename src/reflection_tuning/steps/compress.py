"""Compress: (Q, input, A) -> (Q', "", A), an instruction and its input merged into one
instruction, the answer kept.

The reference preprocessed Alpaca this way before reflecting (Reflection_Tuning README: "we
first compress the instruction and input into one single instruction"). Template:
``compress.j2`` and ``compress.system.txt`` beside this module (``compress.prompt_file`` /
``system_file`` in params.yaml). A free-text reply holds ``[New Instruction] … [End]``
(:mod:`.markers`); a structured reply holds :data:`REPLY_FIELDS`. The ``compress`` command writes one
:func:`merged_row` per sent row.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reflection_tuning.llm.outcome import Outcome, provenance
from reflection_tuning.rows import FIELDS
from reflection_tuning.steps.markers import NEW_INSTRUCTION, ParseResult, parse_one, strict_first
from reflection_tuning.steps.rewrite import RewriteStep

REPLY_FIELDS = {"instruction": "the instruction with its input merged in"}


def parse_reply(reply: str) -> ParseResult:
    """Parse a reply into ``{"instruction": merged instruction}`` (the first complete ``[New Instruction]``)."""
    return strict_first(lambda t, strict: parse_one(t, strict, NEW_INSTRUCTION, "New Instruction", "instruction"),
                        reply)


class Compress(RewriteStep):
    """(Q, input, A) -> (Q', "", A)."""

    name = "compress"
    reply_fields = REPLY_FIELDS
    parse_reply = staticmethod(parse_reply)

    def new_fields(self, parsed: Mapping[str, str], row: Mapping[str, Any]) -> dict[str, Any]:
        return {"instruction": parsed["instruction"], "input": "", "output": row["output"]}


def merged_row(outcome: Outcome, model: str, template_hash: str) -> dict[str, Any]:
    """The output row (ok: ``id``, the merged fields, ``merged`` true, status, provenance) or the
    reject row (the input row with its status, ``reason`` and provenance) of one sent row."""
    row = outcome.row
    if outcome.ok:
        assert outcome.fields is not None
        return {"id": row["id"], **{k: outcome.fields[k] for k in FIELDS},
                "merged": True, "status": outcome.status, **provenance(outcome, model, template_hash)}
    return {**row, "status": outcome.status, "reason": outcome.reason, **provenance(outcome, model, template_hash)}
