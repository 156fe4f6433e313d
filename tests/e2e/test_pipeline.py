"""End to end: `dvc repro` carries real Alpaca rows through every stage, offline.

The repository is copied into a fresh git repo with CI-sized params (4 real rows, short
teacher replies, a few benchmark documents), so this runs the real pipeline: the embedded
model, a real `transformers serve` teacher, the student scorer, TRL SFT and lm-eval.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml


pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
STAGES = ["fetch", "reflect_instruction", "reflect_response", "score", "select", "finetune", "evaluate"]


def _copy_repo(dst: Path) -> None:
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO, check=True, capture_output=True, text=True,
    ).stdout.split("\0")
    for rel in filter(None, files):
        src = REPO / rel
        if src.is_file() and not rel.startswith(("data/", "models/", "metrics/")):
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / rel)


def _sh(cmd: list[str], cwd: Path, env: dict) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{' '.join(cmd)} failed ({proc.returncode}):\n{out[-6000:]}"
    return out


def _ran(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


@pytest.fixture(scope="module")
def project(tmp_path_factory, shared_data) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("project")
    _copy_repo(root)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["datasets"] = {"alpaca": {"source": str(shared_data / "alpaca" / "cherry_alpaca_5_percent.json"), "format": "alpaca", "limit": 4, "seed": 0}}
    params["teacher"]["max_tokens"] = 128
    params["teacher"]["max_concurrency"] = 8
    params["select"]["eval_prompts_dir"] = str(shared_data / "eval_prompts")
    params["finetune"].update(max_length=256, batch_size=2)
    params["evaluate"].update(data_dir=str(shared_data / "benchmarks"), limit=4, tasks=["rt_arc_challenge", "rt_truthfulqa_mc2"])
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
               HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", OPENAI_API_KEY="sk-e2e-secret-never-written")
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"],
                ["git", "-c", "user.name=ci", "-c", "user.email=ci@localhost", "commit", "-qm", "e2e"]):
        _sh(cmd, root, env)
    return root, env


def test_repro_runs_every_stage_on_real_rows(project):
    root, env = project
    out = _sh(["dvc", "repro"], root, env)
    assert _ran(out) == {"models"} | {f"{s}@alpaca" for s in STAGES}

    original = [json.loads(line) for line in (root / "data/alpaca/original.jsonl").read_text().splitlines()]
    assert len(original) == 4
    for variant in ("instruction", "response", "both"):
        rows = (root / f"data/alpaca/{variant}.jsonl").read_text().splitlines()
        assert len(rows) == 4, f"{variant}: counts in must equal counts out"
    scores = (root / "data/alpaca/scores.jsonl").read_text().splitlines()
    assert len(scores) == 16  # 4 samples x 4 variants, failures included with their status

    shown = json.loads(_sh(["dvc", "metrics", "show", "--json"], root, env))
    files = {Path(f).name for rev in shown.values() for f in rev["data"]}
    assert {f"{s}.json" for s in STAGES} | {"models.json"} <= files
    assert "sk-e2e-secret-never-written" not in (root / "dvc.lock").read_text()


def test_changing_select_method_reruns_only_downstream(project):
    root, env = project
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["select"]["method"] = "v1"
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = _sh(["dvc", "repro"], root, env)
    assert _ran(out) == {"select@alpaca", "finetune@alpaca", "evaluate@alpaca"}
    assert "up to date" in _sh(["dvc", "status"], root, env).lower()
