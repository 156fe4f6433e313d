"""Reflect-response: (Q, A) -> (Q, A*), the row's instruction and input with a better answer.

Reflection-Tuning (arXiv 2310.11716, Sec. 2): the teacher critiques the answer (helpfulness,
relevance, accuracy, level of detail) and writes a better one. The stage runs it on every
original row (variant ``response``: Q, A*) and on every ok ``instruction`` row (variant
``both``: Q*, A**). Template: ``reflect_response.j2`` and ``reflect_response.system.txt``
beside this module (``reflect_response.prompt_file`` / ``system_file`` in params.yaml).

A free-text reply holds ``[Better Answer] … [End]`` (:mod:`.markers`); a structured reply holds
:data:`REPLY_FIELDS`. Each variant is a file of :func:`~.rewrite.teacher_row` rows, one per original.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from reflection_tuning import status as st
from reflection_tuning.infra.io import join_by_id
from reflection_tuning.steps.markers import BETTER_ANSWER, ParseResult, parse_one, strict_first
from reflection_tuning.steps.rewrite import RewriteStep

REPLY_FIELDS = {"critique": "why the answer is weak", "output": "the better answer"}


def parse_reply(reply: str) -> ParseResult:
    """Parse a reply into ``{"output": A*}``: the first complete ``[Better Answer]`` segment."""
    return strict_first(lambda t, strict: parse_one(t, strict, BETTER_ANSWER, "Better Answer", "output"), reply)


class ReflectResponse(RewriteStep):
    """(Q, A) -> (Q, A*): the row's instruction and input, and a better answer."""

    name = "reflect_response"
    reply_fields = REPLY_FIELDS
    parse_reply = staticmethod(parse_reply)

    def new_fields(self, parsed: Mapping[str, str], row: Mapping[str, Any]) -> dict[str, Any]:
        return {"instruction": row["instruction"], "input": row.get("input") or "", "output": parsed["output"]}


def plan(originals: Iterable[dict], reflected: Iterable[dict], stale: list[str] | None = None
         ) -> Iterator[tuple[str, dict, str | None]]:
    """What the ``reflect_response`` stage does with each original, both streams sorted by ``id`` (a merge-join):
    ``("response", original, None)``, then ``("both", instruction_row, None)`` when the
    instruction row is ok, else ``("both", original, why)``: a row written ``upstream_unusable``,
    not sent. Rows to send are those with ``why`` None, in this order (the stage and ``estimate``).

    Args:
        stale: collects the ids of instruction rows that have no original (they are ignored).

    Raises:
        ValueError: a stream is not sorted by ``id``.
    """
    for key, (original, up) in join_by_id(originals, reflected):
        if original is None:
            if stale is not None:
                stale.append(key)
            continue
        yield "response", original, None
        if up is not None and up.get("status") == st.OK:
            yield "both", up, None
        else:
            yield "both", original, ("no instruction row for this id" if up is None
                                     else f"instruction variant is {up.get('status')}")
