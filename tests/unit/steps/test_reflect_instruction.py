"""The rewrite steps: requests from rows, the critique kept, the fields of each step (the
instruction reflection here; the response reflection and ``compress`` in their own files)."""

from __future__ import annotations

import jsonschema
import pytest

from reflection_tuning.llm.cache import Completion
from reflection_tuning.llm.step import Failure, Parsed
from reflection_tuning.rows import FIELDS
from reflection_tuning.steps.checks import ReplyChecks
from reflection_tuning.steps.compress import Compress
from reflection_tuning.steps.prompt import load_prompt
from reflection_tuning.steps.reflect_instruction import ReflectInstruction
from reflection_tuning.steps.reflect_response import ReflectResponse

ROW = {"id": "1", "instruction": "Name a colour.", "input": "", "output": "Red."}
ROW_IN = {"id": "2", "instruction": "Describe the movie.", "input": "The Notebook", "output": "A love story."}
STEPS = {"reflect_instruction": ReflectInstruction, "reflect_response": ReflectResponse, "compress": Compress}


def prompt(name: str):
    return load_prompt(*STEPS[name].template_files(), FIELDS)


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


def test_structured_replies_give_the_same_fields_as_marked_ones():
    """``reply_format: json_schema``: the schema's JSON object maps to the row fields as the
    markers do, the critique kept; an empty required text is a parse error."""
    from reflection_tuning.llm.step import decode_json_reply

    step = ReflectInstruction(prompt("reflect_instruction"))
    obj = decode_json_reply('{"critique": "The instruction is too easy.", "instruction": "Name three colours.", '
                            '"output": "Red, green and blue."}', step.schema)
    parsed = step.parse_json(obj, ROW_IN)
    assert isinstance(parsed, Parsed)
    assert parsed.fields == {"instruction": "Name three colours.", "input": "", "output": "Red, green and blue.",
                             "critique": "The instruction is too easy."}
    response = ReflectResponse(prompt("reflect_response"))
    parsed = response.parse_json({"critique": "", "output": "A tragic love story."}, ROW_IN)
    assert parsed.fields["instruction"] == ROW_IN["instruction"] and parsed.fields["input"] == "The Notebook"
    assert isinstance(response.parse_json({"critique": "x", "output": "  "}, ROW_IN), Failure)
    assert isinstance(decode_json_reply('{"output": "no critique"}', response.schema), Failure)


BOUNDS = {"critique": 600, "instruction": 400, "output": 1500}


def test_the_schema_bounds_every_string_only_where_bounds_are_sent():
    """Bounded (the embedded server): every string has a maxLength, and the prompt states the
    bounds. Unbounded (any other endpoint): only the keywords of OpenAI's strict mode."""
    step = ReflectInstruction(prompt("reflect_instruction"), ReplyChecks(BOUNDS, 0.5, 10))
    schema = step.schema
    assert schema["additionalProperties"] is False and set(schema["required"]) == set(schema["properties"])
    assert {p["maxLength"] for p in schema["properties"].values()} == {600, 400, 1500}
    good = {"critique": "The instruction is too easy.", "instruction": "Name three colours.",
            "output": "Red, green and blue are three colours."}
    jsonschema.validate(good, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**good, "output": "x" * 1501}, schema)
    assert "at most 1500 characters" in step.format_input(ROW)[-1]["content"]
    free = ReflectInstruction(prompt("reflect_instruction"))
    assert all(set(p) == {"type", "description"} for p in free.schema["properties"].values())
    jsonschema.validate({**good, "output": "x" * 3200}, free.schema)
    assert "characters" not in free.format_input(ROW)[-1]["content"]
    with pytest.raises(ValueError, match="not fields of its reply"):
        ReflectInstruction(prompt("reflect_instruction"), ReplyChecks({"answer": 10}, 0.5, 10))


def test_a_whole_reply_is_ok_and_a_cut_repeated_or_copied_one_is_not():
    """``ok`` means the whole reply: a field at its bound is ``truncated`` (the decoder closed it), a
    looping field is ``repetitive`` with its ratio, a field that repeats another is ``copy``."""
    step = ReflectInstruction(prompt("reflect_instruction"), ReplyChecks(BOUNDS, 0.5, 10))
    good = {"critique": "The instruction asks for one colour and the answer names one.",
            "instruction": "Name three primary colours of light and say how they mix.",
            "output": "Red, green and blue; together they make white light."}
    assert isinstance(step.parse_json(good, ROW), Parsed)
    cut = step.parse_json({**good, "output": "word " * 300}, ROW)  # 1500 characters: at the bound
    assert cut.status == "truncated" and "output" in cut.reason
    loop = "The instruction is not a good one. " * 12
    rep = step.parse_json({**good, "output": loop.strip()}, ROW)
    assert rep.status == "repetitive" and rep.repetition > 0.9
    copy = step.parse_json({"critique": "The Instruction is weak", "instruction": "The Instruction is weak",
                            "output": "Something else entirely, long enough to count."}, ROW)
    assert copy.status == "copy" and "critique" in copy.reason
    same = step.parse_json({**good, "output": ROW["output"]}, ROW)
    assert same.status == "copy" and "original" in same.reason
    # free text has no bound to hit: a long answer is whole
    free = ReflectInstruction(prompt("reflect_instruction"))
    long = " ".join(f"point{i} holds{i}" for i in range(800))
    assert isinstance(free.parse_json({**good, "output": long}, ROW), Parsed)
