"""The export's settings and pieces: the ``export:`` section, the run's provenance, the parquet files.

The command ``export`` (:mod:`reflection_tuning.stages.export`) writes them to
``data/K/export/``; ``push`` (:mod:`reflection_tuning.hub`) reads the same section.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reflection_tuning import status as st
from reflection_tuning.infra.config import ConfigError
from reflection_tuning.infra.io import read_jsonl
from reflection_tuning.rows import FIELDS, VARIANTS
from reflection_tuning.select import Config as SelectConfig

SELECTED = "data/train-00000-of-00001.parquet"
ALL_VARIANTS = "all_variants/variants-00000-of-00001.parquet"
SELECTED_COLUMNS = ("id", "variant", *FIELDS, "source", "ifd", "rifd")
VARIANT_COLUMNS = ("id", "variant", *FIELDS, "source", "status", "teacher_model",
                   "template_hash", "score_status", "ifd", "rifd")


@dataclass(frozen=True)
class Config:
    """The ``export:`` section. ``license``: the source's license as a Hub license id (cc-by-nc-4.0
    for Alpaca); None writes ``other`` and a line asking to set it. ``token_env``: the NAME of the
    variable holding the Hub token for ``push``, never the token.

    Raises:
        ConfigError: an empty ``token_env``.
    """

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
            ok = s.get("status") == st.OK
            text = {k: r.get(k) for k in (*FIELDS, "source")}
            out.append({"id": r["id"], "variant": v, **text,
                        "status": r.get("status", st.OK), "teacher_model": r.get("teacher_model"),
                        "template_hash": r.get("template_hash"), "score_status": s.get("status"),
                        "ifd": s.get("ifd") if ok else None, "rifd": s.get("rifd") if ok else None})
    out.sort(key=lambda r: (r["id"], VARIANTS.index(r["variant"])))
    return out


def write_parquet(rows: list[dict[str, Any]], columns: tuple[str, ...], path: Path) -> None:
    """``rows`` as a parquet file of ``columns`` (``ifd``, ``rifd`` float64, the rest strings)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    types = {"ifd": pa.float64(), "rifd": pa.float64()}
    schema = pa.schema([(c, types.get(c, pa.string())) for c in columns])
    table = pa.Table.from_pylist([{c: r.get(c) for c in columns} for r in rows], schema=schema)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
