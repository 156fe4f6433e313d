"""The teacher's LLM steps (the :class:`~reflection_tuning.llm.step.Step` contract): the two
reflections of Reflection-Tuning (arXiv 2310.11716, Sec. 2) and the rewrite of instruction +
input as one instruction that the reference applied to its data before reflecting.

Each step reads ``instruction``, ``input`` and ``output`` from a row and returns the new
row's ``instruction``, ``input`` and ``output`` (plus the teacher's ``critique``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reflection_tuning.llm.cache import Completion, Messages
from reflection_tuning.llm.status import PARSE_ERROR
from reflection_tuning.llm.step import Failure, Parsed, object_schema
from reflection_tuning.teacher.parse import (
    ParseResult,
    parse_instruction_reply,
    parse_merged_reply,
    parse_response_reply,
)
from reflection_tuning.teacher.prompts import FIELDS, Prompt

ROW_FIELDS = ("instruction", "input", "output")
OUTPUT_FIELDS = (*ROW_FIELDS, "critique")


class _PromptStep:
    """A step whose request is a :class:`Prompt` filled from the row's instruction, input and output."""

    name = ""
    input_columns = FIELDS
    output_fields = OUTPUT_FIELDS
    schema: Mapping[str, Any] = {}
    reads_truncated = False

    def __init__(self, prompt: Prompt) -> None:
        self.prompt = prompt

    @property
    def template_hash(self) -> str:
        return self.prompt.hash

    def format_input(self, row: Mapping[str, Any]) -> Messages:
        return self.prompt.messages(row["instruction"], row.get("input") or "", row["output"])

    def parse(self, reply: Completion, row: Mapping[str, Any]) -> Parsed | Failure:
        result = self._parse(reply.content)
        if not result.ok:
            return Failure(PARSE_ERROR, result.reason or "no usable answer in the reply")
        fields = {**self._fields(result.fields, row), "critique": result.critique}
        return Parsed(fields, note=result.reason, candidates=result.candidates)

    def parse_json(self, obj: Mapping[str, Any], row: Mapping[str, Any]) -> Parsed | Failure:
        texts = {k: str(v).strip() for k, v in obj.items()}
        empty = [k for k in self.schema["required"] if k != "critique" and not texts.get(k)]
        if empty:
            return Failure(PARSE_ERROR, f"empty {', '.join(empty)} in the JSON reply")
        return Parsed({**self._fields(texts, row), "critique": texts.get("critique", "")})

    def _parse(self, text: str) -> ParseResult:  # pragma: no cover - overridden
        raise NotImplementedError

    def _fields(self, parsed: dict[str, str], row: Mapping[str, Any]) -> dict[str, Any]:  # pragma: no cover
        raise NotImplementedError


class ReflectInstruction(_PromptStep):
    """(Q, A) -> (Q*, A_Q*): a new self-contained instruction (any input folded in, so ``input``
    is "") and its answer."""

    name = "reflect_instruction"
    schema = object_schema(critique="why the instruction and its answer are weak", instruction="the new instruction",
                           output="its answer")

    def _parse(self, text: str) -> ParseResult:
        return parse_instruction_reply(text)

    def _fields(self, parsed: dict[str, str], row: Mapping[str, Any]) -> dict[str, Any]:
        return {"instruction": parsed["instruction"], "input": "", "output": parsed["output"]}


class ReflectResponse(_PromptStep):
    """(Q, A) -> (Q, A*): the row's instruction and input, and a better answer."""

    name = "reflect_response"
    schema = object_schema(critique="why the answer is weak", output="the better answer")

    def _parse(self, text: str) -> ParseResult:
        return parse_response_reply(text)

    def _fields(self, parsed: dict[str, str], row: Mapping[str, Any]) -> dict[str, Any]:
        return {"instruction": row["instruction"], "input": row.get("input") or "", "output": parsed["output"]}


class Compress(_PromptStep):
    """(Q, input, A) -> (Q', "", A): the instruction and its input merged into one instruction,
    the answer kept, as the reference preprocessed Alpaca before reflecting (Reflection_Tuning
    README, "we first compress the instruction and input into one single instruction")."""

    name = "compress"
    schema = object_schema(instruction="the instruction with its input merged in")

    def _parse(self, text: str) -> ParseResult:
        return parse_merged_reply(text)

    def _fields(self, parsed: dict[str, str], row: Mapping[str, Any]) -> dict[str, Any]:
        return {"instruction": parsed["instruction"], "input": "", "output": row["output"]}
