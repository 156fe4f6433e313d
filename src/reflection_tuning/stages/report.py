"""Stage ``report@<dataset>``: a Markdown summary of the run, ``reports/K.md``.

Reads ``metrics/K/<stage>.json`` of every stage and the plot CSVs (the training losses: the
TSVs of the DVCLive directories, :data:`reflection_tuning.report.PLOT_FILES`). The report opens with the
papers' comparison: base, baseline-SFT and recycled-SFT side by side on the benchmarks, and
the judge's recycled-vs-baseline result; then data counts (fetch, the reflection statuses,
each selection branch), the IFD / r-IFD summaries, both fine-tuning runs, the judge's win /
tie / lose per test set, and the plot data as small tables with links (see
:mod:`reflection_tuning.report`). A missing file gives a "not run" line, not an error.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reflection_tuning.browse.page import build as build_page
from reflection_tuning.infra.command import PathSpec, Section, Stage
from reflection_tuning.infra.config import ConfigError
from reflection_tuning.infra.errors import UserError
from reflection_tuning.infra.io import write_text
from reflection_tuning.report import METRICS, PLOTS, TABLES, plot_file, render
from reflection_tuning.select import Config as SelectConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Config:
    """The ``report:`` section."""

    title: str
    precision: int  # significant digits of the numbers in tables
    max_plot_rows: int  # a plot CSV with more rows is linked, not tabulated

    def __post_init__(self) -> None:
        if self.precision < 1 or self.max_plot_rows < 0:
            raise ConfigError("report.precision must be >= 1 and report.max_plot_rows >= 0")


def read_metrics(path: Path) -> dict[str, Any] | None:
    """A metrics JSON object, or None when the file does not exist.

    Raises:
        UserError: the file is not a JSON object (re-run the stage that writes it).
    """
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a JSON object; re-run the stage that writes it")
    return data


def read_csv(path: Path) -> list[list[str]] | None:
    """A CSV's rows (header first; a ``.tsv`` is tab-separated), or None when the file does not exist."""
    if not path.is_file():
        return None
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f, delimiter="\t" if path.suffix == ".tsv" else ","))


def run(cfg: Config, inputs: Inputs, outputs: Outputs, dataset: str, method: str = "v2") -> str:
    """Render and write the report; returns its text.

    Raises:
        UserError: a metrics file that is not a JSON object.
    """
    here = outputs.report.parent.resolve()
    files = {name: inputs.metrics_dir / f"{name}.json" for name in METRICS}
    csvs = (*PLOTS, *TABLES)
    files.update({name: inputs.metrics_dir / plot_file(name) for name in csvs})
    links = {name: Path(os.path.relpath(path.resolve(), here)).as_posix() for name, path in files.items()}
    metrics = {name: read_metrics(files[name]) for name in METRICS}
    plots = {name: read_csv(files[name]) for name in csvs}
    text = render(dataset, metrics, plots, links, title=cfg.title, precision=cfg.precision,
                  max_plot_rows=cfg.max_plot_rows)
    write_text(outputs.report, text)
    if outputs.html is not None and inputs.data_dir is not None:  # method: select.method, for the branches
        build_page(dataset, inputs.data_dir, inputs.metrics_dir, outputs.html, method, title=cfg.title)
    missing = [n for n, m in metrics.items() if m is None]
    log.info("report: wrote %s%s", outputs.report, f" (not run: {', '.join(missing)})" if missing else "")
    return text


STAGE = Stage(
    "report", __doc__,
    # select.method (as --select-method): which selection branches the data browser shows
    sections=(Section(Config, "report"), Section(SelectConfig, "select", "select")),
    inputs={"metrics_dir": "metrics/{dataset}",
            "data_dir": PathSpec("data/{dataset}", optional=True)},  # without --dataset: only if given
    outputs={"report": PathSpec("reports/{dataset}.md", flag="output"),
             "html": PathSpec("reports/{dataset}.html", optional=True)},
    invoke=lambda call: run(call.configs[0], Inputs(**call.inputs), Outputs(**call.outputs),
                            dataset=call.dataset or call.inputs["metrics_dir"].name, method=call.configs[1].method),
)
Inputs, Outputs = STAGE.io(__name__)


def main(argv: list[str] | None = None) -> int:
    return STAGE.main(argv)
