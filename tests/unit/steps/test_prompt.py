"""Step prompts: Jinja2 templates filled safely from a row, the shipped templates beside their
steps, and a prompt's id (the hash of its source)."""

from __future__ import annotations

from pathlib import Path

import pytest

from reflection_tuning.rows import FIELDS
from reflection_tuning.steps.compress import Compress
from reflection_tuning.steps.prompt import load_prompt, template_hash
from reflection_tuning.steps.reflect_instruction import ReflectInstruction
from reflection_tuning.steps.reflect_response import ReflectResponse

ROWS = [
    {"id": "a", "instruction": "Sort these {numbers}.", "input": "3, 1, {output} 2", "output": "1, 2, 3 {{ x }}"},
    {"id": "b", "instruction": "Name a colour.", "input": "", "output": "Red."},
    {"id": "c", "instruction": "Say hi {% if %}", "input": "  \n", "output": "Hi.\n"},
]
STEPS = [ReflectInstruction, ReflectResponse, Compress]


@pytest.mark.parametrize("cls", STEPS, ids=lambda c: c.name)
@pytest.mark.parametrize("row", ROWS, ids=lambda r: r["id"])
def test_a_row_with_braces_fills_the_shipped_templates_as_it_is(cls, row):
    user = cls.shipped().format_input(row)[-1]["content"]
    assert row["instruction"] in user and row["output"] in user  # braces in a row are text, never template
    if row["input"].strip():
        assert row["input"] in user
    else:  # the input block is left out (compress always shows it: it merges the input)
        assert ("Start of Input" in user) == (cls is Compress)


def test_template_hash_is_the_hash_of_the_source():
    edited = template_hash("sys", "tpl {{ instruction }}")
    assert len(edited) == 12 and edited == template_hash("sys", "tpl {{ instruction }}")
    assert edited != template_hash("sys2", "tpl {{ instruction }}") != template_hash("sys", "tpl2 {{ instruction }}")
    assert template_hash("ab", "c") != template_hash("a", "bc")


def write(tmp_path: Path, template: str, system: str = "  be careful \n") -> tuple[Path, Path]:
    (tmp_path / "t.j2").write_text(template, encoding="utf-8")
    (tmp_path / "s.txt").write_text(system, encoding="utf-8")
    return tmp_path / "t.j2", tmp_path / "s.txt"


def test_row_text_is_never_template_source(tmp_path):
    p = load_prompt(*write(tmp_path, "Q: {{ instruction }}\n{{ input }}|A: {{ output }}\nkeep {other}\n"), FIELDS)
    msgs = p.messages(instruction="use {{ output }} and {% if x %} and }{", input=None, output="x {y}")
    assert msgs == [{"role": "system", "content": "be careful"},
                    {"role": "user", "content": "Q: use {{ output }} and {% if x %} and }{\n|A: x {y}\nkeep {other}\n"}]
    assert load_prompt(*write(tmp_path, "{{ instruction }}{{ input }}{{ output }}", ""), FIELDS).messages(
        instruction="q", input="", output="") == [{"role": "user", "content": "q"}]


@pytest.mark.parametrize("value, kept", [("some input", True), ("", False), ("  \n", False), (None, False)])
def test_conditional_input_block(tmp_path, value, kept):
    tpl = "I: {{ instruction }}\n{% if input.strip() %}In: {{ input }}\n{% endif %}O: {{ output }}"
    out = load_prompt(*write(tmp_path, tpl), FIELDS).messages(instruction="i", input=value, output="o")[-1]
    assert out["content"] == ("I: i\nIn: some input\nO: o" if kept else "I: i\nO: o")


def test_load_prompt_errors(tmp_path):
    with pytest.raises(ValueError, match="does not use"):
        load_prompt(*write(tmp_path, "only {{ instruction }}"), FIELDS)
    with pytest.raises(ValueError, match="unknown variables \\['extra'\\]"):
        load_prompt(*write(tmp_path, "{{ instruction }}{{ input }}{{ output }}{{ extra }}"), FIELDS)
    with pytest.raises(ValueError, match="line 1"):
        load_prompt(*write(tmp_path, "{{ instruction }} {% if input %}{{ input }} {{ output }}"), FIELDS)
    with pytest.raises(FileNotFoundError):
        load_prompt(tmp_path / "missing.j2", tmp_path / "s.txt", FIELDS)


@pytest.mark.parametrize("cls, markers", [
    (ReflectInstruction, ["[New Instruction]", "[New Answer]", "[End]"]),
    (ReflectResponse, ["[Better Answer]", "[End]"]),
])
def test_shipped_prompts_cover_the_method(cls, markers):
    p = cls.shipped().prompt
    for marker in markers:
        assert marker in p.template
    for aspect in ["Helpfulness", "Relevance", "Accuracy", "Level of Details"]:
        assert aspect in p.template
    if cls is ReflectInstruction:
        for aspect in ["Complexity of the Topic", "Level of Detail Required", "Knowledge Required",
                       "Ambiguity of the Instruction", "Logical Reasoning or Problem-Solving Involved"]:
            assert aspect in p.template
    # the reference's structure: a real system prompt, the critique asked for before the new sample
    assert p.system.strip() and "Critique" in p.template
    assert p.template.index("Critique") < p.template.index(markers[0])
    assert "as detailed as possible" in p.template
