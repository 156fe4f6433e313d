"""Teacher prompts: a template file and a system-prompt file, filled safely from a row.

Template syntax (kept in the text files under ``prompts/``):

- ``{instruction}``, ``{input}``, ``{output}`` are replaced by the row's fields, in one
  pass: text that comes from a row is never scanned again, so braces or a literal
  ``{output}`` inside a row are kept as they are. Any other ``{…}`` is left untouched.
- ``{if input}…{endif}`` keeps its body only when ``input`` is non-empty (after strip);
  this is how one template serves rows with and without an input.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

FIELDS = ("instruction", "input", "output")


@functools.lru_cache(maxsize=None)
def _patterns(fields: tuple[str, ...]) -> tuple[re.Pattern[str], re.Pattern[str]]:
    names = "|".join(map(re.escape, fields))
    return re.compile(r"\{(" + names + r")\}"), re.compile(r"\{if (" + names + r")\}(.*?)\{endif\}", re.DOTALL)


def template_hash(system: str, template: str) -> str:
    """12 hex chars of the SHA-256 of (system prompt, template): a template's provenance id."""
    blob = json.dumps([system, template], ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:12]


def render(template: str, values: Mapping[str, str | None], fields: tuple[str, ...] = FIELDS) -> str:
    """Fill the ``fields`` placeholders of ``template`` (missing or ``None`` values read as "").

    Conditional blocks are resolved on the template first, then the placeholders are
    substituted in a single pass, so nothing from a row is ever interpreted.
    """
    field_re, if_re = _patterns(fields)
    clean = {k: ("" if values.get(k) is None else str(values[k])) for k in fields}
    resolved = if_re.sub(lambda m: m.group(2) if clean[m.group(1)].strip() else "", template)
    return field_re.sub(lambda m: clean[m.group(1)], resolved)


def build_messages(system: str, template: str, *, fields: tuple[str, ...] = FIELDS, **values: str | None
                   ) -> list[dict[str, str]]:
    """The chat messages of one request: the system message (omitted when empty), then the
    filled template. The teacher's two reflections and the judge differ only in template
    and ``fields``."""
    messages = []
    if system.strip():
        messages.append({"role": "system", "content": system.strip()})
    messages.append({"role": "user", "content": render(template, values, fields)})
    return messages


@dataclass(frozen=True)
class Prompt:
    """A loaded system prompt and template, with their :func:`template_hash`."""

    system: str
    template: str
    hash: str
    fields: tuple[str, ...] = FIELDS

    def fill(self, **values: str | None) -> list[dict[str, str]]:
        """:func:`build_messages` with this prompt."""
        return build_messages(self.system, self.template, fields=self.fields, **values)

    def messages(self, instruction: str, input: str | None, output: str) -> list[dict[str, str]]:
        """The messages of one reflection request for the row (Q, input, A)."""
        return self.fill(instruction=instruction, input=input or "", output=output)


def load_prompt(template_path: str | Path, system_path: str | Path, fields: tuple[str, ...] = FIELDS) -> Prompt:
    """Read a template and its system prompt (UTF-8 text files); every one of ``fields``
    must appear in the template.

    Raises:
        FileNotFoundError: either file is missing.
        ValueError: the template lacks one of the ``fields`` placeholders, or has an
            unbalanced ``{if …}``/``{endif}``.
    """
    field_re, if_re = _patterns(fields)
    template = Path(template_path).read_text(encoding="utf-8")
    system = Path(system_path).read_text(encoding="utf-8")
    without_ifs = if_re.sub(lambda m: m.group(2), template)
    if "{endif}" in without_ifs or re.search(r"\{if \w+\}", without_ifs):
        raise ValueError(f"{template_path}: unbalanced {{if …}} / {{endif}} block")
    present = set(field_re.findall(without_ifs))
    missing = [f for f in fields if f not in present]
    if missing:
        raise ValueError(f"{template_path}: template lacks placeholders {['{' + m + '}' for m in missing]}")
    return Prompt(system=system, template=template, hash=template_hash(system, template), fields=fields)


@dataclass(frozen=True)
class PromptFiles:
    """A params section that names a step's prompt files: ``prompt_file`` (the template) and
    ``system_file`` (the system prompt; empty = no system message). The sections of
    ``reflect_instruction``, ``reflect_response``, ``compress`` and ``judge`` have these keys."""

    prompt_file: str
    system_file: str

    def prompt(self, fields: tuple[str, ...] = FIELDS) -> Prompt:
        """The prompt the two files hold (see :func:`load_prompt`, whose errors it raises)."""
        return load_prompt(self.prompt_file, self.system_file, fields)
