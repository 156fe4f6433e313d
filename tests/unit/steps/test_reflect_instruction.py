"""The rewrite steps: requests from rows, the critique kept, the fields of each step (the
instruction reflection here; the response reflection and ``compress`` in their own files)."""

from __future__ import annotations

import jsonschema
import pytest

from reflection_tuning.llm.cache import Completion
from reflection_tuning.llm.step import Failure, Parsed
from reflection_tuning.rows import FIELDS
from reflection_tuning.steps.compress import Compress
from reflection_tuning.steps.prompt import load_prompt
from reflection_tuning.steps.reflect_instruction import SCHEMA, ReflectInstruction
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


def test_the_schema_bounds_every_string():
    """A structured reply must close: every string has a length bound, every field is required."""
    assert SCHEMA["additionalProperties"] is False and set(SCHEMA["required"]) == set(SCHEMA["properties"])
    assert all({"minLength", "maxLength"} <= set(p) for p in SCHEMA["properties"].values())
    good = {"critique": "The instruction is too easy.", "instruction": "Name three colours.",
            "output": "Red, green and blue are three colours."}
    jsonschema.validate(good, SCHEMA)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**good, "output": "x" * 1501}, SCHEMA)
