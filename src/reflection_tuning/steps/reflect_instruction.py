"""Reflect-instruction: (Q, A) -> (Q*, A_Q*), a new self-contained instruction and its answer.

Reflection-Tuning (arXiv 2310.11716, Sec. 2): the teacher critiques the instruction
(complexity, detail, knowledge, ambiguity, reasoning) and its answer, writes a better
instruction Q* with any input folded in (so the new row's ``input`` is ""), and answers it
with A_Q*. Template: ``reflect_instruction.j2`` and ``reflect_instruction.system.txt`` beside
this module (``reflect_instruction.prompt_file`` / ``system_file`` in params.yaml).

A free-text reply holds ``[New Instruction] … [End]`` then ``[New Answer] … [End]``
(:mod:`.markers` says what is tolerated); a structured reply holds :data:`REPLY_FIELDS`. The stage
writes one :func:`~.rewrite.teacher_row` per input row, variant :data:`VARIANT`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reflection_tuning.steps.markers import (
    END_MARKER,
    NEW_ANSWER,
    NEW_INSTRUCTION,
    ParseResult,
    critique,
    fail,
    markers,
    ok,
    rejection,
    segment,
    strict_first,
)
from reflection_tuning.steps.rewrite import RewriteStep

VARIANT = "instruction"
# The fields of a structured reply, in the order the reply writes them.
REPLY_FIELDS = {"critique": "why the instruction and its answer are weak", "instruction": "the new instruction",
                "output": "the answer to the new instruction"}


def parse_reply(reply: str) -> ParseResult:
    """Parse a reply into ``{"instruction": Q*, "output": A_Q*}``.

    A candidate is a ``[New Instruction]`` marker followed (before the next one) by a
    ``[New Answer]`` marker; it is complete when both segments are non-empty and no echo.
    A marker in the middle of a line (not right after another marker) is first read as
    content, and only as a marker when the reply does not parse that way.
    """
    return strict_first(_parse, reply)


def _parse(reply: str, strict: bool) -> ParseResult:
    ms = markers(reply or "", {"instruction": NEW_INSTRUCTION, "answer": NEW_ANSWER, "end": END_MARKER}, strict)
    starts = [i for i, m in enumerate(ms) if m.kind == "instruction"]
    if not starts:
        return fail("no [New Instruction] marker in reply", 0)
    skipped: list[str] = []
    for n, i in enumerate(starts):
        label = f"candidate {n + 1}"
        limit = starts[n + 1] if n + 1 < len(starts) else len(ms)
        instruction = segment(reply, ms, i)
        why = rejection(instruction, "new instruction")
        if why:
            skipped.append(f"{label}: {why}")
            continue
        answers = [j for j in range(i + 1, limit) if ms[j].kind == "answer"]
        if not answers:
            skipped.append(f"{label}: no [New Answer] after [New Instruction]")
            continue
        for j in answers:
            output = segment(reply, ms, j)
            why = rejection(output, "new answer")
            if why is None:
                return ok({"instruction": instruction, "output": output}, skipped, len(starts), n,
                          critique(reply, ms, starts[0]))
            skipped.append(f"{label}: {why}")
    return fail("; ".join(skipped), len(starts))


class ReflectInstruction(RewriteStep):
    """(Q, A) -> (Q*, A_Q*): a new self-contained instruction (``input`` "") and its answer."""

    name = "reflect_instruction"
    reply_fields = REPLY_FIELDS
    parse_reply = staticmethod(parse_reply)

    def new_fields(self, parsed: Mapping[str, str], row: Mapping[str, Any]) -> dict[str, Any]:
        return {"instruction": parsed["instruction"], "input": "", "output": parsed["output"]}
