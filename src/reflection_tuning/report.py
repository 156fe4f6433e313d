"""The Markdown report of one dataset's run, rendered from its metrics and plot files.

Pure: :func:`render` takes the metrics dicts and the plot tables already read, and any of
them may be missing (``None``): a stage that did not run gets a "not run" line, so a report
can be rendered at any point of the pipeline.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from reflection_tuning.rows import VARIANTS

# metrics/K/<name>.json, in pipeline order, with the heading each gets
METRICS = {
    "fetch": "Data read (`fetch`)",
    "reflect_instruction": "Instruction reflection (`reflect_instruction`)",
    "reflect_response": "Response reflection (`reflect_response`)",
    "score": "Student scores (`score`)",
    "select": "Selection (`select`)",
    "finetune": "Fine-tuning (`finetune`)",
    "evaluate": "Benchmarks, base vs SFT (`evaluate`)",
    "generate": "Answers to the evaluation prompts (`generate`)",
    "judge": "Pairwise judge, SFT vs baseline (`judge`)",
}
PLOTS = ("score_ifd", "finetune_loss", "evaluate_plot", "judge_plot")
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


def evaluate_section(m: Mapping[str, Any], precision: int) -> str:
    """One row per ``<task>.<metric>``: base, SFT and their difference (stderrs left out)."""
    keys = sorted({k.split(".", 1)[1] for k in m if k.startswith(("base.", "sft."))} - {""})
    keys = [k for k in keys if not k.endswith("_stderr")]
    rows = []
    for k in keys:
        base, sft = m.get(f"base.{k}"), m.get(f"sft.{k}")
        delta = m.get(f"delta.{k}", sft - base if isinstance(base, (int, float)) and isinstance(sft, (int, float))
                      else None)
        rows.append([k, base, sft, delta])
    return table(("task.metric", "base", "SFT", "SFT − base"), rows, precision)


def judge_sets(m: Mapping[str, Any]) -> list[str]:
    """The test sets that have per-set judge keys (``judge_<set>_win``), in key order."""
    return sorted({match.group(1) for k in m if (match := re.fullmatch(r"judge_(.+)_win", k))})


def judge_section(m: Mapping[str, Any], precision: int) -> str:
    """Win / tie / lose / failed and the winning score per set and overall."""
    cols = ("win", "tie", "lose", "failed", "winning_score")
    rows = [[s, *(m.get(f"judge_{s}_{c}") for c in cols)] for s in judge_sets(m)]
    rows.append(["**all**", *(m.get(f"judge_{c}") for c in cols)])
    note = ("Win: the SFT answer scores higher in both orders, or higher in one and equal in the other; "
            "lose: the mirror image; tie: anything else; failed: a judgement could not be read. "
            "Winning score = (win − lose) / (win + tie + lose) + 1 (> 1: SFT better than the baseline).")
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


def render(dataset: str, metrics: Mapping[str, Mapping[str, Any] | None], plots: Mapping[str, list[list[str]] | None],
           links: Mapping[str, str], *, title: str = "Reflection-tuning report", precision: int = 4,
           max_plot_rows: int = 20) -> str:
    """The whole report as Markdown.

    Args:
        metrics: ``{stage: metrics dict or None}`` for the stages of :data:`METRICS`.
        plots: ``{plot name: CSV rows (header first) or None}`` for :data:`PLOTS`.
        links: ``{stage or plot name: relative link}`` to the files they were read from.
    """
    parts = [f"# {title}: `{dataset}`"]
    for name, heading in METRICS.items():
        m = metrics.get(name)
        link = links.get(name, f"{name}.json")
        if m is None:
            parts.append(f"## {heading}\n\n_not run_ (`{link}` is missing)")
            continue
        body = SECTIONS[name](m, precision) if name in SECTIONS else key_values(m, precision)
        parts.append(f"## {heading}\n\nFrom [{link}]({link}).\n\n{body}")
    parts.append("## Plots")
    for name in PLOTS:
        parts.append(plot_section(name, links.get(name, f"{name}.csv"), plots.get(name), max_plot_rows, precision))
    return "\n\n".join(parts) + "\n"
