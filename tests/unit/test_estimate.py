"""``reflection-tuning estimate``: its declared paths and its user error (the counts against a
real server are in tests/stages/test_reflect.py)."""

from __future__ import annotations

import json

import pytest

from reflection_tuning import cli
from reflection_tuning.io import write_jsonl
from shipped import PARAMS


@pytest.mark.parametrize("dataset", [["--dataset=alpaca"], ["--dataset", "alpaca"]])
def test_no_fetched_rows_is_one_line_and_exit_2(dataset, tmp_path, monkeypatch, capfd):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["estimate", *dataset, "--params", str(PARAMS)]) == 2
    err = capfd.readouterr().err
    assert "data/alpaca/original.jsonl not found; run `dvc repro fetch@<dataset>` first" in err
    assert "Traceback" not in err


def test_explicit_input_without_dataset(alpaca_rows, tmp_path, monkeypatch, capsys):
    """No model directory and no tiktoken files offline: the bytes/4 count, every `both` assumed."""
    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "in.jsonl", alpaca_rows[:3])
    prompts = [f"--{role}-{key}-file={PARAMS.parent / 'prompts' / f'reflect_{role}{ext}'}"
               for role in ("instruction", "response") for key, ext in (("prompt", ".txt"), ("system", ".system.txt"))]
    argv = ["estimate", "--params", str(PARAMS), "--input", "in.jsonl", "--output", "e.json", "--cache-dir", "null",
            "--model", "no/such/teacher", *prompts]
    assert cli.main(argv) == 0
    result = json.loads((tmp_path / "e.json").read_text())
    assert result["both_assumed"] and result["reflect_instruction_requests"] == 3
    assert result["reflect_response_requests"] == 6 and result["total_to_send"] == 9
    assert result["total_cost_usd_expected"] is None  # teacher.price is null in params
    assert "total_prompt_tokens" in capsys.readouterr().out
