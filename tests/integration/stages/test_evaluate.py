"""evaluate: the local lm-eval tasks run on the tiny model, three arms, metrics and plot data
(the tasks themselves: tests/integration/tasks/test_load.py)."""

from __future__ import annotations

import csv
import json

import pytest
from shipped import params_config, shipped_params, write_params

from reflection_tuning.stages.evaluate import Config, Inputs, Outputs, main, run
from reflection_tuning.student import StudentConfig
from reflection_tuning.tasks.load import primary_metric, task_configs

LIMIT = 3
DEFAULT_TASKS = tuple(params_config(Config, "evaluate").tasks)  # the shipped tasks: the four local ones


@pytest.fixture(scope="module")
def result(tmp_path_factory, tiny_model, shared_data):
    out = tmp_path_factory.mktemp("evaluate")
    cfg = params_config(Config, "evaluate", data_dir=str(shared_data / "benchmarks"), limit=LIMIT, batch_size=16,
                        device="cpu")
    outputs = Outputs(metrics=out / "evaluate.json", plot=out / "evaluate_plot.csv")
    # the same weights as base, baseline and sft: the mechanics are under test, and the deltas must be 0
    inputs = Inputs(model_dir=tiny_model, baseline_model=tiny_model)  # base: student.model
    metrics = run(cfg, StudentConfig(model=str(tiny_model)), inputs, outputs)
    return metrics, outputs, cfg


def test_metrics_for_base_baseline_sft_and_deltas(result):
    metrics, outputs, cfg = result
    assert json.loads(outputs.metrics.read_text()) == pytest.approx(metrics)
    configs = {c["task"]: c for c in task_configs(list(DEFAULT_TASKS), cfg.data_dir)}
    expected = {"rt_arc_challenge": ["acc", "acc_norm"], "rt_hellaswag": ["acc", "acc_norm"],
                "rt_mmlu": ["acc"], "rt_truthfulqa_mc2": ["acc"]}
    for task, names in expected.items():
        assert primary_metric(configs[task]) in names
        assert metrics[f"docs.{task}"] == LIMIT
        for metric in names:
            for model in ("base", "baseline", "sft"):
                assert 0.0 <= metrics[f"{model}.{task}.{metric}"] <= 1.0, (model, task, metric)
                assert f"{model}.{task}.{metric}_stderr" in metrics
            assert metrics[f"delta.{task}.{metric}"] == pytest.approx(0.0)
            assert metrics[f"delta_vs_baseline.{task}.{metric}"] == pytest.approx(0.0)  # the headline
    assert not any(k.startswith(("delta.", "delta_vs_baseline.")) and k.endswith("_stderr") for k in metrics)


def test_plot_data(result):
    metrics, outputs, _ = result
    with open(outputs.plot, newline="") as f:
        rows = list(csv.DictReader(f))
    models = ("base", "baseline", "sft")
    assert [(r["task"], r["model"]) for r in rows] == [(t, m) for t in DEFAULT_TASKS for m in models]
    assert metrics["sft.rt_arc_challenge.acc_norm"] == pytest.approx(float(rows[2]["score"]))


def test_cli_one_task(tmp_path, tiny_model, shared_data, monkeypatch):
    write_params(tmp_path / "params.yaml", student={"model": str(tiny_model)},
                 evaluate={"data_dir": str(shared_data / "benchmarks"), "limit": 2, "device": "cpu"})
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models" / "alpaca").mkdir(parents=True)
    for arm in ("student-sft", "baseline-sft"):  # the default paths of finetune and finetune_baseline
        (tmp_path / "models" / "alpaca" / arm).symlink_to(tiny_model, target_is_directory=True)
    assert main(["--dataset=alpaca", "--tasks", "rt_arc_challenge"]) == 0
    m = json.loads((tmp_path / "metrics" / "alpaca" / "evaluate.json").read_text())
    assert m["docs.rt_arc_challenge"] == 2
    assert {k.split(".")[1] for k in m if k.startswith(("base.", "baseline.", "sft."))} == {"rt_arc_challenge"}
    assert (tmp_path / "metrics" / "alpaca" / "evaluate_plot.csv").exists()
    with pytest.raises(SystemExit):
        main(["--tasks", "rt_arc_challenge"])  # no --dataset and no explicit paths


def test_paths_are_required_without_dataset():
    with pytest.raises(SystemExit):
        main(["--tasks", "rt_arc_challenge"])  # no --dataset and no explicit paths


def test_leaderboard_presets(tmp_path):
    from reflection_tuning.infra.config import load_config

    online = load_config(Config, shipped_params(evaluate={"preset": "open_llm_leaderboard", "limit": 10}), "evaluate")
    assert online.tasks == ["arc_challenge", "hellaswag", "mmlu", "truthfulqa_mc2"] and online.limit is None
    assert online.num_fewshot == {"arc_challenge": 25, "hellaswag": 10, "mmlu": 5, "truthfulqa_mc2": 0}
    offline = load_config(Config, shipped_params(evaluate={"preset": "open_llm_leaderboard_offline"}), "evaluate")
    assert offline.tasks == list(DEFAULT_TASKS)
    assert offline.num_fewshot == {"rt_arc_challenge": 25, "rt_hellaswag": 10, "rt_mmlu": 5, "rt_truthfulqa_mc2": 0}


def test_cli_per_task_fewshot(tmp_path, tiny_model, shared_data, monkeypatch):
    write_params(tmp_path / "params.yaml", student={"model": str(tiny_model)},
                 evaluate={"preset": "open_llm_leaderboard_offline", "data_dir": str(shared_data / "benchmarks"),
                           "device": "cpu", "batch_size": 16})
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models" / "alpaca").mkdir(parents=True)
    for arm in ("student-sft", "baseline-sft"):  # the default paths of finetune and finetune_baseline
        (tmp_path / "models" / "alpaca" / arm).symlink_to(tiny_model, target_is_directory=True)
    # the preset's tasks and shots, with a command-line limit and task list on top
    assert main(["--dataset", "alpaca", "--limit", "2", "--tasks", "[rt_arc_challenge, rt_truthfulqa_mc2]",
                 "--num-fewshot", "{rt_arc_challenge: 3}"]) == 0
    m = json.loads((tmp_path / "metrics" / "alpaca" / "evaluate.json").read_text())
    assert m["docs.rt_arc_challenge"] == m["docs.rt_truthfulqa_mc2"] == 2
    assert 0 <= m["sft.rt_truthfulqa_mc2.acc"] <= 1 and m["delta.rt_arc_challenge.acc_norm"] == 0
