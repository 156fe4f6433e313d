"""The parameter reference: written as the comments of ``params.yaml``, shipped as
``paramdoc.json`` in the package root, shown by every command's ``--help``.

``params.yaml`` is the one place a key is described: the comment on its line (with any
comment lines below it that start in the same column), or the comment lines right above it
at its own indentation. The comment block right above a top-level key describes that
section. ``python -m reflection_tuning.infra.paramdoc`` (``make docs``) reads them and writes:

- ``src/reflection_tuning/paramdoc.json`` (:data:`PACKAGED`, package data, outside ``infra/``, which
  every stage of ``dvc.yaml`` depends on: a new comment reruns no stage): every section
  and key with its description, which :func:`describe` and :func:`section_doc` read for
  ``--help``, so the help is the same whatever the user's ``params.yaml`` holds (a file
  rewritten by a YAML tool has lost its comments; an installed wheel has no ``params.yaml``);
- the generated blocks of ``docs/parameters.md`` (:func:`render`), each between
  ``<!-- paramdoc SECTION -->`` and ``<!-- /paramdoc -->``; the prose around them is
  hand-written.

``--check`` only compares, and ``tests/unit/infra/test_paramdoc.py`` fails while either file is
out of date. Keys are dotted paths: ``teacher.max_tokens``, ``datasets.alpaca.source``,
``preset``. The structure comes from PyYAML's node tree (block mappings are descended into;
a flow mapping such as ``{input: 0.15}`` is a value), so only the comment text is read from
the lines.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import logging
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[3]
# The shipped params file, whose comments describe every key (absent from an installed wheel).
PARAMS = REPO / "params.yaml"
DOC = REPO / "docs" / "parameters.md"
# The descriptions as package data, generated from PARAMS: what --help reads.
PACKAGED = Path(__file__).resolve().parents[1] / "paramdoc.json"
REGENERATE = "make docs  (or: python -m reflection_tuning.infra.paramdoc)"

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


def to_json(sections: tuple[Section, ...]) -> str:
    """``sections`` as the text of :data:`PACKAGED` (read back by :func:`from_json`)."""
    body = {"generated": f"from params.yaml's comments by {REGENERATE}; edit those, not this file",
            "sections": [dataclasses.asdict(s) for s in sections]}
    return json.dumps(body, indent=1, ensure_ascii=False) + "\n"


def from_json(text: str) -> tuple[Section, ...]:
    """The sections of a :func:`to_json` text.

    Raises:
        ValueError: the text is not JSON of that shape.
    """
    try:
        return tuple(Section(s["name"], s["doc"], tuple(Key(**k) for k in s["keys"]))
                     for s in json.loads(text)["sections"])
    except (KeyError, TypeError) as e:
        raise ValueError(f"not a paramdoc file: {e}") from e


@functools.lru_cache(maxsize=4)
def _packaged(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """Section docs and key docs of the packaged file; empty (and a warning) when it is unreadable,
    so a broken install still prints its help, by type."""
    try:
        sections = from_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        logging.getLogger(__name__).warning("no parameter descriptions (%s): reinstall the package", e)
        return {}, {}
    return ({s.name: s.doc for s in sections},
            {key.path: key.doc for s in sections for key in s.keys})


def describe(section: str, key: str) -> str:
    """What key ``key`` of section ``section`` means (:data:`PACKAGED`); "" for an unknown key.

    ``section`` is dotted (``teacher``, ``datasets.alpaca``); ``datasets.{dataset}`` (a
    stage's section template) reads the first dataset that has ``key``; ``""`` is the top level.
    """
    docs = _packaged(PACKAGED)[1]
    full = f"{section}.{key}" if section else key
    if "{dataset}" in section:
        pattern = re.compile(re.escape(full).replace(re.escape("{dataset}"), r"[^.]+") + "$")
        return next((doc for p, doc in docs.items() if pattern.match(p)), "")
    return docs.get(full, "")


def section_doc(section: str) -> str:
    """What section ``section`` (dotted: its top level is read) is for (:data:`PACKAGED`); "" if unknown."""
    return _packaged(PACKAGED)[0].get(section.split(".")[0], "")


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
    """Write ``docs/parameters.md``'s key lists and ``paramdoc.json`` from ``params.yaml``'s comments
    (``--check``: write nothing, exit 1 if either differs)."""
    parser = argparse.ArgumentParser(prog="python -m reflection_tuning.infra.paramdoc", description=main.__doc__)
    parser.add_argument("--params", type=Path, default=PARAMS, help="the params file whose comments describe the keys")
    parser.add_argument("--doc", type=Path, default=DOC, help="the Markdown reference to fill")
    parser.add_argument("--packaged", type=Path, default=PACKAGED, help="the JSON that --help reads")
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 when a file is out of date")
    args = parser.parse_args(argv)
    sections = parse(args.params.read_text(encoding="utf-8"))
    current = args.doc.read_text(encoding="utf-8")
    wanted = {args.doc: render(current, sections), args.packaged: to_json(sections)}
    stale = [p for p, text in wanted.items() if not p.is_file() or p.read_text(encoding="utf-8") != text]
    if args.check:
        for path in stale:
            print(f"{path} is out of date with {args.params}: run {REGENERATE}", file=sys.stderr)
        return 1 if stale else 0
    for path in stale:
        path.write_text(wanted[path], encoding="utf-8")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
