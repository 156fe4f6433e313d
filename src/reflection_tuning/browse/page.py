"""``reports/K.html``: the data browser, one self-contained file that loads nothing from a network.

The page (Jinja2 template ``templates/page.html.j2`` with ``browse.js`` and ``browse.css``)
inlines the vendored libraries (:mod:`reflection_tuning.browse.vendor`), the plot specs
(:mod:`reflection_tuning.browse.plots`) and the sample records
(:mod:`reflection_tuning.browse.samples`). The records are gzip-compressed JSON in base64,
which the browser inflates with its own ``DecompressionStream``: at 3,111 Alpaca rows the
texts shrink about fourfold. DataTables draws one page of rows at a time (``deferRender``),
so the table stays fast at 52k samples.
"""

from __future__ import annotations

import base64
import csv
import gzip
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jinja2

from reflection_tuning.browse import plots, vendor
from reflection_tuning.browse.samples import sample_records
from reflection_tuning.infra.io import read_jsonl, write_text
from reflection_tuning.report import plot_file
from reflection_tuning.rows import VARIANTS

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).with_name("templates")
_ENV = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, keep_trailing_newline=True)


def _script_json(obj: Any) -> str:
    # inside <script>, "</" would end the element; "<\/" is the same JSON string
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/")


def pack(records: Sequence[Mapping[str, Any]]) -> str:
    """The records as base64 of gzip-compressed JSON (``mtime=0``: the same rows give the same bytes)."""
    raw = json.dumps(records, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return base64.b64encode(gzip.compress(raw, compresslevel=9, mtime=0)).decode("ascii")


def render(dataset: str, records: Sequence[Mapping[str, Any]], specs: Mapping[str, dict],
           meta: Mapping[str, Any], title: str = "Reflection-tuning data") -> str:
    """The page's HTML text.

    Args:
        records: :func:`samples.sample_records` output.
        specs: Vega-Lite specs by plot name (:func:`plots.specs`).
        meta: shown in the header (method, counts, …); flat scalars.
    """
    return _ENV.get_template("page.html.j2").render(
        title=title, dataset=dataset, meta=meta, variants=VARIANTS,
        libs=vendor.inline(vendor.LIBS),
        css=(TEMPLATES / "browse.css").read_text(encoding="utf-8"),
        js=(TEMPLATES / "browse.js").read_text(encoding="utf-8"),
        specs=_script_json(specs), data=pack(records), n=len(records),
    )


def _read_csv(path: Path) -> list[dict[str, str]] | None:
    if not path.is_file():
        return None
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t" if path.suffix == ".tsv" else ","))


def build(dataset: str, data_dir: Path, metrics_dir: Path, output: Path, method: str,
          title: str = "Reflection-tuning data") -> dict[str, Any]:
    """Read ``data/K`` and ``metrics/K``, write the page to ``output``; returns its figures.

    A missing file (rows, scores, selection, plot CSV) shows as missing in the page, not as
    an error: the report is written whatever ran.

    Raises:
        ValueError: a JSONL line that is not a JSON object.
    """
    def rows(name: str) -> list[dict[str, Any]]:
        path = data_dir / f"{name}.jsonl"
        if path.is_file():
            return read_jsonl(path)
        log.warning("browse: %s does not exist; the page shows it as missing", path)
        return []

    variants = {v: rows(v) for v in VARIANTS}
    records = sample_records(variants, rows("scores"), rows("selected"), method)
    specs = plots.specs({name: _read_csv(metrics_dir / plot_file(name)) for name in plots.BUILDERS})
    branches: dict[str, int] = {}
    for r in records:
        branches[r["branch"]] = branches.get(r["branch"], 0) + 1
    meta = {"method": method, "samples": len(records), "kept": sum(r["kept"] is not None for r in records),
            **{f"branch {b}": n for b, n in sorted(branches.items())}}
    html = render(dataset, records, specs, meta, title=title)
    write_text(output, html)
    figures = {"samples": len(records), "bytes": len(html.encode("utf-8")), "plots": len(specs)}
    log.info("browse: wrote %s (%d samples, %.1f MB, %d plots)", output, figures["samples"],
             figures["bytes"] / 1e6, figures["plots"])
    return figures
