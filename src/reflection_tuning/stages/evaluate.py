"""Stage ``evaluate@<dataset>``: benchmark the fine-tuned student against the base student.

Runs lm-evaluation-harness (``lm_eval.simple_evaluate``, model ``hf``) on both models with
the local tasks of ``reflection_tuning/tasks`` (``rt_arc_challenge``, ``rt_hellaswag``,
``rt_mmlu``, ``rt_truthfulqa_mc2``): the upstream lm-eval prompts and metrics, reading the
benchmark files under ``evaluate.data_dir`` (relative to the working directory), so the
stage needs no network. Prompts are plain text, without the chat template, as in the Open
LLM Leaderboard the papers report.

Outputs: flat metrics ``base.<task>.<metric>``, ``sft.<task>.<metric>`` (scores in [0, 1]),
their standard errors ``…<metric>_stderr``, ``delta.<task>.<metric>`` (sft - base) and
``docs.<task>`` (documents scored per model); and DVC plot data ``task,model,score`` with the
task's primary metric (``metadata.primary_metric`` in its YAML).
"""

from __future__ import annotations

import gc
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reflection_tuning.errors import UserError
from reflection_tuning.io import write_csv, write_metrics
from reflection_tuning.stages.common import Section, parse_stage_args, resolve_paths, stage_parser
from reflection_tuning.student import StudentConfig, resolve_device
from reflection_tuning.tasks import TASKS_DIR

log = logging.getLogger(__name__)

DEFAULT_TASKS = ("rt_arc_challenge", "rt_hellaswag", "rt_mmlu", "rt_truthfulqa_mc2")
MODELS = ("base", "sft")


@dataclass(frozen=True)
class Config:
    tasks: list[str] = field(default_factory=lambda: list(DEFAULT_TASKS))
    data_dir: str = "../shared/data/benchmarks"  # relative to the working directory
    num_fewshot: int = 0  # ignored by tasks that fix it in their YAML (rt_truthfulqa_mc2)
    limit: int | None = 20  # documents per task, the first ones; None = all
    batch_size: int = 8
    device: str = "cpu"  # auto | cpu | cuda | cuda:N


@dataclass(frozen=True)
class Inputs:
    model_dir: Path  # the fine-tuned student
    base_model: Path  # the student before fine-tuning


@dataclass(frozen=True)
class Outputs:
    metrics: Path
    plot: Path


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


def load_tasks(configs: list[dict[str, Any]]) -> list[Any]:
    """lm-eval ``Task`` objects for the config dicts, documents loaded and processed.

    Built once and shared by both models: lm-eval rebuilds a task's requests on every run,
    and reading the files (HellaSwag: 60k lines) is then done once.
    """
    from lm_eval.tasks import TaskManager

    # The configs are complete, so the built-in task index is not needed.
    return list(TaskManager(include_defaults=False).load(configs)["tasks"].values())


def evaluate_model(model: Path, cfg: Config, tasks: list[Any]) -> tuple[dict[str, float], dict[str, int]]:
    """Run the tasks (from :func:`load_tasks`) on one model directory.

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
    log.info("evaluating %s on %s (limit %s, %d-shot, %s)", model, [t.task_name for t in tasks], cfg.limit,
             cfg.num_fewshot, device)
    out = lm_eval.simple_evaluate(
        model="hf",
        # An absolute path: lm-eval asks the hub about `pretrained` as a repo id, which a
        # path with a leading "/" can never be, so nothing goes to the network.
        model_args={"pretrained": str(Path(model).resolve()), "dtype": "float32" if device == "cpu" else "auto"},
        tasks=tasks,
        num_fewshot=cfg.num_fewshot,
        limit=cfg.limit,
        batch_size=cfg.batch_size,
        device=device,
        # without one, simple_evaluate indexes lm-eval's built-in tasks (thousands of YAMLs)
        task_manager=TaskManager(include_defaults=False),
        log_samples=False,
        bootstrap_iters=1000,  # every metric here is a mean with a closed-form stderr
    )
    docs = {task: int(n["effective"]) for task, n in (out.get("n-samples") or {}).items()}
    scores = flatten_results(out["results"])
    del out
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return scores, docs


def run(cfg: Config, student: StudentConfig, inputs: Inputs, outputs: Outputs) -> dict:
    """Evaluate the base and the fine-tuned student; write the metrics and the plot data.

    Returns:
        The metrics written.
    Raises:
        UserError: see :func:`task_configs` and :func:`evaluate_model`.
    """
    # `--tasks rt_mmlu` on the command line parses as a string, not a one-item list
    names = [cfg.tasks] if isinstance(cfg.tasks, str) else list(cfg.tasks)
    if not names:
        raise UserError("evaluate.tasks is empty")
    configs = task_configs(names, cfg.data_dir)
    metrics: dict[str, Any] = {}
    scores: dict[str, dict[str, float]] = {}
    tasks = load_tasks(configs)
    for name, model in zip(MODELS, (inputs.base_model, inputs.model_dir), strict=True):
        scores[name], docs = evaluate_model(model, cfg, tasks)
        metrics.update({f"{name}.{k}": v for k, v in scores[name].items()})
        metrics.update({f"docs.{task}": n for task, n in docs.items()})
    for key, value in scores["sft"].items():
        if not key.endswith("_stderr") and key in scores["base"]:
            metrics[f"delta.{key}"] = value - scores["base"][key]
    plot = []
    for config in configs:
        key = f"{config['task']}.{primary_metric(config)}"
        by_model = {name: scores[name].get(key) for name in MODELS}
        plot += [(config["task"], name, v) for name, v in by_model.items() if v is not None]
        log.info("%s: base %s, sft %s", key, by_model["base"], by_model["sft"])
    write_metrics(outputs.metrics, metrics)
    write_csv(outputs.plot, ("task", "model", "score"), plot)
    return metrics


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser("evaluate", __doc__)
    parser.add_argument("--model-dir", type=Path, default=None, help="fine-tuned model (default models/K/student-sft)")
    parser.add_argument("--metrics", type=Path, default=None, help="metrics JSON (default metrics/K/evaluate.json)")
    parser.add_argument("--plot", type=Path, default=None, help="plot CSV (default metrics/K/evaluate_plot.csv)")
    args, (cfg, student), _ = parse_stage_args(
        parser, [Section(Config, "evaluate"), Section(StudentConfig, "student")], argv
    )
    paths = resolve_paths(parser, args, {
        "model_dir": "models/{dataset}/student-sft",
        "metrics": "metrics/{dataset}/evaluate.json",
        "plot": "metrics/{dataset}/evaluate_plot.csv",
    })
    inputs = Inputs(model_dir=paths["model_dir"], base_model=Path(student.model))
    outputs = Outputs(metrics=paths["metrics"], plot=paths["plot"])
    run(cfg, student, inputs, outputs)
    return 0
