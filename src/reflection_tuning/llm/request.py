"""The body of one chat request: the one place it is made (online and Batch API alike), and how
an endpoint's refusal of one of its parameters adapts it for the rest of a stage run.

What is sent:
- the token cap as ``max_completion_tokens``, the field OpenAI, vLLM and llama.cpp's server
  read (OpenAI deprecated ``max_tokens``, and its reasoning models refuse it);
- each sampling parameter (``temperature``, ``top_p``, ``seed``, ``frequency_penalty``) only
  when params set it (``null``: not sent);
- ``embedded_sampling`` (llama.cpp's DRY and ``repeat_penalty``) only to the embedded server;
- the step's ``response_format`` while the reply format is structured.

A round of requests (a stage's first asks, or one re-ask) builds its fields once
(:class:`Form`: every field but the messages), and again only after an adaptation; a request's
body is those fields and its messages, and its cache key (:func:`body_key`) the hash of that
body and the template's.

When an endpoint answers 400/422 and its error names the parameter it refused (OpenAI's
``error.param``), :meth:`Adaptations.adapt` drops it (a sampling parameter), renames it (the
token cap: ``max_completion_tokens`` <-> ``max_tokens``) or, under ``reply_format: auto``,
falls back from a JSON schema to free text with markers. Each parameter is adapted once; the
adaptations hold for every later request of the run, and are kept beside the request cache so
a rerun asks under the same cache keys.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reflection_tuning.llm.cache import Completion

log = logging.getLogger(__name__)

Messages = list[dict[str, str]]

TOKEN_CAP = "max_completion_tokens"
RENAMES = {"max_completion_tokens": "max_tokens", "max_tokens": "max_completion_tokens"}
SAMPLING = ("temperature", "top_p", "seed", "frequency_penalty")
# What an adaptation may drop: the sampling fields and llama.cpp's own (embedded_sampling).
DROPPABLE = (*SAMPLING, "dry_multiplier", "dry_allowed_length", "dry_base", "repeat_penalty", "repeat_last_n")
# The parameters whose adaptation has a metric key of its own (adapted_<param>): stable keys.
ADAPTABLE = (TOKEN_CAP, *SAMPLING, "response_format")
# The fields the openai SDK takes as arguments; any other goes in its ``extra_body``.
SDK_FIELDS = frozenset({"model", "messages", "max_completion_tokens", "max_tokens", *SAMPLING, "response_format"})

JSON_SCHEMA, MARKERS, AUTO = "json_schema", "markers", "auto"


@dataclass
class Adaptations:
    """What a stage run changed in its requests after an endpoint refused a parameter.

    Attributes:
        dropped: parameters no longer sent.
        renamed: ``{sent name: name now used}`` (the token cap).
        markers: the endpoint refused or ignored ``response_format`` under ``reply_format:
            auto``: the replies are free text with markers from then on.
        notes: one line per adaptation, with the endpoint's own words (for logs and rows).
    """

    dropped: list[str] = field(default_factory=list)
    renamed: dict[str, str] = field(default_factory=dict)
    markers: bool = False
    notes: list[str] = field(default_factory=list)

    def apply(self, body: dict[str, Any]) -> dict[str, Any]:
        """``body`` with the adaptations made (a new dict)."""
        out = {k: v for k, v in body.items() if k not in self.dropped}
        for old, new in self.renamed.items():
            if old in out:
                out[new] = out.pop(old)
        if self.markers:
            out.pop("response_format", None)
        return out

    def adapt(self, body: dict[str, Any], param: str | None, message: str, reply_format: str) -> str | None:
        """Adapt to an endpoint's 400/422 for ``body``; return the note, or ``None`` when the
        refusal is not one a request can be adapted to (the caller stops the stage).

        Args:
            param: the ``error.param`` of the endpoint's reply (``None``: it named none; a
                refusal of ``response_format`` is then recognised by its message).
            message: the endpoint's error message (kept in the note, never a guess).
            reply_format: ``teacher.reply_format``; only ``auto`` falls back to markers.
        """
        param = (param or "").split(".")[0].split("[")[0]
        format_refused = param == "response_format" or (not param and "response_format" in message)
        if format_refused:
            if reply_format != AUTO or self.markers or "response_format" not in body:
                return None
            self.markers = True
            note = f"response_format refused, replies in markers: {message[:200]}"
        elif param in RENAMES and param in body and param not in self.renamed:
            self.renamed[param] = RENAMES[param]
            note = f"{param} renamed {RENAMES[param]}: {message[:200]}"
        elif param in DROPPABLE and param in body:
            self.dropped.append(param)
            note = f"{param} dropped: {message[:200]}"
        else:
            return None
        self.notes.append(note)
        return note

    def ignored_format(self, content: str) -> str:
        """Record that the endpoint ignored ``response_format`` (its reply is not JSON): from
        now on the replies are free text with markers. Returns the note."""
        self.markers = True
        note = f"response_format ignored (the reply is not JSON: {content[:60]!r}), replies in markers"
        self.notes.append(note)
        return note

    def forget_format(self) -> None:
        """Drop the fall-back to markers (``reply_format`` is no longer ``auto``)."""
        if self.markers:
            self.markers = False
            self.notes = [n for n in self.notes if not n.startswith("response_format")]

    def metrics(self) -> dict[str, int]:
        """``adaptations`` (how many), ``adapted_<param>`` (0/1) for every :data:`ADAPTABLE`
        parameter, ``reply_format_markers`` (0/1): flat, with the same keys in every run."""
        out = {"adaptations": len(self.notes)}
        for p in ADAPTABLE:
            out[f"adapted_{p}"] = int(p in self.dropped or p in self.renamed or (p == "response_format"
                                                                                and self.markers))
        out["reply_format_markers"] = int(self.markers)
        return out

    def to_json(self) -> dict[str, Any]:
        return {"dropped": self.dropped, "renamed": self.renamed, "markers": self.markers, "notes": self.notes}

    @classmethod
    def held(cls, data: dict[str, Any] | None, reply_format: str) -> Adaptations:
        """The adaptations an earlier run kept (``data``: :meth:`to_json`), for a run under
        ``reply_format``: markers were ``auto``'s choice, so an explicit format is sent as asked."""
        held = cls.from_json(data)
        if reply_format != AUTO:
            held.forget_format()
        return held

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Adaptations:
        data = data or {}
        return cls(list(data.get("dropped", [])), dict(data.get("renamed", {})), bool(data.get("markers")),
                   list(data.get("notes", [])))


def request_fields(cfg: Any, *, response_format: dict[str, Any] | None = None,
                   adaptations: Adaptations | None = None, model: str | None = None) -> dict[str, Any]:
    """Every field of a chat completion request but ``messages`` (and ``stream``), as sent.

    Args:
        cfg: the endpoint section (``EndpointConfig``: ``model``, ``max_tokens`` in completion
            tokens, the sampling parameters, ``embedded_sampling``).
        response_format: the step's ``response_format`` (``None``: free text).
        adaptations: this run's adaptations (``None``: none).
        model: the model name to send (default ``cfg.model``).

    ``embedded_sampling`` goes only to the embedded server (``base_url: embedded``): llama.cpp
    reads those fields, and another endpoint may refuse them.
    """
    fields: dict[str, Any] = {"model": model or cfg.model, TOKEN_CAP: cfg.max_tokens}
    for name in SAMPLING:
        value = getattr(cfg, name, None)
        if value is not None:
            fields[name] = value
    if getattr(cfg, "base_url", None) == "embedded":
        fields.update(dict(getattr(cfg, "embedded_sampling", None) or ()))
    if response_format is not None:
        fields["response_format"] = response_format
    return adaptations.apply(fields) if adaptations is not None else fields


def with_messages(fields: dict[str, Any], messages: Messages) -> dict[str, Any]:
    """The body of one request: ``fields`` (:func:`request_fields`) with ``messages`` after the model."""
    return {"model": fields["model"], "messages": messages, **fields}


def request_body(cfg: Any, messages: Messages, **fields: Any) -> dict[str, Any]:
    """The JSON body of one chat completion request (without ``stream``), as it is sent: the
    :func:`request_fields` of ``cfg`` (keyword ``fields``: theirs) and ``messages``."""
    return with_messages(request_fields(cfg, **fields), messages)


@dataclass(frozen=True)
class Form:
    """The requests of one round: the fields they all carry (:func:`request_fields`, built once
    a round and again after an adaptation) and the template hash their cache keys take."""

    fields: dict[str, Any]
    template_hash: str
    notes: tuple[str, ...] = ()  # the adaptations made (:attr:`Adaptations.notes`)

    @classmethod
    def of(cls, cfg: Any, template_hash: str, response_format: dict[str, Any] | None = None,
           adaptations: Adaptations | None = None) -> Form:
        """The requests ``cfg`` sends (:func:`request_fields`) for a step's template and format."""
        return cls(request_fields(cfg, response_format=response_format, adaptations=adaptations), template_hash,
                   tuple(adaptations.notes) if adaptations is not None else ())

    @property
    def structured(self) -> bool:
        """Whether the requests carry the step's JSON schema (``response_format``)."""
        return "response_format" in self.fields

    def body(self, messages: Messages) -> dict[str, Any]:
        """The body of the request for ``messages``."""
        return with_messages(self.fields, messages)

    def key(self, messages: Messages) -> str:
        """The cache key of the request for ``messages`` (:func:`body_key`)."""
        return body_key(self.body(messages), self.template_hash)

    def ignored(self, completion: Completion) -> bool:
        """Whether the endpoint ignored the requests' ``response_format``: ``completion`` is a
        finished reply to a structured request, and not a JSON object."""
        return self.structured and completion.finish_reason == "stop" and not is_json_object(completion.content)

    def mark(self, completion: Completion | None) -> Completion | None:
        """``completion`` (a reply to one of these requests) with how it was asked: structured or
        not, and the adaptations (``None`` stays ``None``)."""
        if completion is None:
            return None
        return dataclasses.replace(completion, structured=self.structured, adaptations=self.notes)


def is_json_object(text: str) -> bool:
    """Whether ``text`` is one JSON object (what a server honouring ``json_schema`` returns)."""
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


def adaptations_name(cfg: Any) -> str:
    """The name the adaptations of ``cfg``'s endpoint and model are kept under, beside the cache."""
    urls = cfg.base_url if isinstance(cfg.base_url, str) else "|".join(cfg.base_url)
    return f"adaptations:{cfg.model}:{urls}"


CACHE_VERSION = 2


def body_key(body: dict[str, Any], template_hash: str) -> str:
    """The cache key of a request: SHA-256 hex of its body as sent (model, messages, token cap,
    sampling, response_format) and the prompt's template hash; never the base URL or a key."""
    blob = json.dumps({"v": CACHE_VERSION, "body": body, "template_hash": template_hash}, sort_keys=True,
                      ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def split_sdk(body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``body`` as (keyword arguments of ``chat.completions.create``, its ``extra_body``)."""
    kwargs = {k: v for k, v in body.items() if k in SDK_FIELDS}
    extra = {k: v for k, v in body.items() if k not in SDK_FIELDS}
    return kwargs, extra


__all__ = ["ADAPTABLE", "AUTO", "JSON_SCHEMA", "MARKERS", "Adaptations", "Form", "adaptations_name", "body_key",
           "is_json_object", "request_body", "request_fields", "split_sdk", "with_messages"]
