"""The documentation holds together: the README is a front page (at most 15 KB, no measured
figure), and every relative link between the docs points at a file that exists, and at a
heading of it when the link names one."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
DOCS = [README, REPO / "CONTRIBUTING.md", REPO / "benchmarks" / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FRONT_PAGE_BYTES = 15 * 1024

# [text](target): a Markdown inline link outside code spans and fenced blocks.
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.DOTALL | re.MULTILINE)
CODE_SPAN = re.compile(r"`[^`\n]*`")


def links(text: str) -> list[str]:
    prose = CODE_SPAN.sub("", FENCE.sub("", text))
    return LINK.findall(prose)


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation but ``-`` and ``_`` dropped,
    spaces to ``-``."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    return {slug(m) for m in re.findall(r"^#{1,6} (.+)$", text, re.MULTILINE)}


def test_slug_matches_github():
    assert (
        slug("`reflect_instruction`, `reflect_response`, `compress`") == "reflect_instruction-reflect_response-compress"
    )
    assert slug("Fine-tuning throughput: packed against padded batches (2026-11-30)") == \
        "fine-tuning-throughput-packed-against-padded-batches-2026-11-30"
    assert links("see [a](b.md) and `[c](d.md)`\n```\n[e](f.md)\n```\n") == ["b.md"]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(doc):
    broken = []
    for target in links(doc.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        dest = (doc.parent / path).resolve() if path else doc
        if not dest.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target} (no heading #{anchor} in {dest.relative_to(REPO)})")
    assert not broken, f"{doc.relative_to(REPO)}: broken links {broken}"


def test_the_readme_is_a_front_page():
    text = README.read_text(encoding="utf-8")
    assert len(text.encode("utf-8")) <= FRONT_PAGE_BYTES, "README.md is over 15 KB: move the detail to docs/"
    assert "benchmarks/README.md" in text
    # Measured figures live in benchmarks/README.md, with their date and machine.
    assert not re.search(r"\d+(\.\d+)? ?(s|min|minutes|tokens/s|req/s)\b|\d+(\.\d+)?×", text)
