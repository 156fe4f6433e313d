"""The rows of the reflection stages (the stages themselves: tests/unit/stages/test_reflect_loop.py),
one row per input, ``null`` fields unless ok, the reply's provenance; and the reply schema helpers."""

from __future__ import annotations

import pytest

from reflection_tuning import status as st
from reflection_tuning.llm.cache import Completion
from reflection_tuning.llm.outcome import Outcome
from reflection_tuning.steps.rewrite import object_schema, teacher_row, text

SOURCE = {"id": "a1b2", "instruction": "Give three tips for staying healthy.", "input": "",
          "output": "Eat well.", "source": "cherry_alpaca"}
REPLY = Completion("[Critique] Too short. [Better Answer] Eat well, sleep, move. [End]", "stop", 120, 18)


def test_an_ok_row_carries_the_new_fields_the_critique_and_the_reply():
    fields = {"instruction": SOURCE["instruction"], "input": "", "output": "Eat well, sleep, move.",
              "critique": "Too short."}
    row = teacher_row(SOURCE, "response", Outcome(SOURCE, st.OK, fields, completion=REPLY, attempts=2,
                                                  repetition=0.0), teacher_model="smollm2", template_hash="h1")
    assert row == {"id": "a1b2", "variant": "response", "instruction": SOURCE["instruction"], "input": "",
                   "output": "Eat well, sleep, move.", "source": "cherry_alpaca", "critique": "Too short.",
                   "status": "ok", "repetition": 0.0, "teacher_model": "smollm2", "template_hash": "h1",
                   "raw_reply": REPLY.content, "finish_reason": "stop", "prompt_tokens": 120, "completion_tokens": 18,
                   "attempts": 2, "reply_format": "markers", "adaptations": [], "error": None}


@pytest.mark.parametrize("status", [s for s in st.STEP if s != st.OK])
def test_a_row_that_is_not_ok_has_no_fields_never_the_original(status):
    outcome = Outcome(SOURCE, status, None, reason="why", completion=REPLY if status == st.PARSE_ERROR else None)
    row = teacher_row(SOURCE, "instruction", outcome, teacher_model="m", template_hash="h")
    assert (row["instruction"], row["input"], row["output"], row["critique"]) == (None, None, None, None)
    assert row["status"] == status and row["error"] == "why"
    assert row["raw_reply"] == (REPLY.content if status == st.PARSE_ERROR else None)


def test_bad_outcomes_are_refused():
    with pytest.raises(ValueError, match="unknown status"):
        teacher_row(SOURCE, "both", Outcome(SOURCE, "fine"), teacher_model="m", template_hash="h")
    with pytest.raises(ValueError, match="needs instruction, input and output"):
        teacher_row(SOURCE, "both", Outcome(SOURCE, st.OK, {"instruction": "x", "input": None, "output": "y"}),
                    teacher_model="m", template_hash="h")


def test_object_schema_is_strict_and_a_text_bounded_only_when_asked():
    assert object_schema(output=text("the better answer", 1500)) == {
        "type": "object", "required": ["output"], "additionalProperties": False,
        "properties": {"output": {"type": "string", "description": "the better answer", "maxLength": 1500}}}
    assert text("the better answer") == {"type": "string", "description": "the better answer"}
