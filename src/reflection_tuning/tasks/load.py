"""The lm-eval tasks a run evaluates on: the local tasks of this package with their data files
made absolute, lm-eval's own tasks and groups by name, and the few-shot count of each.

Used by the ``evaluate`` stage (:mod:`reflection_tuning.stages.evaluate`). lm-eval is imported
inside the functions that need it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reflection_tuning.infra.errors import UserError
from reflection_tuning.tasks import TASKS_DIR

log = logging.getLogger(__name__)


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


def leaves(obj: Any) -> list[Any]:
    """The tasks of an lm-eval ``Group`` (itself for a ``Task``)."""
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
        for task in leaves(objects[name]):
            if n is not None and task.get_config("num_fewshot") != 0:
                task.set_config(key="num_fewshot", value=n)
            elif n:
                log.warning("%s: its config fixes 0 shots; num_fewshot=%d is ignored", task.task_name, n)
    return objects
