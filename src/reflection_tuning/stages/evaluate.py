"""Stage ``evaluate@<dataset>``: benchmark the recycled-SFT student against the baseline-SFT and the base.

The papers' comparison (Reflection-Tuning, arXiv 2310.11716, Sec. 4; Selective
Reflection-Tuning, arXiv 2402.10110, Sec. 4) is the student fine-tuned on the recycled,
selected data (``finetune``, ``models/K/student-sft``) against the same student fine-tuned
on the original data (``finetune_baseline``, ``models/K/baseline-sft``); the untuned base
student is reported beside them.

Runs lm-evaluation-harness (``lm_eval.simple_evaluate``, model ``hf``) on the three models with
the local tasks of ``reflection_tuning/tasks`` (``rt_arc_challenge``, ``rt_hellaswag``,
``rt_mmlu``, ``rt_truthfulqa_mc2``): the upstream lm-eval prompts and metrics, reading the
benchmark files under ``evaluate.data_dir`` (relative to the working directory), so the
stage needs no network. Any other name is an lm-eval task or group (``arc_challenge``,
``mmlu``, …), whose data lm-eval downloads from the HF hub. Prompts are plain text,
without the chat template, as in the Open LLM Leaderboard the papers report.

``num_fewshot`` is one number for every task or a mapping ``{task: shots}``; the presets
``open_llm_leaderboard`` (hub tasks) and ``open_llm_leaderboard_offline`` (local tasks)
set the Open LLM Leaderboard v1 shots: ARC-Challenge 25, HellaSwag 10, MMLU 5,
TruthfulQA mc2 0.

Outputs: flat metrics ``base.<task>.<metric>``, ``baseline.<task>.<metric>`` (baseline-SFT)
and ``sft.<task>.<metric>`` (recycled-SFT), scores in [0, 1], their standard errors
``…<metric>_stderr``, the headline ``delta_vs_baseline.<task>.<metric>`` (sft - baseline),
``delta.<task>.<metric>`` (sft - base) and ``docs.<task>`` (documents scored per model); and
DVC plot data ``task,model,score`` (model ``base`` | ``baseline`` | ``sft``) with the task's
primary metric (``metadata.primary_metric`` in its YAML).
"""

from __future__ import annotations

import gc
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reflection_tuning.infra.command import PathSpec, Section, Stage
from reflection_tuning.infra.errors import UserError
from reflection_tuning.infra.io import write_csv, write_metrics
from reflection_tuning.student import StudentConfig, resolve_device
from reflection_tuning.tasks.load import available_tasks, fewshot_for, leaves, load_tasks, primary_metric, task_configs

log = logging.getLogger(__name__)

MODELS = ("base", "baseline", "sft")  # metric prefixes, in the order they are evaluated


@dataclass(frozen=True)
class Config:
    """The ``evaluate:`` section (values in params.yaml; README documents each key)."""

    preset: str | None  # a file of presets/evaluate/ whose values replace the params ones
    tasks: list[str]  # local tasks (reflection_tuning/tasks) or lm-eval tasks and groups
    data_dir: str  # the local tasks' benchmark files, relative to the working directory
    # shots for every task, or {task: shots} (a task left out keeps its YAML's, else 0);
    # a task whose YAML fixes 0 (rt_truthfulqa_mc2, truthfulqa_mc2: a fixed primer) keeps 0
    num_fewshot: int | dict[str, int]
    limit: int | None  # documents per task, the first ones; None = all
    batch_size: int
    device: str  # auto | cpu | cuda | cuda:N (student.resolve_device checks it)


# The base student (student.model) is the third model; it is a dep of the stage through its config.
STAGE = Stage(
    "evaluate", __doc__,
    sections=(Section(Config, "evaluate"), Section(StudentConfig, "student")),
    inputs={"model_dir": "models/{dataset}/student-sft",
            "baseline_model": PathSpec("models/{dataset}/baseline-sft", flag="baseline_dir")},
    outputs={"metrics": "metrics/{dataset}/evaluate.json", "plot": "metrics/{dataset}/evaluate_plot.csv"},
    invoke=lambda call: run(*call.configs, Inputs(**call.inputs), Outputs(**call.outputs)),
)
Inputs, Outputs = STAGE.io(__name__)


def flatten_results(results: dict[str, Any]) -> dict[str, float]:
    """``{"<task>.<metric>": value}`` from ``simple_evaluate``'s ``results`` (filter ``none`` only).

    Standard errors keep their lm-eval name (``acc_stderr``); non-numeric values ("N/A") are left out.
    """
    flat = {}
    for task, scores in results.items():
        for key, value in scores.items():
            metric, _, filter_name = key.partition(",")
            if filter_name != "none" or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            flat[f"{task}.{metric}"] = float(value)
    return flat


def evaluate_model(model: Path, cfg: Config, tasks: dict[str, Any]) -> tuple[dict[str, float], dict[str, int]]:
    """Run the tasks (from :func:`load_tasks`) on one model directory.

    Only the named tasks and groups are reported (a group's subtasks are not).

    Returns:
        (``{"<task>.<metric>": score}``, ``{task: documents scored}``).
    Raises:
        UserError: the model directory does not exist, or a bad device.
    """
    import lm_eval
    import torch
    from lm_eval.tasks import TaskManager

    if not Path(model).is_dir():
        raise UserError(f"model directory {model} not found")
    device = resolve_device(cfg.device)
    log.info("evaluating %s on %s (limit %s, shots %s, %s)", model, list(tasks), cfg.limit, cfg.num_fewshot, device)
    out = lm_eval.simple_evaluate(
        model="hf",
        # An absolute path: lm-eval asks the hub about `pretrained` as a repo id, which a
        # path with a leading "/" can never be, so nothing goes to the network.
        model_args={"pretrained": str(Path(model).resolve()), "dtype": "float32" if device == "cpu" else "auto"},
        tasks=list(tasks.values()),
        num_fewshot=None,  # set per task by load_tasks
        limit=cfg.limit,
        batch_size=cfg.batch_size,
        device=device,
        # without one, simple_evaluate indexes lm-eval's built-in tasks (thousands of YAMLs)
        task_manager=TaskManager(include_defaults=False),
        log_samples=False,
        bootstrap_iters=1000,  # every metric here is a mean with a closed-form stderr
    )
    samples = out.get("n-samples") or {}
    docs = {name: sum(int(samples[t.task_name]["effective"]) for t in leaves(obj) if t.task_name in samples)
            for name, obj in tasks.items()}
    results = {**(out.get("groups") or {}), **out["results"]}
    scores = flatten_results({name: results[name] for name in tasks if name in results})
    del out
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return scores, docs


def _hub_primary(scores: dict[str, float], task: str) -> str:
    # the Open LLM Leaderboard v1 reports acc_norm where a task has it (ARC, HellaSwag), else acc
    return "acc_norm" if f"{task}.acc_norm" in scores else "acc"


def run(cfg: Config, student: StudentConfig, inputs: Inputs, outputs: Outputs) -> dict:
    """Evaluate the base (``student.model``), the baseline-SFT and the recycled-SFT student; write the
    metrics and plot data.

    Returns:
        The metrics written.
    Raises:
        UserError: see :func:`task_configs` and :func:`evaluate_model`.
    """
    # `--tasks rt_mmlu` on the command line parses as a string, not a one-item list
    names = [cfg.tasks] if isinstance(cfg.tasks, str) else list(cfg.tasks)
    if not names:
        raise UserError("evaluate.tasks is empty")
    local = [n for n in names if n in set(available_tasks())]
    configs = task_configs(local, cfg.data_dir) if local else []  # hub tasks alone need no data_dir
    tasks = load_tasks(configs, [n for n in names if n not in local], fewshot_for(names, cfg.num_fewshot))
    tasks = {name: tasks[name] for name in names}
    metrics: dict[str, Any] = {}
    scores: dict[str, dict[str, float]] = {}
    for name, model in zip(MODELS, (Path(student.model), inputs.baseline_model, inputs.model_dir), strict=True):
        scores[name], docs = evaluate_model(model, cfg, tasks)
        metrics.update({f"{name}.{k}": v for k, v in scores[name].items()})
        metrics.update({f"docs.{task}": n for task, n in docs.items()})
    # the headline: recycled - baseline (the papers' comparison); and recycled - base
    for prefix, reference in (("delta_vs_baseline", "baseline"), ("delta", "base")):
        for key, value in scores["sft"].items():
            if not key.endswith("_stderr") and key in scores[reference]:
                metrics[f"{prefix}.{key}"] = value - scores[reference][key]
    plot = []
    primary = {c["task"]: primary_metric(c) for c in configs}
    for task in names:
        key = f"{task}.{primary.get(task) or _hub_primary(scores['base'], task)}"
        by_model = {name: scores[name].get(key) for name in MODELS}
        plot += [(task, name, v) for name, v in by_model.items() if v is not None]
        log.info("%s: base %s, baseline-SFT %s, recycled-SFT %s", key, *(by_model[m] for m in MODELS))
    write_metrics(outputs.metrics, metrics)
    write_csv(outputs.plot, ("task", "model", "score"), plot)
    return metrics


def main(argv: list[str] | None = None) -> int:
    return STAGE.main(argv)
