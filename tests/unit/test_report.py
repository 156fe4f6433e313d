"""The Markdown report, from metrics of the real schema; missing stages read "not run"."""

from __future__ import annotations

from reflection_tuning.report import METRICS, PLOTS, plot_file, render

LINKS = {**{n: f"../metrics/alpaca/{n}.json" for n in METRICS},
         **{n: f"../metrics/alpaca/{plot_file(n)}" for n in PLOTS}}
SELECT = {"read": 4, "kept_before_rank": 1, "dropped_by_rank": 0, "kept": 1, "branch_both_kept": 0,
          "branch_response_kept": 1, "branch_unscored": 3, "kept_original": 0, "kept_instruction": 0,
          "kept_response": 1, "kept_both": 0}
SCORE = {"rows": 16, "original_rows": 4, "original_status_ok": 4, "original_ifd_mean": 0.81234567,
         "original_ifd_median": 0.8, "original_rifd_mean": 0.9, "original_rifd_median": 0.91,
         "original_ifd_lt1_share": 0.75, "response_rows": 4, "response_status_ok": 1, "response_ifd_mean": None}
EVALUATE = {"base.rt_arc_challenge.acc": 0.25, "base.rt_arc_challenge.acc_stderr": 0.1,
            "baseline.rt_arc_challenge.acc": 0.375, "baseline.rt_arc_challenge.acc_stderr": 0.2,
            "sft.rt_arc_challenge.acc": 0.5, "sft.rt_arc_challenge.acc_stderr": 0.3,
            "delta.rt_arc_challenge.acc": 0.25, "delta_vs_baseline.rt_arc_challenge.acc": 0.125,
            "docs.rt_arc_challenge": 4}
FINETUNE = {"train_rows": 1, "train_loss": 1.5, "rows_in": 4}
FINETUNE_BASELINE = {"train_rows": 4, "train_loss": 1.25, "rows_in": 4}
JUDGE = {"judge_win": 2, "judge_tie": 1, "judge_lose": 1, "judge_failed": 1, "judge_pairs": 5,
         "judge_winning_score": 1.25, "judge_vicuna_win": 2, "judge_vicuna_tie": 1, "judge_vicuna_lose": 1,
         "judge_vicuna_failed": 0, "judge_vicuna_pairs": 4, "judge_vicuna_winning_score": 1.25,
         "judge_koala_win": 0, "judge_koala_tie": 0, "judge_koala_lose": 0, "judge_koala_failed": 1,
         "judge_koala_pairs": 1, "judge_koala_winning_score": None}


def test_full_report_has_every_section():
    plots = {"evaluate_plot": [["task", "model", "score"], ["rt_arc_challenge", "base", "0.25"],
                               ["rt_arc_challenge", "sft", "0.500000001"]],
             "finetune_loss": [["step", "loss"]],
             "judge_plot": [["label", "count", "set", "outcome"]] + [[f"x{i}", "1", "x", "win"] for i in range(30)]}
    text = render("alpaca", {"select": SELECT, "score": SCORE, "evaluate": EVALUATE, "judge": JUDGE,
                             "fetch": {"read": 3111, "kept": 3100}, "finetune": FINETUNE,
                             "finetune_baseline": FINETUNE_BASELINE, "generate": {"baseline": "baseline_sft"}},
                  plots, LINKS)
    assert text.startswith("# Reflection-tuning report: `alpaca`\n\n## Recycled-SFT vs baseline-SFT\n")
    assert "| response_kept | 1 |" in text and "| unscored | 3 |" in text
    assert "| original | 4 | 4 | 0.8123 | 0.8 | 0.9 | 0.91 | 0.75 |" in text
    assert "| rt_arc_challenge.acc | 0.1 | 0.2 | 0.3 |" in text and "acc_stderr" not in text  # stderrs
    assert "| vicuna | 2 | 1 | 1 | 0 | 1.25 |" in text and "| koala | 0 | 0 | 0 | 1 | – |" in text
    assert "| **all** | 2 | 1 | 1 | 1 | 1.25 |" in text
    assert "| rt_arc_challenge | sft | 0.5 |" in text  # a small plot is tabulated
    assert "judge_plot.csv), 30 rows" in text and "| x29 |" not in text  # a big one is linked
    assert "## Instruction reflection (`reflect_instruction`)\n\n_not run_" in text
    # no empty table
    assert "finetune_dvclive/plots/metrics/loss.tsv), 0 rows; `dvc plots show` draws it.\n\n###" in text


def test_nothing_run_still_renders():
    text = render("wizardlm", {}, {}, {})
    assert "### `finetune_loss`\n\n_not run_" in text
    assert text.count("_not run_") == len(METRICS) + len(PLOTS) + 2  # and the headline's two lines


def test_report_opens_with_the_papers_comparison():
    """base, baseline-SFT and recycled-SFT side by side, then the judge's recycled-vs-baseline result,
    before any stage section."""
    metrics = {"evaluate": EVALUATE, "judge": {**JUDGE, "judge_winning_score_reference": 1.1},
               "finetune": FINETUNE, "finetune_baseline": FINETUNE_BASELINE, "generate": {"baseline": "baseline_sft"}}
    text = render("alpaca", metrics, {}, LINKS)
    head = text[:text.index("## Data read")]
    assert ("| task.metric | base | baseline-SFT | recycled-SFT | recycled − baseline | recycled − base |\n|---|"
            in head)
    assert "| rt_arc_challenge.acc | 0.25 | 0.375 | 0.5 | 0.125 | 0.25 |" in head
    assert "| recycled-SFT | 1 | 1.5 |" in head and "| baseline-SFT | 4 | 1.25 |" in head
    assert "Pairwise judge, recycled-SFT vs baseline-SFT" in head
    assert "| win | tie | lose | failed | pairs | winning score | winning score reference |" in head
    assert "| 2 | 1 | 1 | 1 | 5 | 1.25 | 1.1 |" in head
    # the base student as the judge's baseline (generate.baseline: base) is named as such
    assert "recycled-SFT vs base," in render("alpaca", {**metrics, "generate": {"baseline": "base"}}, {}, LINKS)
    # deltas are derived when an older evaluate.json lacks them
    old = {k: v for k, v in EVALUATE.items() if not k.startswith("delta")}
    assert "| 0.25 | 0.375 | 0.5 | 0.125 | 0.25 |" in render("alpaca", {"evaluate": old}, {}, LINKS)


def test_metrics_keys_are_the_stages_that_write_a_metrics_file():
    """METRICS is keyed by stage name: exactly the stages of STAGES whose declaration writes
    metrics/{dataset}/<stage>.json, in pipeline order (the stage list is written once, in STAGES)."""
    import importlib

    from reflection_tuning.infra.command import STAGES

    assert list(METRICS) == [s for s in STAGES if s in METRICS]
    declared = []
    for name in STAGES:
        stage = getattr(importlib.import_module(f"reflection_tuning.stages.{name}"), "STAGE", None)
        if stage is None:  # a stage not yet declared as a Stage (issue 11, during the conversion)
            assert name not in ("finetune", "finetune_baseline", "evaluate", "generate", "judge", "report")
            continue
        declared.append(name)
        templates = {stage.paths()[k].template for k in stage.outputs}
        assert (f"metrics/{{dataset}}/{name}.json" in templates) == (name in METRICS), name
    assert {"finetune", "finetune_baseline", "evaluate", "generate", "judge", "report"} <= set(declared)


def test_the_compatibility_table_is_shown_whole_under_select():
    from reflection_tuning.compatibility import TABLE_FIELDS

    row = ["models/t", "response", "4", "3", "0.75", "-0.125", "0.0625", "-0.1", "0.05"][:len(TABLE_FIELDS)]
    text = render("alpaca", {"select": SELECT}, {"select_compat": [list(TABLE_FIELDS), row]}, LINKS)
    section = text[text.index("## Selection"):text.index("## Fine-tuning on the selected")]
    assert "### Teacher–student compatibility" in section and "| models/t | response | 4 | 3 | 0.75 |" in section
    assert "### `select_shift`\n\n_not run_" in text  # its plot, among the plots
    assert "Teacher–student compatibility" not in render("alpaca", {}, {}, {})  # no select, no table
