"""The teacher request cache travels through a DVC remote: `dvc add` + `dvc push` in one
clone, `dvc pull` in another, and every cached reply is found there (a rerun is free)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from shipped import params_config

from reflection_tuning.llm.cache import Completion, ReplyCache, cache_key
from reflection_tuning.llm.config import EndpointConfig

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def _sh(cwd: Path, *cmd: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "DVC_NO_ANALYTICS": "1"}
    dvc = [sys.executable, "-m", "dvc"] if cmd[0] == "dvc" else [cmd[0]]
    proc = subprocess.run([*dvc, *cmd[1:]], cwd=cwd, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(cmd)}: {proc.stdout}{proc.stderr}"


def test_cache_push_and_pull_through_a_local_remote(tmp_path):
    origin, remote, clone = tmp_path / "origin", tmp_path / "remote", tmp_path / "clone"
    origin.mkdir()
    shutil.copy(REPO / ".gitignore", origin / ".gitignore")  # the project's rules for cache/
    _sh(origin, "git", "init", "-q")
    _sh(origin, "dvc", "init", "-q")
    _sh(origin, "dvc", "remote", "add", "-d", "storage", str(remote))

    cfg = params_config(
        EndpointConfig,
        "teacher",
        model="gpt-4o-mini",
        base_url="https://api.example/v1",
        cache_dir=str(origin / "cache/teacher"),
    )
    batch = [[{"role": "user", "content": f"question {i}"}] for i in range(20)]
    cache = ReplyCache(cfg.cache_dir)
    for i, messages in enumerate(batch):
        cache.set(cache_key(cfg, messages, "t"), Completion(f"answer {i}", "stop", 10, i))
    cache.close()

    _sh(origin, "dvc", "add", "cache/teacher")
    _sh(origin, "git", "add", "-A")
    _sh(origin, "git", "commit", "-qm", "teacher cache")
    _sh(origin, "dvc", "push", "cache/teacher.dvc")
    _sh(tmp_path, "git", "clone", "-q", str(origin), str(clone))
    assert not (clone / "cache/teacher").exists()
    _sh(clone, "dvc", "pull", "cache/teacher.dvc")

    pulled = ReplyCache(clone / "cache/teacher")
    try:
        for i, messages in enumerate(batch):
            hit = pulled.get(cache_key(cfg, messages, "t"))
            assert hit is not None and (hit.content, hit.completion_tokens, hit.cached) == (f"answer {i}", i, True)
    finally:
        pulled.close()
