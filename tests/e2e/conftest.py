"""What the end-to-end tests share: a copy of the repository in a fresh git repo with CI-sized
params, and helpers to run commands in it.

Both e2e modules use the same params and one teacher / judge request cache outside their
projects, so the second project to run is served from the cache (the cache key has no URL,
no path: see ``llm/request.py``) and starts no server.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SECRET = "sk-e2e-secret-never-written"
GIT_ID = ["-c", "user.name=ci", "-c", "user.email=ci@localhost"]


OUTPUT_DIRS = ("models/", "metrics/", "reports/")  # pipeline results, never copied


def copy_repo(dst: Path) -> None:
    """The tracked and untracked-but-not-ignored files of this checkout, without pipeline results.

    Under ``data/`` only the files git tracks travel (the shipped default data, see NOTICE): the
    stage outputs there are DVC's, and so is the ``.gitignore`` it writes beside them.
    """
    def listed(*flags: str) -> set[str]:
        out = subprocess.run(["git", "ls-files", *flags, "-z"], cwd=REPO, check=True, capture_output=True,
                             text=True).stdout
        return set(filter(None, out.split("\0")))

    tracked = listed("--cached")
    for rel in sorted(tracked | listed("--others", "--exclude-standard")):
        src = REPO / rel
        if src.is_file() and not rel.startswith(OUTPUT_DIRS) and (rel in tracked or not rel.startswith("data/")):
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / rel)


def sh(cmd: list[str], cwd: Path, env: dict) -> str:
    """Run ``cmd``; fail the test with the output's tail when it fails. Returns stdout + stderr."""
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{' '.join(cmd)} failed ({proc.returncode}):\n{out[-6000:]}"
    return out


def ran(output: str) -> set[str]:
    """The stages ``dvc repro`` / ``dvc exp run`` ran (not those it skipped or restored)."""
    return set(re.findall(r"Running stage '([^']+)'", output))


# Real Alpaca rows per e2e project (issue 12 asks for 8 in the five-method experiment test;
# every e2e project uses the same count so that they share one teacher cache).
ROWS = 8


def ci_params(params: dict, cache: Path) -> dict:
    """CI-sized params: :data:`ROWS` real Alpaca rows, short teacher replies, a few benchmark documents,
    one evaluation prompt from two test sets, and 8-token judge replies. The data stays the shipped
    default (``data/``, NOTICE), so a project needs nothing outside itself."""
    params["datasets"]["alpaca"].update(limit=ROWS, seed=0)
    params["teacher"].update(max_tokens=128, max_concurrency=8, cache_dir=str(cache / "teacher"))
    params["finetune"].update(max_length=256, batch_size=2)
    params["evaluate"].update(limit=4, tasks=["rt_arc_challenge", "rt_truthfulqa_mc2"])
    params["generate"].update(sets=["vicuna", "koala"], limit=1, max_new_tokens=16)
    params["judge"].update(max_tokens=8, cache_dir=str(cache / "judge"))
    return params


@pytest.fixture(scope="session")
def e2e_env() -> dict:
    return dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
                HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", OPENAI_API_KEY=SECRET,
                GIT_AUTHOR_NAME="ci", GIT_AUTHOR_EMAIL="ci@localhost",
                GIT_COMMITTER_NAME="ci", GIT_COMMITTER_EMAIL="ci@localhost")


@pytest.fixture(scope="session")
def request_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("request-cache")


@pytest.fixture(scope="session")
def new_project(tmp_path_factory, e2e_env, request_cache) -> Callable[..., Path]:
    """``new_project(name, setup=[commands])``: a committed copy of the repo with CI params."""

    def make(name: str, setup: list[list[str]] = ()) -> Path:
        root = tmp_path_factory.mktemp(name)
        copy_repo(root)
        params = ci_params(yaml.safe_load((root / "params.yaml").read_text()), request_cache)
        (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        sh(["git", "init", "-q"], root, e2e_env)
        for cmd in setup:
            sh(cmd, root, e2e_env)
        sh(["git", "add", "-A"], root, e2e_env)
        sh(["git", *GIT_ID, "commit", "-qm", "e2e"], root, e2e_env)
        return root

    return make


@pytest.fixture(scope="session")
def e2e():
    """The helpers, for test modules (which cannot import conftest under --import-mode=importlib)."""
    from types import SimpleNamespace

    return SimpleNamespace(sh=sh, ran=ran, secret=SECRET, git_id=GIT_ID, rows=ROWS, ci_params=ci_params, repo=REPO)
