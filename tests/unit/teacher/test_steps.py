"""The teacher's steps: requests from rows, the critique kept, the fields of each step, and
``compress``'s merged instruction."""

from __future__ import annotations

from pathlib import Path

from reflection_tuning.llm.cache import Completion
from reflection_tuning.llm.step import Failure, Parsed
from reflection_tuning.teacher.parse import parse_merged_reply, parse_response_reply
from reflection_tuning.teacher.prompts import load_prompt
from reflection_tuning.teacher.steps import Compress, ReflectInstruction, ReflectResponse

REPO = Path(__file__).resolve().parents[3]
ROW = {"id": "1", "instruction": "Name a colour.", "input": "", "output": "Red."}
ROW_IN = {"id": "2", "instruction": "Describe the movie.", "input": "The Notebook", "output": "A love story."}


def prompt(name: str):
    return load_prompt(REPO / f"prompts/{name}.txt", REPO / f"prompts/{name}.system.txt")


def reply(text: str, finish: str = "stop") -> Completion:
    return Completion(text, finish, 10, 20)


def test_instruction_step_keeps_the_critique():
    step = ReflectInstruction(prompt("reflect_instruction"))
    messages = step.format_input(ROW)
    assert messages[0]["role"] == "system" and messages[0]["content"]  # a real system prompt
    assert "Name a colour." in messages[1]["content"] and "Red." in messages[1]["content"]
    text = ("1. The instruction is vague and the answer is one word.\n\n2.\n"
            "[New Instruction] Explain how colours are perceived. [End]\n3.\n[New Answer] Through cones. [End]")
    got = step.parse(reply(text), ROW)
    assert isinstance(got, Parsed)
    assert got.fields == {"instruction": "Explain how colours are perceived.", "input": "", "output": "Through cones.",
                          "critique": "1. The instruction is vague and the answer is one word."}
    assert step.template_hash == prompt("reflect_instruction").hash
    assert set(step.schema["required"]) == {"critique", "instruction", "output"}


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


def test_compress_step():
    step = Compress(prompt("compress"))
    user = step.format_input(ROW_IN)[-1]["content"]
    assert "The Notebook" in user and "Describe the movie." in user and "A love story." in user
    got = step.parse(reply('[New Instruction] Describe the movie "The Notebook". [End]'), ROW_IN)
    assert got.fields["instruction"] == 'Describe the movie "The Notebook".'
    assert (got.fields["input"], got.fields["output"]) == ("", "A love story.")
    assert not parse_merged_reply("[New Instruction] the merged instruction [End]").ok


def test_structured_replies_give_the_same_fields_as_marked_ones():
    """``reply_format: json_schema``: the schema's JSON object maps to the row fields as the
    markers do, the critique kept; an empty required text is a parse error."""
    from reflection_tuning.llm.step import decode_json_reply

    step = ReflectInstruction(prompt("reflect_instruction"))
    obj = decode_json_reply('{"critique": "Too easy.", "instruction": "Name three colours.", "output": "Red."}',
                            step.schema)
    parsed = step.parse_json(obj, ROW_IN)
    assert isinstance(parsed, Parsed)
    assert parsed.fields == {"instruction": "Name three colours.", "input": "", "output": "Red.",
                             "critique": "Too easy."}
    response = ReflectResponse(prompt("reflect_response"))
    parsed = response.parse_json({"critique": "", "output": "A tragic love story."}, ROW_IN)
    assert parsed.fields["instruction"] == ROW_IN["instruction"] and parsed.fields["input"] == "The Notebook"
    assert isinstance(response.parse_json({"critique": "x", "output": "  "}, ROW_IN), Failure)
    assert isinstance(decode_json_reply('{"output": "no critique"}', response.schema), Failure)
