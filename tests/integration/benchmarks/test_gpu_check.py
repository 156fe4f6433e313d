"""``benchmarks/gpu_check.py --dry`` runs every section end to end on CPU, so the GPU check starts
when a GPU is lent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def test_gpu_check_dry_runs_every_section(embedded_model, tmp_path):
    out = tmp_path / "gpu_check.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--dry", "--model", str(embedded_model),
         "--json", str(out), "--out", str(tmp_path / "scratch")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=3600)  # a shared 2-core CI box is slow
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["dry"] and report["device"] == "cpu"
    assert {k: v["status"] for k, v in report["sections"].items()} == {"score": "ok", "sft": "ok", "teacher": "ok"}
    score = report["sections"]["score"]
    assert score["ratio"] > 0 and score["bf16_max_abs_delta_loss"] >= 0 and 0 <= score["bf16_top10pct_ifd_overlap"] <= 1
    assert "ratio: " in proc.stdout and "load average (1 min) before" in proc.stdout
