"""Marked segments of a teacher's free-text reply: the parsing the steps share. Pure, no I/O.

A reply holds marked segments, ``[New Instruction] … [End]``, ``[New Answer] … [End]`` or
``[Better Answer] … [End]``; each step module says which ones it reads.

What is tolerated: markdown emphasis around a marker (``**[New Answer]**``), a colon after
it, the unbracketed form at the start of a line (``New Instruction:``, ``**New Answer:**``,
``### Better Answer:``, ``The better answer is:``), a missing ``[End]`` (the segment then
runs to the next marker or to the end of the text), and any text before the first or after
the last marker.

What is never done: a segment ends only at the bracketed marker ``[End]`` (any case) or at
the next start marker; a word that merely contains "end" ("Endpoint", "Ending", "end")
never cuts it. Empty segments and template echoes ("your answer", "<the improved
instruction>") are rejected. When a reply has several candidates, the first complete one
is taken and :attr:`ParseResult.candidates` / :attr:`ParseResult.chosen` record it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from reflection_tuning import status as st

_EMPH = r"(?:\*\*|__|\*|_)?"


def _label(words: str) -> str:
    return r"\s+".join(re.escape(w) for w in words.split())


def _start_marker(words: str) -> re.Pattern[str]:
    """``[Words]`` anywhere, or ``Words:`` at the start of a line; emphasis around either."""
    label = _label(words)
    bracketed = rf"{_EMPH}\[\s*{label}\s*\]{_EMPH}(?:[ \t]*:)?"
    # the sentence form small teachers write, "The better answer is:", counts as the label too
    line_start = (
        rf"(?m:^)[ \t]*(?:\#{{1,6}}[ \t]*)?(?:[-*][ \t]+)?{_EMPH}[ \t]*(?:the\s+)?{label}(?:\s+is)?"
        rf"[ \t]*{_EMPH}[ \t]*:{_EMPH}"
    )
    return re.compile(rf"(?:{bracketed}|{line_start})", re.IGNORECASE)


# Only the bracketed marker ends a segment: never a bare word like "End" or "Endpoint".
END_MARKER = re.compile(rf"{_EMPH}\[\s*end\s*\]{_EMPH}", re.IGNORECASE)
NEW_INSTRUCTION = _start_marker("New Instruction")
NEW_ANSWER = _start_marker("New Answer")
BETTER_ANSWER = _start_marker("Better Answer")

# Normalized texts that mean the teacher copied the format instead of filling it.
ECHOES = frozenset(
    {
        "your instruction", "your new instruction", "your improved instruction", "new instruction",
        "the new instruction", "the improved instruction", "improved instruction", "instruction",
        "your answer", "your new answer", "your better answer", "your improved answer", "your response",
        "new answer", "the new answer", "better answer", "the better answer", "the improved answer",
        "improved answer", "the answer to the improved instruction", "answer", "response",
        "the better instruction", "better instruction", "the answer to it", "the answer to the better instruction",
        "the merged instruction", "merged instruction", "your merged instruction",
        "", "...", "…", "text", "here", "insert here", "n/a", "none",
    }
)
_PLACEHOLDER = re.compile(r"^\s*<[^<>\n]{1,120}>\s*$")


@dataclass(frozen=True)
class ParseResult:
    """The outcome of parsing one reply.

    Attributes:
        status: ``ok`` or ``parse_error``.
        fields: the parsed texts (``instruction`` and ``output``, or ``output``); empty unless ok.
        reason: why parsing failed, or why a candidate was skipped (``None`` for a clean ok).
        candidates: how many start markers of the leading kind the reply holds.
        chosen: 0-based index of the candidate taken, ``None`` when none was.
        critique: the text before the first start marker (the critique the prompts ask for
            first), cleaned; "" when there is none.
    """

    status: str
    fields: dict[str, str] = field(default_factory=dict)
    reason: str | None = None
    candidates: int = 0
    chosen: int | None = None
    critique: str = ""

    @property
    def ok(self) -> bool:
        return self.status == st.OK


@dataclass(frozen=True)
class Marker:
    """One marker found in a reply: its kind (a key of the ``kinds`` given to :func:`markers`)
    and its span (character offsets)."""

    kind: str
    start: int
    end: int


def markers(text: str, kinds: dict[str, re.Pattern[str]], strict: bool) -> list[Marker]:
    """The markers of ``text``, by kind, in order, none overlapping; with ``strict``, a start
    marker counts only where a marker is expected (see :func:`_in_marker_position`)."""
    found = [Marker(kind, m.start(), m.end()) for kind, pat in kinds.items() for m in pat.finditer(text)]
    found.sort(key=lambda m: (m.start, -m.end))
    out: list[Marker] = []
    for m in found:  # drop a match that overlaps the one before it
        if not out or m.start >= out[-1].end:
            out.append(m)
    if strict:
        out = [m for i, m in enumerate(out) if m.kind == "end" or _in_marker_position(text, out, i)]
    return out


_LINE_LEAD = re.compile(r"[ \t>#*_\-]*")


def _in_marker_position(text: str, markers: list[Marker], i: int) -> bool:
    """A start marker stands where a marker is expected: first of all, at the start of a line,
    or right after another marker. Elsewhere it may be content ("explain what [New Answer] means")."""
    m = markers[i]
    line_start = text.rfind("\n", 0, m.start) + 1
    if i == 0 or _LINE_LEAD.fullmatch(text[line_start : m.start]):
        return True
    prev = markers[i - 1]  # "[End] [New Answer]", "The better answer is: [Better Answer]"
    return not text[prev.end : m.start].strip(" \t\r\n*_")


def segment(text: str, markers: list[Marker], i: int) -> str:
    """The text after marker ``i`` up to the next marker of any kind, or the end of the text."""
    stop = markers[i + 1].start if i + 1 < len(markers) else len(text)
    return _clean(text[markers[i].end : stop])


# the number of the prompt's next step, left at the end of a segment without [End] ("…\n\n3.")
_STEP_NUMBER = re.compile(r"\n\s*\d\.\s*$")


def _clean(seg: str) -> str:
    seg = _STEP_NUMBER.sub("", re.sub(r"^\s*:", "", seg)).strip()
    for emph in ("**", "__"):  # residue of emphasis around a marker: only when unbalanced
        if seg.startswith(emph) and seg.count(emph) % 2:
            seg = seg[len(emph):].strip()
        if seg.endswith(emph) and seg.count(emph) % 2:
            seg = seg[: -len(emph)].strip()
    if len(seg) >= 2 and seg[0] == seg[-1] == '"' and seg.count('"') == 2:
        seg = seg[1:-1].strip()
    return seg


def _normalize(seg: str) -> str:
    seg = re.sub(r"[<>\[\]*_\"'`:.!]", " ", seg.lower())
    return " ".join(seg.split())


def rejection(seg: str, what: str) -> str | None:
    """Why ``seg`` cannot be the ``what`` (``None`` when it can)."""
    if not seg:
        return f"empty {what}"
    if _PLACEHOLDER.match(seg) or _normalize(seg) in ECHOES:
        return f"{what} is a template echo ({seg[:60]!r})"
    bare = seg
    for marker in (NEW_INSTRUCTION, NEW_ANSWER, BETTER_ANSWER, END_MARKER):
        bare = marker.sub("", bare)
    if not bare.strip(" \t\r\n*_:"):
        return f"{what} holds nothing but markers"
    return None


def fail(reason: str, candidates: int) -> ParseResult:
    """A ``parse_error`` result saying why."""
    return ParseResult(st.PARSE_ERROR, {}, reason, candidates, None)


def ok(fields: dict[str, str], skipped: list[str], candidates: int, chosen: int, critique: str = "") -> ParseResult:
    """An ``ok`` result; its ``reason`` notes which candidate was taken when there were several."""
    reason = None
    if candidates > 1 or skipped:
        reason = f"took candidate {chosen + 1} of {candidates}" + (
            f"; skipped: {'; '.join(skipped)}" if skipped else ""
        )
    return ParseResult(st.OK, fields, reason, candidates, chosen, critique)


def critique(text: str, markers: list[Marker], first_start: int) -> str:
    """The text before the first start marker, without a trailing step number."""
    return _clean(text[: markers[first_start].start])


def strict_first(parse: Callable[[str, bool], ParseResult], text: str) -> ParseResult:
    """``parse(text, strict=True)``, else ``parse(text, strict=False)``."""
    # Markers only where markers stand first, so an instruction may quote "[New Answer]";
    # then every marker, for teachers that run the blocks together on one line.
    strict = parse(text, True)
    return strict if strict.ok else parse(text, False)


def parse_one(text: str, strict: bool, marker: re.Pattern[str], label: str, key: str) -> ParseResult:
    """The first complete ``marker`` segment, as ``{key: segment}``."""
    ms = markers(text or "", {"start": marker, "end": END_MARKER}, strict)
    starts = [i for i, m in enumerate(ms) if m.kind == "start"]
    if not starts:
        return fail(f"no [{label}] marker in reply", 0)
    skipped: list[str] = []
    for n, i in enumerate(starts):
        seg = segment(text, ms, i)
        why = rejection(seg, label.lower())
        if why is None:
            return ok({key: seg}, skipped, len(starts), n, critique(text, ms, starts[0]))
        skipped.append(f"candidate {n + 1}: {why}")
    return fail("; ".join(skipped), len(starts))
