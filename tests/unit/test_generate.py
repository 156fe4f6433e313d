"""Evaluation prompt sets (the real files shipped in data/eval_prompts) and the AlpacaEval export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reflection_tuning.generate import PROMPT_SETS, alpaca_eval_records, load_prompts, question
from reflection_tuning.infra.errors import UserError


@pytest.fixture(scope="module")
def prompts_dir():
    return Path(__file__).resolve().parents[2] / "data" / "eval_prompts"


def test_every_set_loads_with_its_own_fields(prompts_dir):
    rows, rejects = load_prompts(prompts_dir, list(PROMPT_SETS), limit=3)
    assert rejects == []
    assert [r["set"] for r in rows] == [s for s in PROMPT_SETS for _ in range(3)]
    by_id = {r["id"]: r for r in rows}
    assert len(by_id) == len(rows)
    assert by_id["vicuna-0000"]["instruction"] == "How can I improve my time management skills?"
    assert by_id["vicuna-0000"]["source_id"] == 1
    assert by_id["koala-0000"]["source_id"] == "koala_0"
    assert by_id["wizardlm-0000"]["source_id"] == 1
    assert by_id["lima-0002"]["source_id"] == 2  # LIMA has no id: the line index
    for r in rows:
        assert r["instruction"].strip() and r["prompt"] == question(r["instruction"], r["input"])
        if r["set"] != "sinstruct":
            assert r["input"] == ""


def test_self_instruct_input_is_its_instance_input(prompts_dir):
    rows, _ = load_prompts(prompts_dir, ["sinstruct"], limit=1)
    with open(prompts_dir / "sinstruct_test_set.jsonl", encoding="utf-8") as f:
        first = json.loads(f.readline())
    assert rows[0]["input"] == first["instances"][0]["input"] != ""
    assert rows[0]["prompt"] == first["instruction"] + "\n\n" + first["instances"][0]["input"]


def test_limit_none_reads_whole_sets(prompts_dir):
    rows, _ = load_prompts(prompts_dir, ["vicuna"], limit=None)
    assert len(rows) == 80


def test_bad_line_is_rejected_with_reason(tmp_path):
    (tmp_path / "koala_test_set.jsonl").write_text('{"id": "k0", "prompt": "hi"}\n{"id": "k1", "prompt": ""}\n'
                                                   '{"id": "k2", "prompt": "there"}\n')
    rows, rejects = load_prompts(tmp_path, ["koala"], limit=None)
    assert [r["source_id"] for r in rows] == ["k0", "k2"]
    assert rejects == [{"set": "koala", "line": 2, "reason": "no text in field 'prompt'"}]


def test_unknown_set_and_missing_dir_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="unknown evaluation set"):
        load_prompts(tmp_path, ["mtbench"], limit=1)
    with pytest.raises(UserError, match="not found"):
        load_prompts(tmp_path, ["vicuna"], limit=1)


def test_alpaca_eval_records_format():
    rows = [{"id": "koala-0001", "set": "koala", "prompt": "b", "answer": "B"},
            {"id": "koala-0000", "set": "koala", "prompt": "a", "answer": "A"}]
    out = alpaca_eval_records(rows, "alpaca-student-sft")
    assert out == [{"instruction": "a", "output": "A", "generator": "alpaca-student-sft", "dataset": "koala"},
                   {"instruction": "b", "output": "B", "generator": "alpaca-student-sft", "dataset": "koala"}]
    json.dumps(out)  # a JSON array of objects, as `alpaca_eval --model_outputs` reads it
