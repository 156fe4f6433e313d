"""The teacher steps that rewrite a row (the two reflections, ``compress``), and the rows the
reflection stages write.

A rewrite step reads ``instruction``, ``input`` and ``output`` from a row and returns the new
row's ``instruction``, ``input`` and ``output``, plus the teacher's ``critique``. A subclass
(one per step module) names its template, schema and parser, and which fields it rewrites.

A teacher row (:func:`teacher_row`) has one explicit status (:mod:`reflection_tuning.status`):
``ok``; ``parse_error`` (the reply has no usable marked segment); ``truncated`` (the reply hit
``max_tokens``: never parsed as complete); ``request_error`` (the request failed after retries);
``cost_cap`` (not sent: it could have taken the spend over ``teacher.max_cost``);
``upstream_unusable`` (``both`` rows whose instruction variant is not ok); ``repetitive`` and
``copy`` (:mod:`.checks`: a degenerate reply, a field that only repeats another). An ok row keeps the
teacher's ``critique`` (the text it wrote before its answer blocks, "" when none). A row that
is not ok has ``instruction``, ``input`` and ``output`` set to ``null``: an unparsable reply is
never replaced by the original.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from reflection_tuning import status as st
from reflection_tuning.llm.cache import Completion, Messages
from reflection_tuning.llm.outcome import Outcome, provenance
from reflection_tuning.llm.step import Failure, Parsed
from reflection_tuning.rows import FIELDS
from reflection_tuning.steps.base import PromptStep
from reflection_tuning.steps.checks import ReplyChecks, bounds_sentence, whole
from reflection_tuning.steps.markers import ParseResult
from reflection_tuning.steps.prompt import Prompt

OUTPUT_FIELDS = (*FIELDS, "critique")


def text(description: str, max_length: int | None = None) -> dict[str, Any]:
    """The JSON schema of one reply field: a string, bounded by ``max_length`` characters when
    bounds are sent (a server that constrains its decoding to the schema ends the string there).
    Without bounds it uses only the keywords of OpenAI's strict mode (which refuses
    ``minLength`` / ``maxLength``)."""
    out: dict[str, Any] = {"type": "string", "description": description}
    if max_length is not None:
        out["maxLength"] = max_length
    return out


def object_schema(**properties: dict[str, Any]) -> dict[str, Any]:
    """A strict JSON object schema: every property required, no other."""
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


NO_CHECKS = ReplyChecks(max_chars=None, max_repetition=1.0, repetition_ngram=10)


class RewriteStep(PromptStep):
    """A step whose request is its prompt filled from the row's instruction, input and output.

    Subclasses set ``name`` (the step, and its prompt files: :class:`~.base.PromptStep`),
    ``reply_fields`` (each field of a structured reply and what it holds, in the order the reply
    writes them), ``parse_reply`` (the marked segments of a free-text reply) and :meth:`new_fields`.

    Args:
        prompt: the template and system prompt.
        checks: what makes a reply whole (:mod:`.checks`): the length bounds (sent in the schema
            and stated in the prompt), the repetition threshold; default: no bounds, no
            repetition check.
    """

    input_columns: ClassVar[tuple[str, ...]] = FIELDS
    output_fields: ClassVar[tuple[str, ...]] = OUTPUT_FIELDS
    reply_fields: ClassVar[Mapping[str, str]] = {}

    def __init__(self, prompt: Prompt, checks: ReplyChecks = NO_CHECKS) -> None:
        unknown = sorted(set(checks.max_chars or {}) - set(self.reply_fields))
        if unknown:
            raise ValueError(f"{self.name}.max_chars: {unknown} are not fields of its reply {list(self.reply_fields)}")
        super().__init__(prompt)
        self.checks = checks

    @property
    def schema(self) -> dict[str, Any]:
        """The JSON schema of a structured reply: every field of :attr:`reply_fields`, bounded
        by ``checks.max_chars`` when bounds are sent."""
        bounds = self.checks.max_chars or {}
        return object_schema(**{k: text(d, bounds.get(k)) for k, d in self.reply_fields.items()})

    def format_input(self, row: Mapping[str, Any]) -> Messages:
        messages = super().format_input(row)
        if self.checks.max_chars:  # the bounds the schema sends, said to the model so it can finish within them
            said = bounds_sentence(self.checks.max_chars, self.reply_fields)
            messages[-1] = {**messages[-1], "content": f"{messages[-1]['content'].rstrip()}\n{said}"}
        return messages

    def parse(self, reply: Completion, row: Mapping[str, Any]) -> Parsed | Failure:
        result = self.parse_reply(reply.content)
        if not result.ok:
            return Failure(st.PARSE_ERROR, result.reason or "no usable answer in the reply")
        return self._whole({"critique": result.critique, **result.fields}, row, False, result.reason,
                           result.candidates)

    def parse_json(self, obj: Mapping[str, Any], row: Mapping[str, Any]) -> Parsed | Failure:
        texts = {k: str(v) for k, v in obj.items()}
        empty = [k for k in self.schema["required"] if k != "critique" and not texts.get(k, "").strip()]
        if empty:
            return Failure(st.PARSE_ERROR, f"empty {', '.join(empty)} in the JSON reply")
        return self._whole(texts, row, True)

    def _whole(self, texts: Mapping[str, str], row: Mapping[str, Any], structured: bool, note: str | None = None,
               candidates: int = 1) -> Parsed | Failure:
        failure, ratio = whole(texts, row, self.checks, structured=structured)
        if failure is not None:
            return Failure(failure.status, failure.reason, repetition=ratio)
        clean = {k: v.strip() for k, v in texts.items()}
        fields = {**self.new_fields(clean, row), "critique": clean.get("critique", "")}
        return Parsed(fields, note=note, candidates=candidates, repetition=ratio)

    parse_reply: ClassVar[Callable[[str], ParseResult]]  # the marked segments of a free-text reply

    def new_fields(self, parsed: Mapping[str, str], row: Mapping[str, Any]) -> dict[str, Any]:  # pragma: no cover
        """The new row's instruction, input and output from the parsed texts and the input row."""
        raise NotImplementedError


def teacher_row(source: Mapping[str, Any], variant: str, outcome: Outcome, *, teacher_model: str,
                template_hash: str) -> dict[str, Any]:
    """One row of a reflection stage (the CONTRIBUTING.md schema) from the step's outcome for ``source``.

    Raises:
        ValueError: an unknown status, or an ok outcome without instruction/input/output.
    """
    if outcome.status not in st.STEP:
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
        "repetition": outcome.repetition,
        **provenance(outcome, teacher_model, template_hash),
        "error": None if outcome.ok else outcome.reason,
    }
