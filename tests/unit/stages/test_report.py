"""report from metrics files on disk (the real schema, as the stages write them), via the CLI."""

from __future__ import annotations

from shipped import PARAMS

from reflection_tuning.io import write_csv, write_metrics
from reflection_tuning.stages import report
from reflection_tuning.steps import judge as core


def test_report_from_metrics_files(tmp_path):
    metrics = tmp_path / "metrics" / "alpaca"
    write_metrics(metrics / "select.json", {"read": 2, "kept": 1, "branch_response_kept": 1, "branch_unscored": 1})
    rows = [{"set": "vicuna", "outcome": "win"}, {"set": "lima", "outcome": "failed"}]
    judge = core.tally(rows, ["vicuna", "lima"])
    write_metrics(metrics / "judge.json", judge)
    write_csv(metrics / "judge_plot.csv", ("label", "count", "set", "outcome"),
              core.plot_rows(judge, ["vicuna", "lima"]))
    out = tmp_path / "reports" / "alpaca.md"
    assert report.main(["--params", str(PARAMS), "--metrics-dir", str(metrics), "--output", str(out)]) == 0
    assert not (tmp_path / "reports" / "alpaca.html").exists()  # no --dataset, no --html: no data browser
    text = out.read_text()
    assert "# Reflection-tuning report: `alpaca`" in text
    assert "[../metrics/alpaca/judge.json](../metrics/alpaca/judge.json)" in text
    assert "| vicuna | 1 | 0 | 0 | 0 | 2 |" in text and "| lima | 0 | 0 | 0 | 1 | – |" in text
    assert "| vicuna win | 1 | vicuna | win |" in text
    assert "## Benchmarks: base, baseline-SFT, recycled-SFT (`evaluate`)\n\n_not run_" in text
    assert "Pairwise judge, recycled-SFT vs the baseline, from [../metrics/alpaca/judge.json]" in text
