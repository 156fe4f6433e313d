"""The Markdown report of one dataset's run, rendered from its metrics and plot files.

The report opens with the papers' comparison (Reflection-Tuning, arXiv 2310.11716, Sec. 4;
Selective Reflection-Tuning, arXiv 2402.10110, Sec. 4): the base, baseline-SFT (trained on
the original rows) and recycled-SFT (trained on the selected rows) students side by side on
the benchmarks, then the judge's recycled-vs-baseline result; every stage's section follows.

Pure: :func:`render` takes the metrics dicts and the plot tables already read, and any of
them may be missing (``None``): a stage that did not run gets a "not run" line, so a report
can be rendered at any point of the pipeline.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from reflection_tuning.rows import VARIANTS

# metrics/K/<stage>.json, with the heading each gets. The keys are exactly the stages of
# reflection_tuning.infra.command.STAGES that write metrics/{dataset}/<stage>.json (their STAGE
# declares it), in STAGES order: tests/unit/test_report.py checks this against STAGES.
METRICS = {
    "fetch": "Data read (`fetch`)",
    "reflect_instruction": "Instruction reflection (`reflect_instruction`)",
    "reflect_response": "Response reflection (`reflect_response`)",
    "score": "Student scores (`score`)",
    "select": "Selection (`select`)",
    "finetune": "Fine-tuning on the selected rows: recycled-SFT (`finetune`)",
    "finetune_baseline": "Fine-tuning on the original rows: baseline-SFT (`finetune_baseline`)",
    "evaluate": "Benchmarks: base, baseline-SFT, recycled-SFT (`evaluate`)",
    "generate": "Answers to the evaluation prompts (`generate`)",
    "judge": "Pairwise judge, recycled-SFT vs baseline (`judge`)",
}
PLOTS = ("score_ifd", "select_shift", "finetune_loss", "finetune_baseline_loss", "evaluate_plot", "judge_plot")
# The file under metrics/K of a plot that is not <name>.csv: the training loss of each arm, in the
# DVCLive directory of its stage (tab-separated: step, loss; DVCLive's step 0 = the first optimizer step).
PLOT_FILES = {"finetune_loss": "finetune_dvclive/plots/metrics/loss.tsv",
              "finetune_baseline_loss": "finetune_baseline_dvclive/plots/metrics/loss.tsv"}


def plot_file(name: str) -> str:
    """The file of plot or table ``name`` under ``metrics/K``: :data:`PLOT_FILES`, else ``<name>.csv``."""
    return PLOT_FILES.get(name, f"{name}.csv")

# metrics/K/<name>.csv shown whole in the section of the stage that writes it: {name: (stage, heading)}
TABLES = {
    "select_compat": ("select", "Teacher–student compatibility: the reflections the student accepted, per teacher "
                                "and candidate, and how its IFD and r-IFD moved (the plot: `select_shift`)"),
}
# evaluate.json prefixes: the three students, and the columns of the benchmark tables
MODELS = {"base": "base", "baseline": "baseline-SFT", "sft": "recycled-SFT"}
# generate.baseline values, as the report names them (anything else is a model directory)
BASELINE_LABELS = {"baseline_sft": "baseline-SFT", "base": "base"}
NA = "–"


def fmt(value: Any, precision: int = 4) -> str:
    """A table cell: ``–`` for None, floats rounded to ``precision`` significant digits."""
    if value is None:
        return NA
    if isinstance(value, float):
        return f"{value:.{precision}g}"
    return str(value).replace("|", "\\|")


def table(header: Sequence[str], rows: Sequence[Sequence[Any]], precision: int = 4) -> str:
    """A GitHub-flavoured Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(c, precision) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def key_values(metrics: Mapping[str, Any], precision: int) -> str:
    return table(("metric", "value"), sorted(metrics.items()), precision)


def select_section(m: Mapping[str, Any], precision: int) -> str:
    """Rows read and kept, then every selection branch and every kept variant with its count."""
    head = table(("read", "kept before rank", "dropped by rank", "kept"),
                 [[m.get("read"), m.get("kept_before_rank"), m.get("dropped_by_rank"), m.get("kept")]], precision)
    branches = sorted((k.removeprefix("branch_"), v) for k, v in m.items() if k.startswith("branch_"))
    kept = [(v, m.get(f"kept_{v}")) for v in VARIANTS if f"kept_{v}" in m]
    return "\n\n".join([head, table(("branch", "rows"), branches, precision), table(("kept variant", "rows"), kept,
                                                                                   precision)])


def score_section(m: Mapping[str, Any], precision: int) -> str:
    """Per variant: rows, ok, mean and median IFD and r-IFD, the share with IFD < 1."""
    cols = ("rows", "status_ok", "ifd_mean", "ifd_median", "rifd_mean", "rifd_median", "ifd_lt1_share")
    rows = [[v, *(m.get(f"{v}_{c}") for c in cols)] for v in VARIANTS if f"{v}_rows" in m]
    return table(("variant", "rows", "ok", "IFD mean", "IFD median", "r-IFD mean", "r-IFD median", "IFD < 1"),
                 rows, precision)


def _minus(a: Any, b: Any) -> float | None:
    return a - b if isinstance(a, (int, float)) and isinstance(b, (int, float)) else None


def _score_keys(m: Mapping[str, Any]) -> list[str]:
    """The ``<task>.<metric>`` names of evaluate.json, stderrs left out."""
    keys = {k.split(".", 1)[1] for k in m if k.split(".", 1)[0] in MODELS and "." in k}
    return sorted(k for k in keys if not k.endswith("_stderr"))


def comparison_table(m: Mapping[str, Any], precision: int) -> str:
    """One row per ``<task>.<metric>``: base, baseline-SFT, recycled-SFT, recycled − baseline
    (the headline delta) and recycled − base."""
    rows = []
    for k in _score_keys(m):
        base, baseline, sft = (m.get(f"{p}.{k}") for p in MODELS)
        rows.append([k, base, baseline, sft, m.get(f"delta_vs_baseline.{k}", _minus(sft, baseline)),
                     m.get(f"delta.{k}", _minus(sft, base))])
    return table(("task.metric", *MODELS.values(), "recycled − baseline", "recycled − base"), rows, precision)


def evaluate_section(m: Mapping[str, Any], precision: int) -> str:
    """The standard errors of every score, and the documents scored per task (the scores
    themselves lead the report, see :func:`headline`)."""
    rows = [[k, *(m.get(f"{p}.{k}_stderr") for p in MODELS)] for k in _score_keys(m)]
    docs = sorted((k.removeprefix("docs."), v) for k, v in m.items() if k.startswith("docs."))
    return "\n\n".join([table(("task.metric", *(f"{v} stderr" for v in MODELS.values())), rows, precision),
                         table(("task", "documents per model"), docs, precision)])


def judge_sets(m: Mapping[str, Any]) -> list[str]:
    """The test sets that have per-set judge keys (``judge_<set>_win``), in key order."""
    return sorted({match.group(1) for k in m if (match := re.fullmatch(r"judge_(.+)_win", k))})


def judge_section(m: Mapping[str, Any], precision: int) -> str:
    """Win / tie / lose / failed and the winning score per set and overall."""
    cols = ("win", "tie", "lose", "failed", "winning_score")
    rows = [[s, *(m.get(f"judge_{s}_{c}") for c in cols)] for s in judge_sets(m)]
    rows.append(["**all**", *(m.get(f"judge_{c}") for c in cols)])
    note = ("Win: the recycled-SFT answer scores higher in both orders, or higher in one and equal in the other; "
            "lose: the mirror image; tie: anything else; failed: a judgement could not be read. "
            "Winning score = (win − lose) / (win + tie + lose) + 1 (> 1: recycled-SFT better than the baseline).")
    return table(("set", "win", "tie", "lose", "failed", "winning score"), rows, precision) + "\n\n" + note


SECTIONS = {"select": select_section, "score": score_section, "evaluate": evaluate_section, "judge": judge_section}


def _number(cell: str) -> Any:
    try:
        return int(cell)
    except ValueError:
        try:
            return float(cell)
        except ValueError:
            return cell


def plot_section(name: str, link: str, rows: list[list[str]] | None, max_rows: int, precision: int = 4) -> str:
    """A plot file as a table when it is small (numbers rounded), otherwise a link and its row count."""
    if rows is None:
        return f"### `{name}`\n\n_not run_ (`{link}` is missing)"
    header, body = (rows[0], rows[1:]) if rows else ([], [])
    text = f"### `{name}`\n\n[{link}]({link}), {len(body)} rows; `dvc plots show` draws it."
    if header and 0 < len(body) <= max_rows:
        text += "\n\n" + table(header, [[_number(c) for c in row] for row in body], precision)
    return text


def table_section(name: str, heading: str, link: str, rows: list[list[str]] | None, precision: int = 4) -> str:
    """A CSV shown whole under its stage's section (numbers rounded), or a "not run" line."""
    if rows is None:
        return f"### {heading}\n\n_not run_ (`{link}` is missing)"
    header, body = (rows[0], rows[1:]) if rows else ([], [])
    return f"### {heading}\n\nFrom [{link}]({link}).\n\n" + table(header, [[_number(c) for c in r] for r in body],
                                                                      precision)


def baseline_label(generate: Mapping[str, Any] | None) -> str:
    """What the judge compared recycled-SFT with: ``baseline-SFT``, ``base`` or a directory."""
    choice = (generate or {}).get("baseline")
    return BASELINE_LABELS.get(choice, f"`{choice}`") if choice else "the baseline"


def headline(metrics: Mapping[str, Mapping[str, Any] | None], links: Mapping[str, str], precision: int) -> str:
    """The papers' comparison: rows trained on per arm, the benchmarks of the three students,
    then the judge's recycled-vs-baseline result."""
    parts = ["## Recycled-SFT vs baseline-SFT",
             "The student fine-tuned on the recycled, selected rows (recycled-SFT, `finetune`) against the "
             "same student fine-tuned on the original rows of the same samples (baseline-SFT, "
             "`finetune_baseline`), as in the papers; the untuned base student beside them."]
    arms = [(name, (metrics.get(stage) or {}).get("train_rows"), (metrics.get(stage) or {}).get("train_loss"))
            for name, stage in (("recycled-SFT", "finetune"), ("baseline-SFT", "finetune_baseline"))]
    parts.append(table(("student", "rows trained on", "train loss (nats/token)"), arms, precision))
    evaluate, judge = metrics.get("evaluate"), metrics.get("judge")
    link = links.get("evaluate", "evaluate.json")
    parts.append(f"Benchmarks, from [{link}]({link}):\n\n{comparison_table(evaluate, precision)}" if evaluate
                 else f"Benchmarks: _not run_ (`{link}` is missing)")
    versus = baseline_label(metrics.get("generate"))
    link = links.get("judge", "judge.json")
    if judge:
        # other ways of counting the winning score (failures excluded, or scored as the reference does)
        cols = ["win", "tie", "lose", "failed", "pairs", "winning_score"]
        cols += sorted(k.removeprefix("judge_") for k in judge if k.startswith("judge_winning_score_"))
        parts.append(f"Pairwise judge, recycled-SFT vs {versus}, from [{link}]({link}) (per test set below):\n\n"
                     + table([c.replace("_", " ") for c in cols], [[judge.get(f"judge_{c}") for c in cols]],
                             precision))
    else:
        parts.append(f"Pairwise judge, recycled-SFT vs {versus}: _not run_ (`{link}` is missing)")
    return "\n\n".join(parts)


def render(dataset: str, metrics: Mapping[str, Mapping[str, Any] | None], plots: Mapping[str, list[list[str]] | None],
           links: Mapping[str, str], *, title: str = "Reflection-tuning report", precision: int = 4,
           max_plot_rows: int = 20) -> str:
    """The whole report as Markdown: the :func:`headline` comparison, then one section per stage.

    Args:
        metrics: ``{stage: metrics dict or None}`` for the stages of :data:`METRICS`.
        plots: ``{plot name: CSV rows (header first) or None}`` for :data:`PLOTS` and :data:`TABLES`.
        links: ``{stage or plot name: relative link}`` to the files they were read from.
    """
    parts = [f"# {title}: `{dataset}`", headline(metrics, links, precision)]
    for name, heading in METRICS.items():
        m = metrics.get(name)
        link = links.get(name, f"{name}.json")
        if m is None:
            parts.append(f"## {heading}\n\n_not run_ (`{link}` is missing)")
            continue
        body = SECTIONS[name](m, precision) if name in SECTIONS else key_values(m, precision)
        parts.append(f"## {heading}\n\nFrom [{link}]({link}).\n\n{body}")
        parts += [table_section(t, what, links.get(t, f"{t}.csv"), plots.get(t), precision)
                  for t, (stage, what) in TABLES.items() if stage == name]
    parts.append("## Plots")
    for name in PLOTS:
        parts.append(plot_section(name, links.get(name, plot_file(name)), plots.get(name), max_plot_rows, precision))
    return "\n\n".join(parts) + "\n"
