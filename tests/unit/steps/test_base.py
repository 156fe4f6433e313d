"""What every step shares: its prompt files named once, beside its module; its request filled
from the row's columns; a user's own prompt files loaded in their place."""

from __future__ import annotations

import pytest

from reflection_tuning.steps import judge
from reflection_tuning.steps.compress import Compress
from reflection_tuning.steps.prompt import HERE, template_hash
from reflection_tuning.steps.reflect_instruction import ReflectInstruction
from reflection_tuning.steps.reflect_response import ReflectResponse

STEPS = [ReflectInstruction, ReflectResponse, Compress, judge.JudgeStep]


@pytest.mark.parametrize("cls", STEPS, ids=lambda c: c.name)
def test_every_step_names_its_prompt_files_beside_its_module(cls):
    template, system = cls.template_files()
    assert template == HERE / f"{cls.name}.j2" and system == HERE / f"{cls.name}.system.txt"
    step = cls.shipped()
    assert step.template_hash == template_hash(system.read_text(encoding="utf-8"), template.read_text(encoding="utf-8"))


def test_a_users_prompt_files_replace_the_shipped_ones(tmp_path):
    (tmp_path / "t.j2").write_text("Judge: {{ question }} | {{ answer_1 }} | {{ answer_2 }}")
    (tmp_path / "s.txt").write_text("")
    step = judge.JudgeStep.load(tmp_path / "t.j2", tmp_path / "s.txt", max_chars={"explanation": 50})
    assert step.format_input({"question": "Q", "answer_1": "A", "answer_2": None}) == [
        {"role": "user", "content": "Judge: Q | A | "}]
    assert step.schema["properties"]["explanation"]["maxLength"] == 50
