"""The Vega-Lite specs built with altair from the plot CSV rows."""

from __future__ import annotations

from reflection_tuning.browse import plots


def test_specs_skip_missing_csvs_and_name_the_scatter_dataset():
    specs = plots.specs({"finetune_loss": [{"step": "1", "loss": "2.5"}, {"step": "2", "loss": "bad"}],
                         "judge_plot": None, "evaluate_plot": []})
    assert list(specs) == ["score_ifd", "finetune_loss"]
    assert specs["score_ifd"]["data"] == {"name": plots.SCORES}
    values = specs["finetune_loss"]["data"]["values"]
    assert values == [{"step": 1.0, "loss": 2.5}, {"step": 2.0, "loss": None}]
    assert specs["finetune_loss"]["$schema"].startswith("https://vega.github.io/schema/vega-lite/v6")


def test_every_builder_gives_a_spec():
    rows = {
        "score_hist": [{"measure": "ifd", "variant": "original", "bin": "0.1", "count": "3"}],
        "finetune_loss": [{"step": "1", "loss": "1.0"}],
        "evaluate_plot": [{"task": "arc", "model": "base", "score": "0.25"}],
        "judge_plot": [{"label": "vicuna win", "count": "2", "set": "vicuna", "outcome": "win"}],
    }
    specs = plots.specs(rows)
    assert list(specs) == ["score_ifd", *rows]
    assert "facet" in specs["score_hist"] and specs["judge_plot"]["mark"]["type"] == "bar"
