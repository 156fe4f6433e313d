"""``reflection-tuning compare --dataset K``: the selection experiments side by side, from DVC.

Reads ``dvc exp show --json`` (DVC's own record of every experiment: its params and
metrics files; nothing is re-derived here) and renders, for dataset ``K``:

- one table, ``reports/K_compare.md``: experiment × selection method × budget × rows kept
  × each lm-eval delta against the baseline arm (``delta_vs_baseline.<task>.<metric>`` of
  ``metrics/K/evaluate.json``) × the judge's win / tie / lose (``metrics/K/judge.json``);
- one plot, ``reports/K_compare.vl.json`` (Vega-Lite, altair): the deltas per experiment;
- the exact queue recipe that runs the five methods at one budget (:func:`recipe`).

A row per experiment that DVC holds data for (the workspace, each baseline commit and
each experiment); a queued or failed experiment without data is listed with its state.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from reflection_tuning.infra.command import Call, Flag, Stage
from reflection_tuning.infra.errors import UserError
from reflection_tuning.infra.io import write_csv

log = logging.getLogger(__name__)

METHODS = ("v2", "v1", "original", "random", "length")  # the five arms of issue 12, in report order
JUDGE = ("judge_win", "judge_tie", "judge_lose")
DELTA = "delta_vs_baseline."


def recipe(dataset: str = "alpaca", budget: str = "{match: v2}") -> str:
    """The shell lines that queue the five methods at one budget, run them, and compare.

    v2 itself runs without a budget (the budget is what it keeps); the others match it.
    """
    lines = []
    for method in METHODS:
        sets = f"-S select.method={method}"
        if method != "v2":
            sets += f" -S 'select.budget={budget}'"
        lines.append(f"dvc exp run --queue -n sel-{method} {sets}")
    lines.append("dvc queue start --jobs 1 && dvc queue status")
    lines.append(f"# when the queue is done:\nreflection-tuning compare --dataset {dataset}")
    return "\n".join(lines)


def _short(rev: Any) -> str:
    """A commit's 7-digit abbreviation; DVC's other revs (``workspace``) whole."""
    rev = str(rev or "")
    return rev[:7] if re.fullmatch(r"[0-9a-f]{40}", rev) else rev


def _states(exp_show: Sequence[Mapping[str, Any]]) -> Iterable[tuple[str, Mapping[str, Any], str | None]]:
    """(name, ExpState, executor state) for each baseline and each experiment tip, in DVC's order."""
    for baseline in exp_show:
        name = baseline.get("name") or _short(baseline.get("rev"))
        yield name, baseline, None
        for exp_range in baseline.get("experiments") or []:
            revs = exp_range.get("revs") or []
            if not revs:
                continue
            tip = revs[0]
            state = (exp_range.get("executor") or {}).get("state")
            yield exp_range.get("name") or tip.get("name") or _short(tip.get("rev")), tip, state


def _file_data(files: Mapping[str, Any] | None, path: str) -> dict[str, Any]:
    entry = (files or {}).get(path) or {}
    return dict(entry.get("data") or {})


def rows(exp_show: Sequence[Mapping[str, Any]], dataset: str) -> list[dict[str, Any]]:
    """One flat row per experiment: ``experiment``, ``rev``, ``state``, ``method``, ``budget``,
    ``diversity``, ``kept``, every ``delta_vs_baseline.*`` key, ``judge_win/tie/lose``.

    Raises:
        UserError: ``exp_show`` is not DVC's ``exp show --json`` list.
    """
    if not isinstance(exp_show, list):
        raise UserError("compare: expected the JSON list that `dvc exp show --json` prints")
    out = []
    for name, state, executor in _states(exp_show):
        data = state.get("data") or {}
        params = _file_data(data.get("params"), "params.yaml")
        select = params.get("select") or {}
        select_m = _file_data(data.get("metrics"), f"metrics/{dataset}/select.json")
        evaluate = _file_data(data.get("metrics"), f"metrics/{dataset}/evaluate.json")
        judge = _file_data(data.get("metrics"), f"metrics/{dataset}/judge.json")
        row: dict[str, Any] = {
            "experiment": name,
            "rev": _short(state.get("rev")),
            "state": executor or ("ok" if data else "no data"),
            "method": select.get("method"),
            "budget": json.dumps(select.get("budget"))
            if isinstance(select.get("budget"), dict)
            else select.get("budget"),
            "diversity": select.get("diversity"),
            "kept": select_m.get("kept"),
        }
        row.update({k: v for k, v in sorted(evaluate.items()) if k.startswith(DELTA) and not k.endswith("_stderr")})
        row.update({k: judge.get(k) for k in JUDGE})
        out.append(row)
    return out


def columns(table: Sequence[Mapping[str, Any]]) -> list[str]:
    """The table's columns: the fixed ones, then every delta key any row has (sorted), then the judge."""
    fixed = ["experiment", "rev", "state", "method", "budget", "diversity", "kept"]
    deltas = sorted({k for r in table for k in r if k.startswith(DELTA)})
    return fixed + deltas + list(JUDGE)


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:+.4f}" if value else "0"
    return str(value).replace("|", "\\|")


def markdown(table: Sequence[Mapping[str, Any]], dataset: str) -> str:
    """The comparison table in Markdown, with the recipe that produced it."""
    cols = columns(table)
    head = [c[len(DELTA):] + " Δ" if c.startswith(DELTA) else c for c in cols]
    lines = [f"# Selection methods compared: {dataset}", "",
             "lm-eval deltas are recycled-SFT minus baseline-SFT (the student fine-tuned on the original rows);",
             "judge counts are recycled-SFT against baseline-SFT. Source: `dvc exp show --json`.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_cell(r.get(c)) for c in cols) + " |" for r in table]
    lines += ["", "Recipe:", "", "```sh", recipe(dataset), "```", ""]
    return "\n".join(lines)


def plot_rows(table: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Long form of the deltas: ``experiment, method, metric, delta`` (rows with a value only)."""
    return [{"experiment": r["experiment"], "method": r.get("method") or "", "metric": k[len(DELTA):], "delta": v}
            for r in table for k, v in r.items() if k.startswith(DELTA) and isinstance(v, (int, float))]


def write_plot(table: Sequence[Mapping[str, Any]], spec_path: Path, csv_path: Path) -> None:
    """One grouped bar chart (altair → Vega-Lite JSON) of the deltas per experiment, and its data as CSV."""
    import altair as alt

    long = plot_rows(table)
    write_csv(csv_path, ["experiment", "method", "metric", "delta"],
              ([r["experiment"], r["method"], r["metric"], repr(r["delta"])] for r in long))
    chart = alt.Chart(alt.Data(values=long)).mark_bar().encode(
        x=alt.X("experiment:N", title=None), xOffset="metric:N",
        y=alt.Y("delta:Q", title="recycled-SFT − baseline-SFT"), color="metric:N",
        tooltip=["experiment:N", "method:N", "metric:N", "delta:Q"],
    ).properties(title="Selection methods: lm-eval delta against the baseline arm")
    spec_path.parent.mkdir(parents=True, exist_ok=True)
    spec_path.write_text(chart.to_json(indent=1) + "\n", encoding="utf-8")


def exp_show(cwd: Path | None = None) -> list[dict[str, Any]]:
    """Run ``dvc exp show --json`` (all experiments of the workspace's commit) and parse it.

    Raises:
        UserError: dvc fails or prints something that is not JSON.
    """
    cmd = ["dvc", "exp", "show", "--json"]
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise UserError(f"compare: `{' '.join(cmd)}` failed: {proc.stderr.strip().splitlines()[-1:]}")
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError as e:
        raise UserError(f"compare: `{' '.join(cmd)}` did not print JSON ({e})") from e


def run(data: list[dict[str, Any]], dataset: str, report: Path, plot: Path, plot_csv: Path) -> list[dict[str, Any]]:
    """Render the table, the plot and its CSV from ``dvc exp show --json`` output; returns the table rows."""
    table = rows(data, dataset)
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(markdown(table, dataset), encoding="utf-8")
    write_plot(table, plot, plot_csv)
    log.info("compare: %d experiments → %s, %s", len(table), report, plot)
    return table


def invoke(call: Call) -> None:
    """The recipe (``--recipe``), or the table and plot of ``--exp-json`` or of ``dvc exp show`` now."""
    args, dataset = call.args, call.dataset or "alpaca"
    if args.recipe:
        print(recipe(dataset))
        return
    data = json.loads(args.exp_json.read_text(encoding="utf-8")) if args.exp_json is not None else exp_show()
    report = args.report or Path("reports") / f"{dataset}_compare.md"
    run(data, dataset, report, report.with_name(f"{dataset}_compare.vl.json"),
        Path("metrics") / dataset / "compare.csv")


# A command outside dvc.yaml, over its experiments: it reads no params section (no --params).
STAGE = Stage(
    "compare", __doc__, sections=(),
    flags=(Flag("--exp-json", type=Path, default=None, reads=True,
                help="a saved `dvc exp show --json` output (default: run it now)"),
           Flag("--report", type=Path, default=None,
                help="the Markdown table of the experiments (default reports/K_compare.md)"),
           Flag("--recipe", action="store_true", help="print the queue recipe and exit")),
    invoke=invoke,
)


def main(argv: list[str] | None = None) -> int:
    return STAGE.main(argv)
