"""The response reflection: the row's instruction and input kept, a better answer parsed."""

from __future__ import annotations

from reflection_tuning.llm.step import Failure
from reflection_tuning.steps.reflect_response import ReflectResponse, plan
from reflection_tuning.steps.reflect_response import parse_reply as parse_response_reply

from .test_reflect_instruction import ROW, ROW_IN, prompt, reply


def test_response_step_keeps_instruction_and_input():
    step = ReflectResponse(prompt("reflect_response"))
    assert "The Notebook" in step.format_input(ROW_IN)[-1]["content"]
    assert "and its input" in step.format_input(ROW_IN)[-1]["content"]
    assert "and its input" not in step.format_input(ROW)[-1]["content"]
    got = step.parse(reply("Too short.\n[Better Answer] A 2004 romance about Noah and Allie. [End]"), ROW_IN)
    assert got.fields == {"instruction": "Describe the movie.", "input": "The Notebook",
                          "output": "A 2004 romance about Noah and Allie.", "critique": "Too short."}
    bad = step.parse(reply("no blocks at all"), ROW_IN)
    assert isinstance(bad, Failure) and bad.status == "parse_error" and "Better Answer" in bad.reason


def test_a_segment_without_end_loses_the_next_step_number():
    # the reference strips the "3." that a numbered prompt leaves after a segment
    assert parse_response_reply("[Better Answer] Fine answer.\n\n3.").fields["output"] == "Fine answer."


def test_plan_joins_by_id_and_marks_the_rows_not_sent():
    originals = [{"id": "a"}, {"id": "b"}, {"id": "c"}]
    reflected = [{"id": "a", "status": "ok"}, {"id": "b", "status": "parse_error"}, {"id": "z", "status": "ok"}]
    stale: list[str] = []
    got = [(variant, row["id"], why) for variant, row, why in plan(originals, reflected, stale)]
    assert got == [("response", "a", None), ("both", "a", None),
                   ("response", "b", None), ("both", "b", "instruction variant is parse_error"),
                   ("response", "c", None), ("both", "c", "no instruction row for this id")]
    assert stale == ["z"]
    # the `both` row sent is the instruction row (its Q*, A_Q*), not the original
    assert next(row for v, row, why in plan(originals, reflected) if v == "both")["status"] == "ok"
