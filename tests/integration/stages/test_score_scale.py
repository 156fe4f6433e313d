"""The score stage at scale: 2 CPU processes under torchrun, and resuming a killed run.

Both must give byte-identical outputs to one uninterrupted process, on real Alpaca rows.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from shipped import PARAMS

from reflection_tuning.infra.io import read_jsonl, write_jsonl
from reflection_tuning.score.scorer import HFScorer
from reflection_tuning.stages.score import main

N = 6
OUTS = ("data/alpaca/scores.jsonl", "metrics/alpaca/score_ifd.csv", "metrics/alpaca/score_hist.csv",
        "metrics/alpaca/score_reflected.csv")
# Small batches, so that there are several for the ranks to share and for a kill to land between.
# The shipped params with no resume cache (a test that resumes gives one).
ARGS = ["--dataset", "alpaca", "--params", str(PARAMS), "--device", "cpu", "--batch-tokens", "768",
        "--cache-dir", "null", "--log-level", "WARNING"]


def write_variants(rows: list[dict], root: Path) -> None:
    """The four variants of rows[:N] from real texts: instruction = row N+k, response = (Q, row 2N+k's A),
    both = (row N+k's Q, row 3N+k's A)."""
    def row(orig, variant, src, output):
        return {"id": orig["id"], "variant": variant, "instruction": src["instruction"], "input": src["input"],
                "output": output, "source": orig["source"], "status": "ok"}

    orig = rows[:N]
    d = root / "data" / "alpaca"
    write_jsonl(d / "original.jsonl", orig)
    write_jsonl(d / "instruction.jsonl", [row(o, "instruction", rows[N + k], rows[N + k]["output"])
                                          for k, o in enumerate(orig)])
    write_jsonl(d / "response.jsonl", [row(o, "response", o, rows[2 * N + k]["output"]) for k, o in enumerate(orig)])
    write_jsonl(d / "both.jsonl", [row(o, "both", rows[N + k], rows[3 * N + k]["output"]) for k, o in enumerate(orig)])


def metrics(root: Path) -> dict:
    return json.loads((root / "metrics/alpaca/score.json").read_text())


@pytest.fixture(scope="module")
def single(alpaca_rows, tiny_model, tmp_path_factory) -> Path:
    """One plain process, no cache: the reference output."""
    root = tmp_path_factory.mktemp("single")
    write_variants(alpaca_rows, root)
    cwd = os.getcwd()
    os.chdir(root)
    try:
        assert main([*ARGS, "--model", str(tiny_model)]) == 0
    finally:
        os.chdir(cwd)
    assert metrics(root)["batches"] >= 4
    return root


WORK = ("pairs_scored", "pairs_cached", "batches", "tokens_forward", "tokens_scored", "padding_fraction",
        "oom_splits")


def _close(x, y) -> bool:
    """Equal, or two numbers within 1e-5 (relative): the same pair scored in another batch."""
    if isinstance(x, dict) and isinstance(y, dict):
        return x.keys() == y.keys() and all(_close(x[k], y[k]) for k in x)
    if isinstance(x, list) and isinstance(y, list):
        return len(x) == len(y) and all(_close(u, v) for u, v in zip(x, y))
    if isinstance(x, str) and isinstance(y, str):
        try:
            return _close(float(x), float(y))
        except ValueError:
            return x == y
    if isinstance(x, float) or isinstance(y, float):
        return isinstance(x, (int, float)) and isinstance(y, (int, float)) and math.isclose(x, y, rel_tol=1e-5)
    return x == y


def assert_same_outputs(a: Path, b: Path, same_work: bool = True, exact: bool = True) -> None:
    """The same outputs, byte for byte; or, with ``exact=False``, the same rows and fields with
    numbers within 1e-5: ranks plan their own batches, so a shared prompt prefix is fed once per
    rank's batch, and the float sums come out in another order."""
    for name in OUTS:
        if exact:
            assert (a / name).read_bytes() == (b / name).read_bytes(), name
            continue
        la, lb = (a / name).read_text().splitlines(), (b / name).read_text().splitlines()
        parse = json.loads if name.endswith(".jsonl") else (lambda line: line.split(","))
        assert _close([parse(x) for x in la], [parse(x) for x in lb]), name
    ma, mb = metrics(a), metrics(b)
    for key in ("seconds", "ranks", *(() if same_work else WORK)):
        ma.pop(key), mb.pop(key)
    assert ma == mb if exact else _close(ma, mb)


def test_two_processes_under_torchrun_match_one(single, alpaca_rows, tiny_model, tmp_path):
    write_variants(alpaca_rows, tmp_path)
    src = Path(__file__).resolve().parents[3] / "src"
    env = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "reflection_tuning.cli", "score", *ARGS, "--model", str(tiny_model)]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_same_outputs(single, tmp_path, same_work=False, exact=False)  # see assert_same_outputs
    m = metrics(tmp_path)
    assert m["ranks"] == 2 and m["pairs_scored"] == metrics(single)["pairs_scored"]


def test_a_killed_run_resumes_where_it_stopped(single, alpaca_rows, tiny_model, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_variants(alpaca_rows, tmp_path)
    forward, calls = HFScorer._forward, []

    def dies_on_the_third_batch(self, plans, *shared_prefix):
        if len(calls) == 2:
            raise KeyboardInterrupt("killed")
        calls.append(len(plans))
        return forward(self, plans, *shared_prefix)

    monkeypatch.setattr(HFScorer, "_forward", dies_on_the_third_batch)
    with pytest.raises(KeyboardInterrupt):
        main([*ARGS, "--model", str(tiny_model), "--cache-dir", "cache/score"])
    assert not Path(OUTS[0]).exists()
    (cached,) = Path("cache/score").glob("*/pairs.rank0.jsonl")
    assert len(read_jsonl(cached)) == sum(calls)  # every finished batch was on disk

    monkeypatch.setattr(HFScorer, "_forward", forward)
    assert main([*ARGS, "--model", str(tiny_model), "--cache-dir", "cache/score"]) == 0
    m, full = metrics(tmp_path), metrics(single)
    assert m["pairs_cached"] == sum(calls) and m["pairs_scored"] == full["pairs_scored"] - sum(calls)
    assert_same_outputs(single, tmp_path, same_work=False)

    # a third run computes nothing
    assert main([*ARGS, "--model", str(tiny_model), "--cache-dir", "cache/score"]) == 0
    assert metrics(tmp_path)["pairs_scored"] == 0 and metrics(tmp_path)["batches"] == 0
    assert_same_outputs(single, tmp_path, same_work=False)
