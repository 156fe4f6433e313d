"""The contract of one LLM step (in the manner of distilabel's tasks): what it reads from a row,
the messages it sends, the fields it returns and how a reply becomes those fields.

A step does no I/O. :func:`reflection_tuning.llm.runner.run_step` sends its requests
(window, cache, cost cap, Batch API, endpoints), re-asks, assigns the statuses of
:mod:`reflection_tuning.status` and records the provenance; ``estimate`` calls the
same :meth:`Step.format_input`, so what is priced is what is sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from reflection_tuning.llm.cache import Completion, Messages
from reflection_tuning.llm.config import EndpointConfig
from reflection_tuning.llm.stream import json_schema_format


@dataclass(frozen=True)
class Parsed:
    """A reply that parsed: the step's output ``fields``, and a ``note`` on how (e.g. which of
    several candidates was taken). ``candidates``: how many answers the reply offered."""

    fields: dict[str, Any]
    note: str | None = None
    candidates: int = 1
    repetition: float | None = None  # the highest word n-gram repetition ratio of a new field


@dataclass(frozen=True)
class Failure:
    """A reply (or a row) that yields no fields: a status of :mod:`~reflection_tuning.status`
    and a one-line reason."""

    status: str
    reason: str
    repetition: float | None = None


class Step(Protocol):
    """One LLM step.

    Attributes:
        name: the stage or command that runs it (tqdm label, logs).
        input_columns: the row keys :meth:`format_input` reads.
        output_fields: the keys of :attr:`Parsed.fields`.
        schema: a JSON schema (draft 2020-12) of the output fields, for structured outputs.
        template_hash: the prompt's provenance id; part of every cache key.
        reads_truncated: ``True`` when :meth:`parse` may read a reply cut at ``max_tokens``
            (the judge's scores are on its first line); otherwise such a reply is ``truncated``
            and never parsed.
    """

    name: str
    input_columns: tuple[str, ...]
    output_fields: tuple[str, ...]
    schema: Mapping[str, Any]
    template_hash: str
    reads_truncated: bool

    def format_input(self, row: Mapping[str, Any]) -> Messages:
        """The chat messages of the request for ``row``."""
        ...

    def parse(self, reply: Completion, row: Mapping[str, Any]) -> Parsed | Failure:
        """The fields of ``reply`` (an answer to ``format_input(row)``), or why there are none."""
        ...

    def parse_json(self, obj: Mapping[str, Any], row: Mapping[str, Any]) -> Parsed | Failure:
        """The fields of a structured reply (``teacher.reply_format: json_schema``): ``obj`` is the
        reply's JSON object, already validated against :attr:`schema` by the runner."""
        ...


def request_format(step: Step, cfg: EndpointConfig) -> dict[str, Any] | None:
    """The ``response_format`` the requests of ``step`` carry (part of their cache key): the
    step's JSON schema in OpenAI's form with ``reply_format`` ``json_schema`` or ``auto`` (which
    drops it for the run where the endpoint refuses it), ``None`` with ``markers``."""
    return None if cfg.reply_format == "markers" else json_schema_format(step.name, dict(step.schema))


def decode_json_reply(content: str, schema: Mapping[str, Any]) -> dict[str, Any] | Failure:
    """The JSON object of a structured reply, validated against ``schema`` (with ``jsonschema``),
    or a ``parse_error`` :class:`Failure` saying why it is not usable."""
    import json

    import jsonschema

    from reflection_tuning.status import PARSE_ERROR

    try:
        obj = json.loads(content)
    except json.JSONDecodeError as e:
        return Failure(PARSE_ERROR, f"reply is not JSON: {e.msg} at character {e.pos}")
    try:
        jsonschema.validate(obj, dict(schema))
    except jsonschema.ValidationError as e:
        return Failure(PARSE_ERROR, f"reply does not match the step's schema: {e.message[:200]}")
    return obj


__all__ = ["Failure", "Parsed", "Step", "decode_json_reply", "request_format"]
