"""compare: the table, plot and recipe from real `dvc exp show --json` output of a small DVC repo."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from reflection_tuning import compare

STAGE = textwrap.dedent('''\
    import json, pathlib, yaml
    p = yaml.safe_load(open("params.yaml"))["select"]
    m = pathlib.Path("metrics/alpaca"); m.mkdir(parents=True, exist_ok=True)
    kept = {"v2": 5, "random": 5, "length": 5}[p["method"]]
    gain = {"v2": 0.02, "random": -0.01, "length": 0.0}[p["method"]]
    (m / "select.json").write_text(json.dumps({"kept": kept}))
    (m / "evaluate.json").write_text(json.dumps({"delta_vs_baseline.rt_arc_challenge.acc_norm": gain,
        "delta_vs_baseline.rt_arc_challenge.acc_norm_stderr": 0.1, "delta.rt_arc_challenge.acc_norm": 0.5}))
    (m / "judge.json").write_text(json.dumps({"judge_win": 3, "judge_tie": 1, "judge_lose": 1}))
''')


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


@pytest.fixture(scope="module")
def exp_json(tmp_path_factory) -> list:
    if shutil.which("dvc") is None:
        pytest.skip("dvc is not on PATH")
    repo = tmp_path_factory.mktemp("exp")
    git(repo, "init", "-q")
    git(repo, "config", "user.email", "t@t")
    git(repo, "config", "user.name", "t")
    subprocess.run(["dvc", "init", "-q"], cwd=repo, check=True)
    (repo / "stage.py").write_text(STAGE)
    (repo / "params.yaml").write_text("select:\n  method: v2\n  budget: null\n")
    (repo / "dvc.yaml").write_text(textwrap.dedent(f'''\
        stages:
          sel:
            cmd: {sys.executable} stage.py
            deps: [stage.py]
            params: [select]
            metrics:
              - metrics/alpaca/select.json: {{cache: false}}
              - metrics/alpaca/evaluate.json: {{cache: false}}
              - metrics/alpaca/judge.json: {{cache: false}}
        '''))
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "init")
    for name, sets in (("sel-random", ["-S", "select.method=random", "-S", "select.budget={match: v2}"]),
                       ("sel-length", ["-S", "select.method=length", "-S", "select.budget=5"])):
        subprocess.run(["dvc", "exp", "run", "-q", "-n", name, *sets], cwd=repo, check=True, capture_output=True)
    return compare.exp_show(repo)


def test_rows_from_real_exp_show(exp_json):
    table = {r["experiment"]: r for r in compare.rows(exp_json, "alpaca")}
    assert {"sel-random", "sel-length"} <= set(table)
    r = table["sel-random"]
    assert (r["method"], r["budget"], r["kept"], r["state"]) == ("random", '{"match": "v2"}', 5, "ok")
    assert r["delta_vs_baseline.rt_arc_challenge.acc_norm"] == pytest.approx(-0.01)
    assert "delta_vs_baseline.rt_arc_challenge.acc_norm_stderr" not in r and "delta.rt_arc_challenge.acc_norm" not in r
    assert (r["judge_win"], r["judge_tie"], r["judge_lose"]) == (3, 1, 1)
    assert table["sel-length"]["budget"] == 5
    assert table["workspace"]["rev"] == "workspace" and len(r["rev"]) == 7  # DVC's names whole, commits short


def test_render_table_plot_and_recipe(exp_json, tmp_path):
    table = compare.run(exp_json, "alpaca", tmp_path / "r.md", tmp_path / "r.vl.json", tmp_path / "r.csv")
    text = (tmp_path / "r.md").read_text()
    assert "| experiment | rev | state | method | budget | diversity | kept | rt_arc_challenge.acc_norm Δ |" in text
    assert sum(line.startswith("| sel-") for line in text.splitlines()) == 2
    assert "dvc exp run --queue -n sel-random -S select.method=random -S 'select.budget={match: v2}'" in text
    spec = json.loads((tmp_path / "r.vl.json").read_text())
    assert spec["mark"]["type"] == "bar" and len(spec["data"]["values"]) == len(compare.plot_rows(table))
    assert (tmp_path / "r.csv").read_text().startswith("experiment,method,metric,delta")


def test_recipe_queues_the_five_methods():
    lines = compare.recipe().splitlines()
    assert [line.split()[5] for line in lines[:5]] == ["sel-v2", "sel-v1", "sel-original", "sel-random", "sel-length"]
    assert "select.budget" not in lines[0] and lines[5].startswith("dvc queue start")


def test_not_exp_show_json():
    with pytest.raises(compare.UserError, match="exp show"):
        compare.rows({"rev": "x"}, "alpaca")
