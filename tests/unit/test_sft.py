"""Pure parts of fine-tuning (sft.py and the finetune stages): presets, the global batch, the LoRA switch."""

from __future__ import annotations

import pytest
from shipped import params_config, shipped_params

from reflection_tuning.infra.config import ConfigError, load_config
from reflection_tuning.infra.errors import UserError
from reflection_tuning.infra.preset import available_presets
from reflection_tuning.sft import Config, gradient_accumulation, lora_config


@pytest.mark.parametrize(
    ("global_batch", "batch", "world", "steps"), [(128, 4, 1, 32), (128, 4, 8, 4), (128, 128, 1, 1)]
)
def test_gradient_accumulation(global_batch, batch, world, steps):
    assert gradient_accumulation(global_batch, batch, world) == steps
    assert batch * steps * world == global_batch


def test_gradient_accumulation_must_divide():
    with pytest.raises(UserError, match="multiple of batch_size x processes = 3 x 2"):
        gradient_accumulation(128, 3, 2)


def test_paper_preset_replaces_params_and_cli_wins(caplog):
    params = shipped_params(finetune={"preset": "paper", "epochs": 1, "batch_size": 8, "max_length": 512})
    cfg = load_config(Config, params, "finetune")
    assert (cfg.epochs, cfg.learning_rate, cfg.global_batch_size, cfg.max_length) == (3, 2.0e-5, 128, 2048)
    assert (cfg.weight_decay, cfg.warmup_ratio, cfg.template, cfg.packing) == (0.0, 0.03, "vicuna", False)
    assert cfg.batch_size == 8  # hardware-dependent: not in the preset
    assert "epochs, global_batch_size, max_length, warmup_ratio" in caplog.text  # the params values it replaced
    assert load_config(Config, params, "finetune", {"epochs": 1}).epochs == 1
    assert load_config(Config, shipped_params(finetune={"epochs": 1}), "finetune", {"preset": "paper"}).epochs == 3
    assert "paper" in available_presets("finetune")


def test_unknown_preset_and_bad_values():
    with pytest.raises(ConfigError, match=r"unknown preset 'papr'; available: \[.*'paper'"):
        load_config(Config, shipped_params(finetune={"preset": "papr"}), "finetune")
    with pytest.raises(ConfigError, match="lora_r"):
        params_config(Config, "finetune", lora_r=-1)
    with pytest.raises(ConfigError, match="global_batch_size"):
        params_config(Config, "finetune", global_batch_size=0)
    with pytest.raises(ConfigError, match="warmup_ratio"):
        params_config(Config, "finetune", warmup_ratio=1.0)
    with pytest.raises(ConfigError, match=r"template is 'vicunna'; expected one of \['alpaca', 'vicuna'"):
        params_config(Config, "finetune", template="vicunna")


def test_params_win_over_the_old_defaults():
    """The dataclass has no defaults: the values are params.yaml's (warmup 0.0, not the papers' 0.03)."""
    assert params_config(Config, "finetune").warmup_ratio == 0.0
    with pytest.raises(ConfigError, match="missing keys"):
        load_config(Config, {"finetune": {"epochs": 1}}, "finetune")


def test_lora_config():
    assert lora_config(params_config(Config, "finetune")) is None
    lc = lora_config(params_config(Config, "finetune", lora_r=8, lora_alpha=16, lora_dropout=0.0,
                                   lora_target_modules=["q_proj", "v_proj"]))
    assert (lc.r, lc.lora_alpha, set(lc.target_modules)) == (8, 16, {"q_proj", "v_proj"})


def _dvc_stage(name: str) -> dict:
    from pathlib import Path

    import yaml

    dvc = yaml.safe_load((Path(__file__).resolve().parents[2] / "dvc.yaml").read_text())
    return dvc["stages"][name]["do"]


def test_baseline_arm_reads_nothing_select_writes():
    """finetune_baseline depends on fetch's rows and the finetune params only (plus the student):
    a new selection never retrains it. It trains with finetune's own code and params section."""
    from reflection_tuning.stages import finetune, finetune_baseline

    stage = _dvc_stage("finetune_baseline")
    assert "data/${key}/original.jsonl" in stage["deps"]
    assert not any("select" in d for d in stage["deps"])
    assert set(stage["params"]) == {"preset", "student", "finetune"}
    assert stage["outs"] == ["models/${key}/baseline-sft"]
    base, recycled = finetune_baseline.STAGE, finetune.STAGE
    assert base.inputs["rows"].template == "data/{dataset}/original.jsonl"
    assert {s.template for s in base.paths().values()}.isdisjoint(s.template for s in recycled.paths().values())
    # the same params sections and options as finetune: the arms differ only by their paths
    assert base.sections == recycled.sections
    assert {k: s.flag for k, s in base.paths().items()} == {k: s.flag for k, s in recycled.paths().items()}


def test_stages_downstream_of_training_read_both_arms_and_the_preset():
    for name in ("evaluate", "generate"):
        stage = _dvc_stage(name)
        assert {"models/${key}/student-sft", "models/${key}/baseline-sft"} <= set(stage["deps"]), name
    for name in ("finetune", "finetune_baseline", "evaluate", "generate", "judge"):
        stage = _dvc_stage(name)
        assert "preset" in stage["params"] and "${pkg}/presets" in stage["deps"], name
    report = _dvc_stage("report")
    assert {"metrics/${key}/finetune_baseline.json",
            "metrics/${key}/finetune_baseline_dvclive/plots/metrics"} <= set(report["deps"])
