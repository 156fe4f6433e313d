"""Sharing an experiment: `dvc exp push` to a bare git repo and a local DVC remote, then a
fresh clone pulls it back (`dvc exp pull`, `dvc exp branch` + `git checkout`, `dvc pull`)
byte for byte.

The experiment stops at `select@alpaca` (`dvc exp run select@alpaca -S select.method=v1`):
everything upstream of fine-tuning, which is what a collaborator needs to reproduce a data
selection. `dvc exp apply` would also check out the outputs of the stages the experiment
did not run (no hash in its dvc.lock) and fail, so the clone checks the experiment out as a
branch and pulls the stages it ran (`dvc pull select@alpaca --with-deps`). With the e2e
request cache warm (test_pipeline runs first), no server starts.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow

EXP = "share-v1"
SHARED = ["metrics/models.json", *(f"metrics/alpaca/{s}.json" for s in
                                   ("fetch", "reflect_instruction", "reflect_response", "score", "select")),
          "metrics/alpaca/score_ifd.csv", "data/alpaca/selected.jsonl", "data/alpaca/scores.jsonl", "dvc.lock"]


def test_experiment_round_trip_through_remotes(new_project, e2e_env, e2e, tmp_path_factory):
    env = e2e_env
    remotes = tmp_path_factory.mktemp("remotes")
    bare, storage = remotes / "origin.git", remotes / "dvc-storage"
    e2e.sh(["git", "init", "-q", "--bare", str(bare)], remotes, env)
    root = new_project("sharing", setup=[["dvc", "remote", "add", "-d", "storage", str(storage)],
                                         ["git", "remote", "add", "origin", str(bare)]])
    e2e.sh(["git", "push", "-q", "origin", "HEAD:refs/heads/main"], root, env)

    out = e2e.sh(["dvc", "exp", "run", "-n", EXP, "select@alpaca", "-S", "select.method=v1"], root, env)
    assert "select@alpaca" in e2e.ran(out)
    e2e.sh(["dvc", "exp", "push", "origin", EXP], root, env)
    assert any(storage.rglob("*")), "dvc exp push sent no cached outputs to the DVC remote"

    clone = tmp_path_factory.mktemp("clone") / "repo"
    e2e.sh(["git", "clone", "-q", "-b", "main", str(bare), str(clone)], clone.parent, env)
    assert EXP in e2e.sh(["dvc", "exp", "list", "--all-commits", "origin"], clone, env)
    e2e.sh(["dvc", "exp", "pull", "origin", EXP], clone, env)
    e2e.sh(["dvc", "exp", "branch", EXP, EXP], clone, env)
    e2e.sh(["git", "checkout", "-q", EXP], clone, env)
    assert not (clone / "data/alpaca/selected.jsonl").exists()  # only the pointers so far
    e2e.sh(["dvc", "pull", "select@alpaca", "--with-deps"], clone, env)

    for rel in SHARED:
        assert (clone / rel).read_bytes() == (root / rel).read_bytes(), rel
    assert "method: v1" in (clone / "params.yaml").read_text()
    assert (clone / "models/smollm2-135m-instruct/config.json").exists()  # a cached directory out, too
    status = e2e.sh(["dvc", "status", "select@alpaca"], clone, env).lower()
    assert "up to date" in status, status
