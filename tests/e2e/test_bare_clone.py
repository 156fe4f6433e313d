"""A fresh clone runs the default pipeline with nothing beside it (issue 22).

``git clone`` of this repository into a folder that holds nothing else (no ``../shared``),
the e2e-sized params of ``conftest.ci_params`` on top of the shipped defaults (the data keys
stay as shipped: ``data/``, NOTICE; the evaluation runs every default task), and ``dvc repro``
with ``HF_HUB_OFFLINE=1``: every stage of ``dvc.yaml`` runs. The teacher and judge replies come
from the request cache the other e2e projects fill (the same rows), when they ran first.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow

DATA_KEYS = (("datasets", "alpaca", "source"), ("select", "eval_prompts_dir"), ("evaluate", "data_dir"),
             ("generate", "prompts_dir"))


def stage_names(dvc_yaml: Path) -> set[str]:
    """Every stage ``dvc.yaml`` declares, a ``foreach`` stage once per ``datasets:`` entry."""
    root = Path(dvc_yaml).parent
    stages = yaml.safe_load(dvc_yaml.read_text())["stages"]
    datasets = yaml.safe_load((root / "params.yaml").read_text())["datasets"]
    return {f"{name}@{key}" if "foreach" in spec else name for name, spec in stages.items()
            for key in (datasets if "foreach" in spec else [None])}


def test_a_bare_clone_runs_every_stage_offline(tmp_path_factory, e2e_env, request_cache, e2e):
    parent = tmp_path_factory.mktemp("bare")
    root = parent / "reflection-tuning"
    e2e.sh(["git", "clone", "-q", str(e2e.repo), str(root)], parent, e2e_env)
    assert sorted(p.name for p in parent.iterdir()) == ["reflection-tuning"]  # no ../shared beside it

    params = yaml.safe_load((root / "params.yaml").read_text())
    defaults = {keys: _get(params, keys) for keys in DATA_KEYS}
    params = e2e.ci_params(params, request_cache)
    params["evaluate"]["tasks"] = yaml.safe_load((root / "params.yaml").read_text())["evaluate"]["tasks"]
    for keys, value in defaults.items():
        assert _get(params, keys) == value, keys
        assert (root / value).exists() and (root / value).resolve().is_relative_to(root.resolve()), (keys, value)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    e2e.sh(["git", *e2e.git_id, "commit", "-qam", "e2e sizes"], root, e2e_env)

    env = {**e2e_env, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    out = e2e.sh(["dvc", "repro"], root, env)
    assert e2e.ran(out) == stage_names(root / "dvc.yaml")

    fetch = json.loads((root / "metrics/alpaca/fetch.json").read_text())
    assert fetch["source_sha256"]  # read from the shipped file, not the hub
    evaluate = json.loads((root / "metrics/alpaca/evaluate.json").read_text())
    assert {k.split(".")[1] for k in evaluate if k.startswith("sft.")} >= set(params["evaluate"]["tasks"])
    assert (root / "reports/alpaca.md").read_text().startswith("# ")
    assert (root / "reports/alpaca.html").stat().st_size > 0


def _get(params: dict, keys: tuple[str, ...]):
    for key in keys:
        params = params[key]
    return params
