"""The pipeline's plots as Vega-Lite specs, built with altair from the plot CSVs.

Each function takes a CSV's rows as dicts (header keys, string values, as ``csv.DictReader``
gives them) and returns a Vega-Lite spec (a dict). The IFD / r-IFD scatter is not built
from ``score_ifd.csv``: its points are the sample records already in the page, so the spec
names a dataset, ``scores``, that the page fills in (one copy of the data, not two).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import altair as alt

Rows = Sequence[Mapping[str, str]]
SCORES = "scores"  # the named dataset the page supplies: {id, variant, ifd, rifd, kept}
WIDTH = 360


def _num(rows: Rows, *keys: str) -> list[dict[str, Any]]:
    out = []
    for r in rows:
        d: dict[str, Any] = dict(r)
        for k in keys:
            try:
                d[k] = float(r[k])
            except (TypeError, ValueError, KeyError):
                d[k] = None
        out.append(d)
    return out


def scatter() -> dict:
    """IFD (x) against r-IFD (y) of every scored variant (Selective Reflection-Tuning, Sec. 3)."""
    return alt.Chart(alt.NamedData(SCORES)).mark_point(filled=True, opacity=0.5, size=20).encode(
        x=alt.X("ifd:Q", title="IFD"), y=alt.Y("rifd:Q", title="r-IFD"),
        color=alt.Color("variant:N"), tooltip=["id:N", "variant:N", "ifd:Q", "rifd:Q"],
    ).properties(width=WIDTH, height=WIDTH, title="IFD against r-IFD").to_dict()


def histograms(rows: Rows) -> dict:
    """Counts per bin (``score_hist.csv``: measure, variant, bin, count), one panel per measure."""
    data = alt.Data(values=_num(rows, "bin", "count"))
    return alt.Chart(data).mark_line(interpolate="step-after").encode(
        x=alt.X("bin:Q", title="score"), y=alt.Y("count:Q"), color="variant:N",
    ).properties(width=WIDTH * 0.75, height=200).facet(column=alt.Column("measure:N", title=None)).properties(
        title="Score histograms").to_dict()


def loss_curve(rows: Rows) -> dict:
    """The SFT training loss (nats per token) by step (DVCLive's ``loss.tsv`` of ``finetune``)."""
    return alt.Chart(alt.Data(values=_num(rows, "step", "loss"))).mark_line(point=True).encode(
        x=alt.X("step:Q"), y=alt.Y("loss:Q", title="loss (nats/token)"),
    ).properties(width=WIDTH, height=220, title="Fine-tuning loss").to_dict()


def benchmark_bars(rows: Rows) -> dict:
    """Benchmark scores of each model per task (``evaluate_plot.csv``: task, model, score)."""
    return alt.Chart(alt.Data(values=_num(rows, "score"))).mark_bar().encode(
        x=alt.X("task:N", title=None), xOffset="model:N", y=alt.Y("score:Q"), color="model:N",
        tooltip=["task:N", "model:N", "score:Q"],
    ).properties(width=WIDTH, height=220, title="Benchmarks").to_dict()


def judge_bars(rows: Rows) -> dict:
    """The judge's win / tie / lose counts per set (``judge_plot.csv``: label, count, set, outcome)."""
    return alt.Chart(alt.Data(values=_num(rows, "count"))).mark_bar().encode(
        y=alt.Y("label:N", title=None, sort=None), x=alt.X("count:Q"), color="outcome:N",
        tooltip=["set:N", "outcome:N", "count:Q"],
    ).properties(width=WIDTH, title="Judge").to_dict()


# plot name (its file under metrics/K: reflection_tuning.report.plot_file) -> spec builder; the scatter needs none
BUILDERS = {"score_hist": histograms, "finetune_loss": loss_curve, "evaluate_plot": benchmark_bars,
            "judge_plot": judge_bars}


def specs(csvs: Mapping[str, Rows | None]) -> dict[str, dict]:
    """The scatter, then one spec per plot CSV that exists and has rows, in ``BUILDERS`` order."""
    out = {"score_ifd": scatter()}
    for name, build in BUILDERS.items():
        rows = csvs.get(name)
        if rows:
            out[name] = build(rows)
    return out
