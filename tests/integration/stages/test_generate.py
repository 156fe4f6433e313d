"""generate on the real evaluation prompts with the config-built tiny model (mechanics, not quality)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from shipped import params_config, write_params

from reflection_tuning.generate import PROMPT_SETS
from reflection_tuning.infra.config import ConfigError
from reflection_tuning.infra.errors import UserError
from reflection_tuning.infra.io import read_jsonl
from reflection_tuning.stages import generate

FIELDS = ["id", "set", "source_id", "instruction", "input", "prompt", "role", "generator", "answer", "finish",
          "new_tokens"]


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_model, shared_data):
    tmp = tmp_path_factory.mktemp("generate")
    write_params(tmp / "params.yaml", student={"model": str(tiny_model)}, finetune={"template": "vicuna"},
                 generate={"prompts_dir": str(shared_data / "eval_prompts"), "limit": 2, "max_new_tokens": 8,
                           "batch_size": 4, "device": "cpu", "baseline": "base"})
    # the template on the command line (as dvc.yaml passes finetune.template) wins over the params file's
    assert generate.main(["--params", str(tmp / "params.yaml"), "--model-dir", str(tiny_model),
                          "--output", str(tmp / "answers.jsonl"), "--alpaca-eval-dir", str(tmp / "alpaca_eval"),
                          "--metrics", str(tmp / "generate.json"), "--dataset", "alpaca",
                          "--train-template", "alpaca"]) == 0
    return tmp


def test_one_answer_per_prompt_and_role_sorted_by_id(run, tiny_model):
    rows = read_jsonl(run / "answers.jsonl")
    assert len(rows) == 2 * 2 * len(PROMPT_SETS)
    assert [(r["id"], r["role"]) for r in rows] == sorted((r["id"], r["role"]) for r in rows)
    for r in rows:
        assert list(r) == FIELDS
        assert r["role"] in ("sft", "baseline") and r["finish"] in ("stop", "length")
        assert 1 <= r["new_tokens"] <= 8 and (r["finish"] == "stop" or r["new_tokens"] == 8)
    assert {r["generator"] for r in rows if r["role"] == "sft"} == {"alpaca-student-sft"}
    assert {r["generator"] for r in rows if r["role"] == "baseline"} == {tiny_model.name}  # baseline: base


def test_greedy_is_deterministic_and_template_comes_from_finetune(run, tiny_model):
    rows = read_jsonl(run / "answers.jsonl")
    sft = {r["id"]: r["answer"] for r in rows if r["role"] == "sft"}
    base = {r["id"]: r["answer"] for r in rows if r["role"] == "baseline"}
    assert sft == base  # the same model twice, greedy: the same answers
    assert generate.train_template("alpaca", {"finetune": {"template": "vicuna"}}) == "alpaca"
    assert generate.train_template(None, {"finetune": {"template": "wizardlm"}}) == "wizardlm"
    with pytest.raises(UserError, match="--train-template"):
        generate.train_template(None, {})
    with pytest.raises(UserError, match="unknown template"):
        generate.train_template(None, {"finetune": {"template": "vicunna"}})


def test_alpaca_eval_files(run):
    model = json.loads((run / "alpaca_eval/model_outputs.json").read_text())
    reference = json.loads((run / "alpaca_eval/reference_outputs.json").read_text())
    assert len(model) == len(reference) == 2 * len(PROMPT_SETS)
    for m, r in zip(model, reference):
        assert set(m) == set(r) == {"instruction", "output", "generator", "dataset"}
        assert m["instruction"] == r["instruction"] and m["dataset"] == r["dataset"]
    assert {m["generator"] for m in model} == {"alpaca-student-sft"}
    assert len({m["instruction"] for m in model}) == len(model)  # AlpacaEval joins on it


def test_metrics_count_every_answer(run):
    m = json.loads((run / "generate.json").read_text())
    assert m["prompts"] == 2 * len(PROMPT_SETS) and m["rejected"] == 0
    assert all(m[f"prompts_{s}"] == 2 for s in PROMPT_SETS)
    assert m["baseline"] == "base"
    for role in ("sft", "baseline"):
        assert m[f"{role}_stop"] + m[f"{role}_length"] == m["prompts"]


def test_baseline_choices(tmp_path):
    """generate.baseline: the baseline-SFT arm by default (the papers), the base student, or a directory."""
    assert params_config(generate.Config, "generate").baseline == generate.BASELINE_SFT
    inputs = generate.Inputs(sft_model=Path("s"), baseline_sft=tmp_path)
    assert generate.baseline_model("baseline_sft", inputs, Path("models/base")) == tmp_path
    assert generate.baseline_model("base", inputs, Path("models/base")) == Path("models/base")
    assert generate.baseline_model("/x/other", inputs, Path("models/base")) == Path("/x/other")
    for missing in (None, tmp_path / "nowhere"):  # no --dataset and no --baseline-dir; finetune_baseline not run
        with pytest.raises(UserError, match="--baseline-dir"):
            generate.baseline_model("baseline_sft", generate.Inputs(Path("s"), missing), Path("models/base"))
    with pytest.raises(ConfigError, match="generate.baseline"):
        params_config(generate.Config, "generate", baseline="")
    assert generate.generator_names("alpaca", Path("models/alpaca/baseline-sft")) == {
        "sft": "alpaca-student-sft", "baseline": "alpaca-baseline-sft"}


def test_default_baseline_is_the_baseline_sft_arm(tmp_path, tiny_model, shared_data, monkeypatch):
    """With no generate.baseline, the answers compared with recycled-SFT are baseline-SFT's
    (models/K/baseline-sft, written by finetune_baseline)."""
    write_params(tmp_path / "params.yaml", student={"model": str(tmp_path / "no-such-base")},
                 generate={"prompts_dir": str(shared_data / "eval_prompts"), "sets": ["vicuna"], "limit": 1,
                           "max_new_tokens": 2, "device": "cpu"})
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models" / "alpaca").mkdir(parents=True)
    for arm in ("student-sft", "baseline-sft"):
        (tmp_path / "models" / "alpaca" / arm).symlink_to(tiny_model, target_is_directory=True)
    assert generate.main(["--dataset=alpaca"]) == 0  # the template: finetune.template of the params file
    rows = read_jsonl(tmp_path / "data" / "alpaca" / "answers.jsonl")
    assert [(r["role"], r["generator"]) for r in rows] == [("baseline", "alpaca-baseline-sft"),
                                                           ("sft", "alpaca-student-sft")]
    assert json.loads((tmp_path / "metrics" / "alpaca" / "generate.json").read_text())["baseline"] == "baseline_sft"
