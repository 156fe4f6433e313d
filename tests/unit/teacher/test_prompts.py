"""Teacher prompt files and their safe filling."""

from __future__ import annotations

from pathlib import Path

import pytest

from reflection_tuning.teacher.prompts import build_messages, load_prompt, render, template_hash

REPO = Path(__file__).resolve().parents[3]
PROMPTS = REPO / "prompts"


def test_template_hash_is_short_stable_and_sensitive():
    h = template_hash("sys", "tpl {instruction}")
    assert len(h) == 12 and int(h, 16) >= 0
    assert h == template_hash("sys", "tpl {instruction}")
    assert h != template_hash("sys2", "tpl {instruction}") != template_hash("sys", "tpl2 {instruction}")
    assert template_hash("ab", "c") != template_hash("a", "bc")


def test_render_is_single_pass_and_brace_safe():
    tpl = "Q: {instruction}\nA: {output}\nkeep {other} and {{x}}"
    out = render(tpl, {"instruction": "use {output} and {input} and {0} and }{", "input": "", "output": "x {y}"})
    assert out == "Q: use {output} and {input} and {0} and }{\nA: x {y}\nkeep {other} and {{x}}"


@pytest.mark.parametrize("value, kept", [("some input", True), ("", False), ("  \n", False), (None, False)])
def test_conditional_input_block(value, kept):
    tpl = "I: {instruction}\n{if input}In: {input}\n{endif}O: {output}"
    out = render(tpl, {"instruction": "i", "input": value, "output": "o"})
    assert out == ("I: i\nIn: some input\nO: o" if kept else "I: i\nO: o")


def test_row_text_cannot_open_a_conditional_block():
    tpl = "{if input}[{input}]{endif}{instruction}"
    assert render(tpl, {"instruction": "{if input}x{endif}", "input": "", "output": ""}) == "{if input}x{endif}"


def test_build_messages_roles_and_empty_system():
    msgs = build_messages("  be careful \n", "{instruction}|{output}", instruction="q", input=None, output="a")
    assert msgs == [{"role": "system", "content": "be careful"}, {"role": "user", "content": "q|a"}]
    assert build_messages("", "{instruction}", instruction="q", input="", output="") == [{"role": "user", "content": "q"}]


@pytest.mark.parametrize("name, markers", [
    ("reflect_instruction", ["[New Instruction]", "[New Answer]", "[End]"]),
    ("reflect_response", ["[Better Answer]", "[End]"]),
])
def test_shipped_prompts_load_and_cover_the_method(name, markers):
    p = load_prompt(PROMPTS / f"{name}.txt", PROMPTS / f"{name}.system.txt")
    assert p.hash == template_hash(p.system, p.template)
    for marker in markers:
        assert marker in p.template
    for aspect in ["Helpfulness", "Relevance", "Accuracy", "Level of Details"]:
        assert aspect in p.template
    if name == "reflect_instruction":
        for aspect in ["Complexity of the Topic", "Level of Detail Required", "Knowledge Required",
                       "Ambiguity of the Instruction", "Logical Reasoning or Problem-Solving Involved"]:
            assert aspect in p.template
    with_input = p.messages("Sort these {numbers}", "3, 1, 2", "1, 2, 3")[-1]["content"]
    without = p.messages("Sort these {numbers}", "", "1, 2, 3")[-1]["content"]
    assert "[The Start of Input]\n3, 1, 2\n[The End of Input]" in with_input
    assert "Input]" not in without and "{if" not in without and "{endif}" not in without
    # the reference's structure: a real system prompt, the critique asked for before the new sample
    assert p.system.strip() and "Critique" in p.template
    assert p.template.index("Critique") < p.template.index(markers[0])
    assert "as detailed as possible" in p.template
    assert "Sort these {numbers}" in without and "{instruction}" not in without


def test_load_prompt_errors(tmp_path):
    (tmp_path / "s.txt").write_text("sys")
    (tmp_path / "a.txt").write_text("only {instruction}")
    with pytest.raises(ValueError, match="lacks placeholders"):
        load_prompt(tmp_path / "a.txt", tmp_path / "s.txt")
    (tmp_path / "b.txt").write_text("{instruction} {if input}{input} {output}")
    with pytest.raises(ValueError, match="unbalanced"):
        load_prompt(tmp_path / "b.txt", tmp_path / "s.txt")
    with pytest.raises(FileNotFoundError):
        load_prompt(tmp_path / "missing.txt", tmp_path / "s.txt")
