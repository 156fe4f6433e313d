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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reflection_tuning.errors import UserError
from reflection_tuning.io import write_csv, write_metrics
from reflection_tuning.stages.common import PathSpec, Section, Stage
from reflection_tuning.student import StudentConfig, resolve_device
from reflection_tuning.tasks import TASKS_DIR

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
)
Inputs, Outputs = STAGE.io(__name__)


def available_tasks() -> list[str]:
    """The names of the local task YAMLs."""
    return sorted(p.stem for p in TASKS_DIR.glob("*.yaml"))


def _load_yaml(path: Path) -> dict[str, Any]:
    # lm-eval's own loader: it resolves `!function utils.x` against the YAML's directory.
    from lm_eval.tasks._yaml_loader import load_yaml

    return load_yaml(path, resolve_func=True)


def _absolute(files: str | list[str], data_dir: Path) -> str | list[str]:
    if isinstance(files, str):
        return str(data_dir / files)
    return [str(data_dir / f) for f in files]


def task_configs(names: list[str], data_dir: str | Path) -> list[dict[str, Any]]:
    """The lm-eval config dicts of the local tasks ``names``, data files made absolute.

    Raises:
        UserError: an unknown task name, or the benchmark directory or a task's files missing.
    """
    from reflection_tuning.tasks.utils import expand_files

    root = Path(data_dir).expanduser().resolve()
    if not root.is_dir():
        raise UserError(f"benchmark directory {root} not found (evaluate.data_dir={str(data_dir)!r})")
    known = available_tasks()
    configs = []
    for name in names:
        if name not in known:
            raise UserError(f"unknown task {name!r}; local tasks: {known}")
        cfg = _load_yaml(TASKS_DIR / f"{name}.yaml")
        kwargs = dict(cfg.get("dataset_kwargs") or {})
        if "data_files" in kwargs:
            kwargs["data_files"] = {s: _absolute(f, root) for s, f in kwargs["data_files"].items()}
            for files in kwargs["data_files"].values():
                try:
                    expand_files(files)  # fail here, naming the file, not deep inside lm-eval
                except FileNotFoundError as e:
                    raise UserError(f"task {name}: {e}") from e
        cfg["dataset_kwargs"] = kwargs
        configs.append(cfg)
    return configs


def primary_metric(config: dict[str, Any]) -> str:
    """The metric a task is plotted by: ``metadata.primary_metric``, else its first metric."""
    meta = config.get("metadata") or {}
    return meta.get("primary_metric") or config["metric_list"][0]["metric"]


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


def fewshot_for(names: list[str], num_fewshot: int | dict[str, int]) -> dict[str, int | None]:
    """Shots per task: ``num_fewshot`` for all, or looked up in the mapping (``None``: the task's own).

    Raises:
        UserError: a mapping names a task that is not in ``names``, or a count is not an int >= 0.
    """
    if not isinstance(num_fewshot, dict):
        num_fewshot = {name: num_fewshot for name in names}
    unknown = sorted(set(num_fewshot) - set(names))
    if unknown:
        raise UserError(f"evaluate.num_fewshot names {unknown}, which are not in evaluate.tasks {names}")
    for name, n in num_fewshot.items():
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise UserError(f"evaluate.num_fewshot for {name}: {n!r} is not a count >= 0")
    return {name: num_fewshot.get(name) for name in names}


def _leaves(obj: Any) -> list[Any]:
    from lm_eval.api.group import Group

    return list(obj.get_all_tasks()) if isinstance(obj, Group) else [obj]


def load_tasks(configs: list[dict[str, Any]], hub_names: Sequence[str] = (),
               shots: dict[str, int | None] | None = None) -> dict[str, Any]:
    """lm-eval ``Task`` / ``Group`` objects by name, documents loaded and few-shot counts set.

    ``configs`` are the local tasks (:func:`task_configs`); ``hub_names`` are lm-eval's own
    tasks or groups, which download their data. Built once and shared by both models:
    lm-eval rebuilds a task's requests on every run, and reading the files (HellaSwag: 60k
    lines) is then done once. ``shots[name]`` goes to every task of a group, except to a
    task whose config fixes 0 shots (as ``simple_evaluate`` does).

    Raises:
        UserError: a name that is neither a local task nor an lm-eval task or group.
    """
    from lm_eval.tasks import TaskManager

    objects: dict[str, Any] = {}
    # The local configs are complete, so the built-in task index is not needed for them.
    if configs:
        objects.update(TaskManager(include_defaults=False).load(configs)["tasks"])
    if hub_names:
        manager = TaskManager()
        unknown = [n for n in hub_names if n not in manager.all_tasks]
        if unknown:
            raise UserError(f"unknown task {unknown}: neither local ({available_tasks()}) nor lm-eval tasks")
        loaded = manager.load(list(hub_names))
        objects.update({n: loaded["groups"].get(n) or loaded["tasks"][n] for n in hub_names})
    for name, n in (shots or {}).items():
        for task in _leaves(objects[name]):
            if n is not None and task.get_config("num_fewshot") != 0:
                task.set_config(key="num_fewshot", value=n)
            elif n:
                log.warning("%s: its config fixes 0 shots; num_fewshot=%d is ignored", task.task_name, n)
    return objects


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
    docs = {name: sum(int(samples[t.task_name]["effective"]) for t in _leaves(obj) if t.task_name in samples)
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
    call = STAGE.parse(argv)
    cfg, student = call.configs
    run(cfg, student, Inputs(**call.inputs), Outputs(**call.outputs))
    return 0
