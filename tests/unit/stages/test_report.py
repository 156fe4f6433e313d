"""report from metrics files on disk (the real schema, as the stages write them), via the CLI."""

from __future__ import annotations

from shipped import PARAMS

from reflection_tuning.infra.io import write_csv, write_metrics
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


def test_report_and_page_read_the_dvclive_training_curves(tmp_path):
    """Each arm's loss is DVCLive's loss.tsv in its stage's directory (written here by DVCLive itself)."""
    from reflection_tuning.sft import live_logger

    metrics, data = tmp_path / "metrics" / "alpaca", tmp_path / "data" / "alpaca"
    data.mkdir(parents=True)
    for stage, losses in (("finetune", (2.5, 2.25)), ("finetune_baseline", (3.5, 3.25))):
        live = live_logger(metrics / f"{stage}_dvclive")
        for loss in losses:
            live.log_metric("loss", loss)
            live.next_step()
        live.end()
    out, html = tmp_path / "reports" / "alpaca.md", tmp_path / "reports" / "alpaca.html"
    assert report.main(["--params", str(PARAMS), "--metrics-dir", str(metrics), "--data-dir", str(data),
                        "--output", str(out), "--html", str(html)]) == 0
    text = out.read_text()
    assert "[../metrics/alpaca/finetune_dvclive/plots/metrics/loss.tsv]" in text
    assert "| 0 | 2.5 |" in text and "| 1 | 2.25 |" in text and "| 1 | 3.25 |" in text
    assert "Fine-tuning loss" in html.read_text()  # the page's loss plot, from the same file
