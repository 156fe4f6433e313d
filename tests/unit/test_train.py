"""One fine-tuning run (``train.train``, what both finetune arms run) on the tiny model: with no row
to learn from it still writes every output (the training itself runs in
tests/integration/stages/test_finetune.py)."""

from __future__ import annotations

import json

from shipped import params_config

from reflection_tuning.infra.io import write_jsonl
from reflection_tuning.sft import Config
from reflection_tuning.student import StudentConfig
from reflection_tuning.train import train


def test_no_rows_saves_the_unchanged_student_and_writes_every_output(tiny_model, tmp_path):
    write_jsonl(tmp_path / "rows.jsonl", [])
    out = tmp_path / "sft"
    metrics = train(params_config(Config, "finetune", device="cpu"), StudentConfig(model=str(tiny_model)),
                    tmp_path / "rows.jsonl", out, tmp_path / "m.json", tmp_path / "live")
    assert (metrics["train_rows"], metrics["train_loss"], metrics["rows_in"]) == (0, None, 0)
    assert json.loads((tmp_path / "m.json").read_text()) == metrics
    assert (out / "config.json").is_file() and (out / "tokenizer_config.json").is_file()
    assert json.loads((tmp_path / "live" / "metrics.json").read_text()) == {}
