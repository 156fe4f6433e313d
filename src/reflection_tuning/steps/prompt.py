"""A step's prompt: a Jinja2 template and a system prompt, each a UTF-8 file, filled from a row.

The template (``<step>.j2``) reads the row's fields as variables (``{{ instruction }}``) and
may branch on them (``{% if input.strip() %}…{% endif %}``, so one template serves rows with
and without an input). A row's text is data, never template source: braces or ``{{ … }}``
inside a row come out as they are. The system prompt (``<step>.system.txt``) is plain text;
an empty one sends no system message.

A prompt's :func:`template_hash` identifies it in every output row and in every request's
cache key (:func:`reflection_tuning.llm.cache.cache_key`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import jinja2.meta

from reflection_tuning.steps.checks import ReplyChecks

HERE = Path(__file__).resolve().parent

_ENV = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)

def template_hash(system: str, template: str) -> str:
    """12 hex chars of the SHA-256 of (system prompt, template source): a prompt's id."""
    blob = json.dumps([system, template], ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:12]


@dataclass(frozen=True)
class Prompt:
    """A loaded system prompt and template, with its :func:`template_hash` and the row
    fields it reads."""

    system: str
    template: str
    hash: str
    fields: tuple[str, ...]
    compiled: jinja2.Template = field(compare=False, repr=False)

    def messages(self, **values: str | None) -> list[dict[str, str]]:
        """The chat messages of one request: the system message (none when the system prompt
        is blank), then the template filled with ``values`` (a missing or ``None`` field reads "")."""
        clean = {k: "" if values.get(k) is None else str(values[k]) for k in self.fields}
        out = [{"role": "system", "content": self.system.strip()}] if self.system.strip() else []
        return [*out, {"role": "user", "content": self.compiled.render(**clean)}]


def load_prompt(template_path: str | Path, system_path: str | Path, fields: tuple[str, ...]) -> Prompt:
    """Read a template and its system prompt; the template must read every one of ``fields``
    and nothing else.

    Raises:
        FileNotFoundError: either file is missing.
        ValueError: the template is not valid Jinja2, lacks one of ``fields``, or reads a
            variable that is not one of them.
    """
    template = Path(template_path).read_text(encoding="utf-8")
    system = Path(system_path).read_text(encoding="utf-8")
    try:
        used = jinja2.meta.find_undeclared_variables(_ENV.parse(template))
        compiled = _ENV.from_string(template)
    except jinja2.TemplateSyntaxError as e:
        raise ValueError(f"{template_path}: line {e.lineno}: {e.message}") from None
    missing = [f for f in fields if f not in used]
    if missing:
        raise ValueError(f"{template_path}: the template does not use {['{{ ' + m + ' }}' for m in missing]}")
    unknown = sorted(used - set(fields))
    if unknown:
        raise ValueError(f"{template_path}: unknown variables {unknown}; a row gives {list(fields)}")
    return Prompt(system, template, template_hash(system, template), fields, compiled)


@dataclass(frozen=True)
class PromptFiles:
    """A params section naming a step's prompt files and what makes its reply whole: the sections
    ``reflect_instruction``, ``reflect_response`` and ``compress`` are this.

    Attributes:
        prompt_file: the Jinja2 template.
        system_file: the system prompt (empty = no system message).
        max_chars: ``{field: characters}``, the bound of each field of a structured reply, sent
            as the JSON schema's ``maxLength`` and stated in the prompt where the endpoint's
            ``length_bounds`` applies (a field that ends at it is ``truncated``).
        max_repetition: the highest word n-gram repetition ratio of an ``ok`` field (0..1).
        repetition_ngram: n of that ratio, in words.
    """

    prompt_file: str
    system_file: str
    max_chars: dict[str, int] | None
    max_repetition: float
    repetition_ngram: int

    def prompt(self, fields: tuple[str, ...]) -> Prompt:
        """The prompt the two files hold (see :func:`load_prompt`, whose errors it raises)."""
        return load_prompt(self.prompt_file, self.system_file, fields)

    def checks(self, bounded: bool) -> ReplyChecks:
        """The reply checks of the step; ``bounded``: the endpoint gets the length bounds
        (``EndpointConfig.bounded``)."""
        return ReplyChecks(self.max_chars if bounded else None, self.max_repetition, self.repetition_ngram)
