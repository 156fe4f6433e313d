"""``benchmarks/harness.py``'s ``ensure_model``: the one builder of the embedded student that the
benchmarks share, through the models stage's ``run`` with every path its ``Outputs`` declares."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "benchmarks"))

import harness  # noqa: E402


def test_ensure_model_builds_through_the_models_stage_when_absent(tmp_path, monkeypatch):
    from reflection_tuning.stages import models

    calls = []

    def fake_run(cfg, outputs):
        calls.append((cfg, outputs))
        outputs.model_dir.mkdir(parents=True)
        (outputs.model_dir / "config.json").write_text("{}")
        return {}

    monkeypatch.setattr(models, "run", fake_run)
    path = tmp_path / "models" / "student"
    assert harness.ensure_model(path) == path
    (cfg, outputs), = calls
    assert cfg.gguf.endswith(".gguf")  # params.yaml's models: section
    assert outputs == models.Outputs(model_dir=path, gguf=tmp_path / "models" / "student.gguf",
                                     metrics=tmp_path / "models" / "models_benchmark.json")
    assert harness.ensure_model(path) == path and len(calls) == 1  # built once

