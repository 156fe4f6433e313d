"""The parameter reference, read from the comments of ``params.yaml``.

``params.yaml`` is the one place a key is described: the comment on its line (with any
comment lines below it that start in the same column), or the comment lines right above it
at its own indentation. The comment block right above a top-level key describes that
section. From them:

- :func:`describe` gives one key's description, for a stage's ``--help``;
- :func:`render` fills the generated blocks of ``docs/parameters.md``, each between
  ``<!-- paramdoc SECTION -->`` and ``<!-- /paramdoc -->``; the prose around them is
  hand-written. ``python -m reflection_tuning.paramdoc`` (``make docs``) rewrites the file,
  ``--check`` only compares.

Keys are dotted paths: ``teacher.max_tokens``, ``datasets.alpaca.source``, ``preset``. The
structure comes from PyYAML's node tree (block mappings are descended into; a flow mapping
such as ``{input: 0.15}`` is a value), so only the comment text is read from the lines.
"""

from __future__ import annotations

import argparse
import functools
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
# The shipped params file, whose comments describe every key (absent from an installed wheel).
PARAMS = REPO / "params.yaml"
DOC = REPO / "docs" / "parameters.md"
REGENERATE = "make docs  (or: python -m reflection_tuning.paramdoc)"

_BLOCK = re.compile(r"<!-- paramdoc (\S+) -->\n.*?<!-- /paramdoc -->", re.DOTALL)


@dataclass(frozen=True)
class Key:
    """One params key: its dotted ``path``, its value as written (``source``) and its ``doc``."""

    path: str
    source: str
    doc: str


@dataclass(frozen=True)
class Section:
    """A top-level key: its comment block (``doc``) and its keys (itself, for a scalar)."""

    name: str
    doc: str
    keys: tuple[Key, ...]


def _comment_at(line: str) -> int | None:
    """Column of the ``#`` that opens a comment on ``line`` (YAML: after whitespace or at the
    start, outside quotes), or None."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"" and (i == 0 or line[i - 1] in " :[{,"):
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            return i
    return None


def _is_comment_line(line: str) -> bool:
    return line.lstrip().startswith("#")


def _text(line: str, col: int) -> str:
    return line[col + 1:].strip()


def _key_doc(lines: list[str], row: int, col: int) -> str:
    """The description of the key at ``lines[row]``, column ``col``: the comment lines right
    above it at its indentation, then its end-of-line comment and the comment lines below
    that start in the same column."""
    above = []
    r = row - 1
    while r >= 0 and _is_comment_line(lines[r]) and len(lines[r]) - len(lines[r].lstrip()) == col:
        above.insert(0, _text(lines[r], col))
        r -= 1
    parts = above
    at = _comment_at(lines[row])
    if at is not None and at > col:
        parts.append(_text(lines[row], at))
        r = row + 1
        while r < len(lines) and _is_comment_line(lines[r]) and lines[r].index("#") == at:
            parts.append(_text(lines[r], at))
            r += 1
    return " ".join(p for p in parts if p)


def _keys(node: yaml.MappingNode, prefix: str, lines: list[str], text: str) -> list[Key]:
    out = []
    for k, v in node.value:
        path = f"{prefix}{k.value}"
        if isinstance(v, yaml.MappingNode) and not v.flow_style:
            out += _keys(v, path + ".", lines, text)
        else:
            source = text[v.start_mark.index:v.end_mark.index].strip() or "null"
            out.append(Key(path, source, _key_doc(lines, k.start_mark.line, k.start_mark.column)))
    return out


def parse(text: str) -> tuple[Section, ...]:
    """The sections of a params file's ``text``, in file order.

    Raises:
        ValueError: the top level is not a mapping.
    """
    root = yaml.compose(text)
    if not isinstance(root, yaml.MappingNode):
        raise ValueError("params: the top level must be a mapping")
    lines = text.splitlines()
    sections = []
    for k, v in root.value:
        doc = _key_doc(lines, k.start_mark.line, 0)
        if isinstance(v, yaml.MappingNode) and not v.flow_style:
            keys = _keys(v, k.value + ".", lines, text)
            # A section's own line has no comment of its own: the block above is the section's.
            sections.append(Section(k.value, doc, tuple(keys)))
        else:
            source = text[v.start_mark.index:v.end_mark.index].strip() or "null"
            sections.append(Section(k.value, doc, (Key(k.value, source, doc),)))
    return tuple(sections)


@functools.lru_cache(maxsize=4)
def _read(path: Path, mtime: float) -> dict[str, str]:
    return {key.path: key.doc for s in parse(path.read_text(encoding="utf-8")) for key in s.keys}


def describe(section: str, key: str, path: Path | None = None) -> str:
    """What key ``key`` of section ``section`` means, from ``path``'s comments; "" when the
    file or the key is missing, or the key has no comment.

    ``section`` is dotted (``teacher``, ``datasets.alpaca``); ``datasets.{dataset}`` (a
    stage's section template) reads the first dataset that has ``key``; ``""`` is the top level.
    ``path``: the params file (default: the shipped one, :data:`PARAMS`).
    """
    path = path or PARAMS
    try:
        docs = _read(path, path.stat().st_mtime)
    except (OSError, yaml.YAMLError, ValueError):
        return ""
    full = f"{section}.{key}" if section else key
    if "{dataset}" in section:
        pattern = re.compile(re.escape(full).replace(re.escape("{dataset}"), r"[^.]+") + "$")
        return next((doc for p, doc in docs.items() if pattern.match(p)), "")
    return docs.get(full, "")


def render_section(section: Section) -> str:
    """The generated Markdown of one section: its comment, then one bullet per key."""
    scalar = section.keys[0].path == section.name  # a top-level value: its comment is the key's
    out = [section.doc, ""] if section.doc and not scalar else []
    for key in section.keys:
        line = f"- `{key.path}` = `{key.source}`"
        out.append(f"{line}: {key.doc}" if key.doc else line)
    return "\n".join(out).strip("\n")


def render(doc: str, sections: tuple[Section, ...]) -> str:
    """``doc`` with every ``<!-- paramdoc SECTION -->`` block filled from ``sections``.

    Raises:
        ValueError: a block names a section that ``sections`` lacks, or a section has no block
            (the message says which, and where to add it).
    """
    by_name = {s.name: s for s in sections}
    named = _BLOCK.findall(doc)
    unknown = [n for n in named if n not in by_name]
    missing = [n for n in by_name if n not in named]
    if unknown:
        raise ValueError(f"docs/parameters.md: no params section {unknown}; remove or rename its paramdoc block")
    if missing:
        raise ValueError(
            f"docs/parameters.md has no block for params section(s) {missing}: add "
            f"'<!-- paramdoc NAME -->' and '<!-- /paramdoc -->' lines under a heading, then run {REGENERATE}"
        )

    def fill(m: re.Match) -> str:
        return f"<!-- paramdoc {m.group(1)} -->\n{render_section(by_name[m.group(1)])}\n<!-- /paramdoc -->"

    return _BLOCK.sub(fill, doc)


def main(argv: list[str] | None = None) -> int:
    """Rewrite ``docs/parameters.md`` from ``params.yaml`` (``--check``: exit 1 if it differs)."""
    parser = argparse.ArgumentParser(prog="python -m reflection_tuning.paramdoc", description=main.__doc__)
    parser.add_argument("--params", type=Path, default=PARAMS)
    parser.add_argument("--doc", type=Path, default=DOC)
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 when the file is out of date")
    args = parser.parse_args(argv)
    current = args.doc.read_text(encoding="utf-8")
    wanted = render(current, parse(args.params.read_text(encoding="utf-8")))
    if wanted == current:
        return 0
    if args.check:
        print(f"{args.doc} is out of date with {args.params}: run {REGENERATE}", file=sys.stderr)
        return 1
    args.doc.write_text(wanted, encoding="utf-8")
    print(f"wrote {args.doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
