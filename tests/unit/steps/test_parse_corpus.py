"""The parser on real replies of the embedded teacher (SmolLM2-135M-Instruct), committed in
``tests/data/teacher_replies.jsonl`` by ``tests/data/collect_replies.py``.

Each reply must parse exactly as recorded (a change must be reviewed and re-recorded), and
every ok result must hold the invariants that matter whatever the parser's details.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from reflection_tuning.steps.reflect_instruction import parse_reply as parse_instruction_reply
from reflection_tuning.steps.reflect_response import parse_reply as parse_response_reply

CORPUS = Path(__file__).resolve().parents[2] / "data" / "teacher_replies.jsonl"
PARSERS = {"instruction": parse_instruction_reply, "response": parse_response_reply}
ROWS = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()] if CORPUS.exists() else []
END = re.compile(r"\[\s*end\s*\]", re.IGNORECASE)


def test_corpus_is_real_and_varied():
    assert len(ROWS) >= 150, "collect more replies: python tests/data/collect_replies.py data/alpaca"
    assert {r["kind"] for r in ROWS} == {"instruction", "response"}
    assert {r["expected_status"] for r in ROWS} == {"ok", "parse_error"}
    assert {r["finish_reason"] for r in ROWS} == {"stop", "length"}


@pytest.mark.parametrize("row", ROWS, ids=[f"{r['kind']}-{i}" for i, r in enumerate(ROWS)])
def test_real_reply_parses_as_recorded(row):
    parsed = PARSERS[row["kind"]](row["raw_reply"])
    assert (parsed.status, parsed.fields, parsed.candidates) == (
        row["expected_status"], row["expected_fields"], row["expected_candidates"])
    for text in parsed.fields.values():  # invariants of any ok result
        assert text.strip() == text and text
        assert not END.search(text), "a segment runs past its [End]"
        # the segment is a verbatim piece of the reply (nothing invented, nothing cut mid-word)
        assert text.replace("**", "") in row["raw_reply"].replace("**", "")
