"""The teacher steps that rewrite a row (the two reflections, ``compress``), and the rows the
reflection stages write.

A rewrite step reads ``instruction``, ``input`` and ``output`` from a row and returns the new
row's ``instruction``, ``input`` and ``output``, plus the teacher's ``critique``. A subclass
(one per step module) names its template, schema and parser, and which fields it rewrites.

A teacher row (:func:`teacher_row`) has one explicit status (:mod:`reflection_tuning.llm.status`):
``ok``; ``parse_error`` (the reply has no usable marked segment); ``truncated`` (the reply hit
``max_tokens``: never parsed as complete); ``request_error`` (the request failed after retries);
``cost_cap`` (not sent: it could have taken the spend over ``teacher.max_cost``);
``upstream_unusable`` (``both`` rows whose instruction variant is not ok). An ok row keeps the
teacher's ``critique`` (the text it wrote before its answer blocks, "" when none). A row that
is not ok has ``instruction``, ``input`` and ``output`` set to ``null``: an unparsable reply is
never replaced by the original.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from reflection_tuning.llm import status as st
from reflection_tuning.llm.cache import Completion, Messages
from reflection_tuning.llm.outcome import Outcome, provenance
from reflection_tuning.llm.step import Failure, Parsed
from reflection_tuning.rows import FIELDS
from reflection_tuning.steps.markers import ParseResult
from reflection_tuning.steps.prompt import HERE, Prompt, load_prompt

OUTPUT_FIELDS = (*FIELDS, "critique")


def text(description: str, min_length: int, max_length: int) -> dict[str, Any]:
    """The JSON schema of one reply field: a string of ``min_length``..``max_length`` characters.
    The bounds make a structured reply close before ``max_tokens`` (a server that constrains
    its decoding to the schema must end each string by ``max_length``)."""
    return {"type": "string", "description": description, "minLength": min_length, "maxLength": max_length}


def object_schema(**properties: dict[str, Any]) -> dict[str, Any]:
    """A strict JSON object schema: every property required, no other."""
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


class RewriteStep:
    """A step whose request is its prompt filled from the row's instruction, input and output.

    Subclasses set ``name`` (the step, and its files ``<name>.j2`` / ``<name>.system.txt``
    beside its module), ``schema``, and implement :meth:`parse_reply` and :meth:`new_fields`.
    """

    name: ClassVar[str] = ""
    input_columns: ClassVar[tuple[str, ...]] = FIELDS
    output_fields: ClassVar[tuple[str, ...]] = OUTPUT_FIELDS
    schema: ClassVar[Mapping[str, Any]] = {}
    reads_truncated: ClassVar[bool] = False

    def __init__(self, prompt: Prompt) -> None:
        self.prompt = prompt

    @classmethod
    def template_files(cls) -> tuple[Path, Path]:
        """The shipped (template, system prompt) of this step."""
        return HERE / f"{cls.name}.j2", HERE / f"{cls.name}.system.txt"

    @classmethod
    def shipped(cls) -> RewriteStep:
        """The step with its shipped template."""
        return cls(load_prompt(*cls.template_files(), FIELDS))

    @property
    def template_hash(self) -> str:
        return self.prompt.hash

    def format_input(self, row: Mapping[str, Any]) -> Messages:
        return self.prompt.messages(instruction=row["instruction"], input=row.get("input") or "", output=row["output"])

    def parse(self, reply: Completion, row: Mapping[str, Any]) -> Parsed | Failure:
        result = self.parse_reply(reply.content)
        if not result.ok:
            return Failure(st.PARSE_ERROR, result.reason or "no usable answer in the reply")
        fields = {**self.new_fields(result.fields, row), "critique": result.critique}
        return Parsed(fields, note=result.reason, candidates=result.candidates)

    def parse_json(self, obj: Mapping[str, Any], row: Mapping[str, Any]) -> Parsed | Failure:
        texts = {k: str(v).strip() for k, v in obj.items()}
        empty = [k for k in self.schema["required"] if k != "critique" and not texts.get(k)]
        if empty:
            return Failure(st.PARSE_ERROR, f"empty {', '.join(empty)} in the JSON reply")
        return Parsed({**self.new_fields(texts, row), "critique": texts.get("critique", "")})

    @staticmethod
    def parse_reply(text: str) -> ParseResult:  # pragma: no cover - every step has its own
        """The marked segments of a free-text reply."""
        raise NotImplementedError

    def new_fields(self, parsed: Mapping[str, str], row: Mapping[str, Any]) -> dict[str, Any]:  # pragma: no cover
        """The new row's instruction, input and output from the parsed texts and the input row."""
        raise NotImplementedError


def teacher_row(source: Mapping[str, Any], variant: str, outcome: Outcome, *, teacher_model: str,
                template_hash: str) -> dict[str, Any]:
    """One row of a reflection stage (the CONTRIBUTING.md schema) from the step's outcome for ``source``.

    Raises:
        ValueError: an unknown status, or an ok outcome without instruction/input/output.
    """
    if outcome.status not in st.STATUSES:
        raise ValueError(f"unknown status {outcome.status!r}")
    fields = outcome.fields if outcome.ok else None
    if fields is not None and any(fields.get(k) is None for k in FIELDS):
        raise ValueError(f"an ok {variant} row needs instruction, input and output")
    return {
        "id": source["id"],
        "variant": variant,
        **{k: fields[k] if fields else None for k in FIELDS},
        "source": source.get("source"),
        "critique": fields.get("critique") if fields else None,
        "status": outcome.status,
        **provenance(outcome, teacher_model, template_hash),
        "error": None if outcome.ok else outcome.reason,
    }
