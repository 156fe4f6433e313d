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

import json
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

from reflection_tuning.card import card_text
from reflection_tuning.export import (
    ALL_VARIANTS,
    SELECTED,
    SELECTED_COLUMNS,
    VARIANT_COLUMNS,
    Config,
    Provenance,
    git_commit,
    params_hash,
    variant_rows,
    write_parquet,
)
from reflection_tuning.infra.command import Call, PathSpec, Section, Stage
from reflection_tuning.infra.errors import UserError
from reflection_tuning.infra.io import read_jsonl
from reflection_tuning.readers import Config as DatasetConfig
from reflection_tuning.select import Config as SelectConfig
from reflection_tuning.student import StudentConfig

log = logging.getLogger(__name__)


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
        write_parquet(selected, SELECTED_COLUMNS, tmp / SELECTED)
        if cfg.all_variants:
            write_parquet(variants, VARIANT_COLUMNS, tmp / ALL_VARIANTS)
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


def invoke(call: Call) -> None:
    """``run`` with the provenance of the parsed call (params, dataset source, commit)."""
    cfg, select, student, dataset = call.configs
    prov = Provenance(dataset=call.dataset, source=dataset.source, student=student.model, select=select,
                      commit=git_commit(), params_hash=params_hash(call.params))
    run(cfg, Inputs(**call.inputs), Outputs(**call.outputs), prov)


STAGE = Stage(
    "export", __doc__,
    # datasets.K.source goes on the card (provenance): read through the datasets entry, options --fetch-*
    sections=(Section(Config, "export"), Section(SelectConfig, "select", "select"),
              Section(StudentConfig, "student", "student"), Section(DatasetConfig, "datasets.{dataset}", "fetch")),
    # data_dir: the variants and scores beside the selection (export.all_variants)
    inputs={"selected": "data/{dataset}/selected.jsonl", "data_dir": "data/{dataset}",
            "select_metrics": "metrics/{dataset}/select.json"},
    outputs={"export_dir": PathSpec("data/{dataset}/export", flag="output")},
    invoke=invoke,
)
Inputs, Outputs = STAGE.io(__name__)


def main(argv: list[str] | None = None) -> int:
    return STAGE.main(argv)
