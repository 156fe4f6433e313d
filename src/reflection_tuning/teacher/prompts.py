"""Teacher prompts: a template file and a system-prompt file, filled safely from a row.

Template syntax (kept in the text files under ``prompts/``):

- ``{instruction}``, ``{input}``, ``{output}`` are replaced by the row's fields, in one
  pass: text that comes from a row is never scanned again, so braces or a literal
  ``{output}`` inside a row are kept as they are. Any other ``{…}`` is left untouched.
- ``{if input}…{endif}`` keeps its body only when ``input`` is non-empty (after strip);
  this is how one template serves rows with and without an input.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

FIELDS = ("instruction", "input", "output")
_FIELD_RE = re.compile(r"\{(" + "|".join(FIELDS) + r")\}")
_IF_RE = re.compile(r"\{if (" + "|".join(FIELDS) + r")\}(.*?)\{endif\}", re.DOTALL)


def template_hash(system: str, template: str) -> str:
    """12 hex chars of the SHA-256 of (system prompt, template): a template's provenance id."""
    blob = json.dumps([system, template], ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:12]


def render(template: str, values: dict[str, str]) -> str:
    """Fill ``template`` with ``values`` (missing or ``None`` values read as "").

    Conditional blocks are resolved on the template first, then the placeholders are
    substituted in a single pass, so nothing from a row is ever interpreted.
    """
    clean = {k: ("" if values.get(k) is None else str(values[k])) for k in FIELDS}
    resolved = _IF_RE.sub(lambda m: m.group(2) if clean[m.group(1)].strip() else "", template)
    return _FIELD_RE.sub(lambda m: clean[m.group(1)], resolved)


def build_messages(
    system: str, template: str, *, instruction: str, input: str | None, output: str
) -> list[dict[str, str]]:
    """The chat messages of one reflection request (system message omitted when empty).

    Used for both instruction reflection (the reply holds a new instruction and answer)
    and response reflection (the reply holds a better answer): the difference is the
    template, and the placeholders are the same.
    """
    messages = []
    if system.strip():
        messages.append({"role": "system", "content": system.strip()})
    user = render(template, {"instruction": instruction, "input": input or "", "output": output})
    messages.append({"role": "user", "content": user})
    return messages


@dataclass(frozen=True)
class Prompt:
    """A loaded system prompt and template, with their :func:`template_hash`."""

    system: str
    template: str
    hash: str

    def messages(self, instruction: str, input: str | None, output: str) -> list[dict[str, str]]:
        """:func:`build_messages` with this prompt."""
        return build_messages(self.system, self.template, instruction=instruction, input=input, output=output)


def load_prompt(template_path: str | Path, system_path: str | Path, required: tuple[str, ...] = FIELDS) -> Prompt:
    """Read a template and its system prompt (UTF-8 text files).

    Raises:
        FileNotFoundError: either file is missing.
        ValueError: the template lacks one of the ``required`` placeholders, or has an
            unbalanced ``{if …}``/``{endif}``.
    """
    template = Path(template_path).read_text(encoding="utf-8")
    system = Path(system_path).read_text(encoding="utf-8")
    without_ifs = _IF_RE.sub(lambda m: m.group(2), template)
    if "{endif}" in without_ifs or re.search(r"\{if \w+\}", without_ifs):
        raise ValueError(f"{template_path}: unbalanced {{if …}} / {{endif}} block")
    present = set(_FIELD_RE.findall(without_ifs))
    missing = [f for f in required if f not in present]
    if missing:
        raise ValueError(f"{template_path}: template lacks placeholders {['{' + m + '}' for m in missing]}")
    return Prompt(system=system, template=template, hash=template_hash(system, template))
