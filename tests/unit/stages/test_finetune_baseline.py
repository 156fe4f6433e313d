"""Stage ``finetune_baseline``: the baseline arm runs the training of ``finetune`` on the original rows
(the training itself runs in tests/integration/stages/test_finetune.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from shipped import PARAMS, params_config

from reflection_tuning.infra.errors import UserError
from reflection_tuning.infra.io import write_jsonl
from reflection_tuning.stages import finetune, finetune_baseline


@pytest.fixture
def calls(tmp_path, monkeypatch, alpaca_rows):
    """The arguments of the training both arms run (``train.train``), one tuple per call, in a
    project with fetched rows only."""
    monkeypatch.chdir(tmp_path)
    write_jsonl(Path("data/alpaca/original.jsonl"), alpaca_rows[:3])
    seen: list[tuple] = []
    monkeypatch.setattr(finetune, "train", lambda *args: seen.append(args))
    monkeypatch.setattr(finetune_baseline, "train", lambda *args: seen.append(args))
    return seen


def test_the_baseline_trains_on_the_original_rows_with_the_finetune_params(calls):
    assert finetune_baseline.main(["--dataset=alpaca", "--params", str(PARAMS)]) == 0
    (cfg, student, *paths), = calls
    assert cfg == params_config(finetune.Config, "finetune")
    assert student.model == params_config(type(student), "student").model
    assert paths == [Path("data/alpaca/original.jsonl"), Path("models/alpaca/baseline-sft"),
                     Path("metrics/alpaca/finetune_baseline.json"), Path("metrics/alpaca/finetune_baseline_dvclive")]


def test_the_baseline_needs_no_selection_and_the_recycled_arm_does(calls):
    """Nothing select writes is read by the baseline: it runs before select, finetune does not."""
    assert finetune_baseline.main(["--dataset=alpaca", "--params", str(PARAMS), "--epochs", "2"]) == 0
    assert calls[0][0].epochs == 2  # the finetune options, under the baseline's command
    with pytest.raises(UserError, match=r"finetune: missing input data/alpaca/selected.jsonl \(--input\)"):
        finetune.main(["--dataset=alpaca", "--params", str(PARAMS)])
    assert len(calls) == 1
