"""Command ``export``: ``data/K/export/``, a Hub-ready dataset of the selected rows and its card.

``reflection-tuning export --dataset K`` writes

- ``data/train-00000-of-00001.parquet``: the rows of ``selected.jsonl`` (``id``, ``variant``,
  ``instruction``, ``input``, ``output``, ``source``, ``ifd``, ``rifd``), sorted by ``id``;
- ``all_variants/variants-00000-of-00001.parquet`` (``export.all_variants``): every variant of
  every sample with its teacher status and scores, one row per (``id``, ``variant``);
- ``README.md``: the dataset card (:mod:`reflection_tuning.card`): source and license, teacher
  model and template hashes, student, selection method and parameters, counts per branch,
  the git commit and params hash, the citations, the score distributions.

``datasets.load_dataset("parquet", data_dir="data/K/export")`` reads the selected rows back,
and the card's ``configs`` name both files for the Hub. ``reflection-tuning push`` uploads
the folder (:mod:`reflection_tuning.hub`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reflection_tuning.card import card_text
from reflection_tuning.config import ConfigError
from reflection_tuning.errors import UserError
from reflection_tuning.io import read_jsonl
from reflection_tuning.rows import FIELDS, STATUS_OK, VARIANTS
from reflection_tuning.select import Config as SelectConfig
from reflection_tuning.stages import fetch
from reflection_tuning.stages.common import PathSpec, Section, Stage
from reflection_tuning.student import StudentConfig

log = logging.getLogger(__name__)

SELECTED = "data/train-00000-of-00001.parquet"
ALL_VARIANTS = "all_variants/variants-00000-of-00001.parquet"
SELECTED_COLUMNS = ("id", "variant", *FIELDS, "source", "ifd", "rifd")
VARIANT_COLUMNS = ("id", "variant", *FIELDS, "source", "status", "teacher_model",
                   "template_hash", "score_status", "ifd", "rifd")


@dataclass(frozen=True)
class Config:
    """The ``export:`` section. ``license``: the source's license as a Hub license id (cc-by-nc-4.0
    for Alpaca); None writes ``other`` and a line asking to set it. ``token_env``: the NAME of the
    variable holding the Hub token for ``push``, never the token."""

    license: str | None
    pretty_name: str | None
    all_variants: bool
    private: bool  # push: create the Hub repository private
    token_env: str

    def __post_init__(self) -> None:
        if not self.token_env:
            raise ConfigError("export.token_env must name an environment variable")


@dataclass(frozen=True)
class Provenance:
    """What the card records that the rows do not: the run's settings and where it came from."""

    dataset: str
    source: str  # datasets.K.source
    student: str
    select: SelectConfig
    commit: str  # git HEAD of the project ("unknown" outside git)
    params_hash: str  # sha256 of the params, canonical JSON


def git_commit(cwd: Path = Path(".")) -> str:
    """The project's git HEAD, ``-dirty`` when the work tree has changes; ``unknown`` without git."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def params_hash(params: dict[str, Any]) -> str:
    """12 hex chars of SHA-256 of the params as canonical JSON (sorted keys): equal params, equal hash."""
    blob = json.dumps(params, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:12]


def variant_rows(data_dir: Path) -> list[dict[str, Any]]:
    """Every (id, variant) with its text, teacher status and score, sorted by (id, variant order)."""
    scores = {}
    if (data_dir / "scores.jsonl").is_file():
        scores = {(s["id"], s["variant"]): s for s in read_jsonl(data_dir / "scores.jsonl")}
    out = []
    for v in VARIANTS:
        path = data_dir / f"{v}.jsonl"
        for r in read_jsonl(path) if path.is_file() else []:
            s = scores.get((r["id"], v), {})
            ok = s.get("status") == STATUS_OK
            text = {k: r.get(k) for k in (*FIELDS, "source")}
            out.append({"id": r["id"], "variant": v, **text,
                        "status": r.get("status", STATUS_OK), "teacher_model": r.get("teacher_model"),
                        "template_hash": r.get("template_hash"), "score_status": s.get("status"),
                        "ifd": s.get("ifd") if ok else None, "rifd": s.get("rifd") if ok else None})
    out.sort(key=lambda r: (r["id"], VARIANTS.index(r["variant"])))
    return out


def _write_parquet(rows: list[dict[str, Any]], columns: tuple[str, ...], path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    types = {"ifd": pa.float64(), "rifd": pa.float64()}
    schema = pa.schema([(c, types.get(c, pa.string())) for c in columns])
    table = pa.Table.from_pylist([{c: r.get(c) for c in columns} for r in rows], schema=schema)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


def run(cfg: Config, inputs: Inputs, outputs: Outputs, prov: Provenance) -> dict[str, Any]:
    """Write the export folder (replacing an old one atomically); returns its counts.

    Raises:
        UserError: ``selected.jsonl`` is empty.
    """
    selected = sorted(read_jsonl(inputs.selected), key=lambda r: str(r["id"]))
    if not selected:
        raise UserError(f"export: {inputs.selected} has no rows (select kept none); there is nothing to publish")
    variants = variant_rows(inputs.data_dir)
    select_metrics = json.loads(inputs.select_metrics.read_text())
    out = outputs.export_dir
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        _write_parquet(selected, SELECTED_COLUMNS, tmp / SELECTED)
        if cfg.all_variants:
            _write_parquet(variants, VARIANT_COLUMNS, tmp / ALL_VARIANTS)
        text = card_text(cfg, prov, selected, variants, select_metrics,
                         files={"selected": SELECTED, "all_variants": ALL_VARIANTS if cfg.all_variants else None})
        (tmp / "README.md").write_text(text, encoding="utf-8")
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    counts = {"selected_rows": len(selected), "variant_rows": len(variants) if cfg.all_variants else 0}
    log.info("export: wrote %s (%d selected rows, %d variant rows)", out, counts["selected_rows"],
             counts["variant_rows"])
    return counts


STAGE = Stage(
    "export", __doc__,
    # datasets.K.source goes on the card (provenance): read through fetch's section, options --fetch-*
    sections=(Section(Config, "export"), Section(SelectConfig, "select", "select"),
              Section(StudentConfig, "student", "student"), Section(fetch.Config, "datasets.{dataset}", "fetch")),
    # data_dir: the variants and scores beside the selection (export.all_variants)
    inputs={"selected": "data/{dataset}/selected.jsonl", "data_dir": "data/{dataset}",
            "select_metrics": "metrics/{dataset}/select.json"},
    outputs={"export_dir": PathSpec("data/{dataset}/export", flag="output")},
)
Inputs, Outputs = STAGE.io(__name__)


def main(argv: list[str] | None = None) -> int:
    call = STAGE.parse(argv)
    cfg, select, student, dataset = call.configs
    prov = Provenance(dataset=call.dataset, source=dataset.source, student=student.model, select=select,
                      commit=git_commit(), params_hash=params_hash(call.params))
    run(cfg, Inputs(**call.inputs), Outputs(**call.outputs), prov)
    return 0
