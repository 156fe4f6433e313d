"""Stage ``fetch@<dataset>``: read an instruction dataset into canonical rows.

Sources (see ``readers``): an HF hub dataset id, an http(s) URL, a local file (JSON array
or JSON Lines whatever its extension, parquet, CSV / TSV with a header; gzip or zstd
compressed or not; UTF-8 with or without a BOM; LF or CRLF), a directory of such shards,
or a ``datasets.save_to_disk`` directory. Formats: ``alpaca`` (instruction / input /
output), ``wizardlm`` (instruction / output) and ``sharegpt`` (first human turn, first
assistant turn). ``input: merge`` (the default) folds an input into its instruction
(``rows.merge_input``); ``keep`` keeps it apart. Every unusable row goes to the rejects
file with its line number and reason, and the metrics hold
``read = kept + rejected + duplicates``; ``limit`` rows of the kept ones are then sampled
with ``seed``.
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import Iterable
from pathlib import Path

from reflection_tuning.infra.command import PathSpec, Section, Stage
from reflection_tuning.infra.config import ConfigError
from reflection_tuning.infra.errors import SourceError
from reflection_tuning.infra.io import SortedJsonlWriter, iter_jsonl, write_jsonl, write_metrics
from reflection_tuning.readers import FORMATS, Config, Record, read_records, to_fields
from reflection_tuning.rows import INPUT_MODES, canonical

log = logging.getLogger(__name__)

__all__ = ["FORMATS", "STAGE", "Config", "Outputs", "SourceError", "main", "run"]


def _reject_id(record: Record) -> str:
    # Sorted by id, rejects read in file order; a shard's name keeps lines of two shards apart.
    line_id = f"line-{record.line:09d}"
    return f"{record.shard}:{line_id}" if record.shard else line_id


def _where(record: Record) -> str:
    return f"{record.shard} line {record.line}" if record.shard else f"line {record.line}"


def _source_sha256(source: str) -> str | None:
    """SHA-256 of a local source file, read in blocks; None for a URL, hub id or directory."""
    path = Path(source).expanduser()
    if not path.is_file():
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def run(cfg: Config, outputs: Outputs, name: str = "") -> dict:
    """Read, validate, deduplicate and sample; write rows, rejects and metrics.

    A record that is not valid UTF-8 or not valid JSON, or lacks a field, is rejected with
    its line (and byte offset for UTF-8); it never stops the stage. An empty source writes
    empty files and says so in the log. Rows and rejects stream through sorted writers
    (``io.SortedJsonlWriter``): memory holds the ids seen (for duplicates and sampling),
    not the rows.

    Raises:
        SourceError: the source cannot be opened or reached (``readers.read_records``).
        ConfigError: unknown format or input mode (a config built by hand; ``from_dict`` checks both).
    """
    if cfg.format not in FORMATS:
        raise ConfigError(f"unknown format {cfg.format!r}; expected one of {FORMATS}")
    if cfg.input not in INPUT_MODES:
        raise ConfigError(f"unknown input mode {cfg.input!r}; expected one of {INPUT_MODES}")
    first_seen: dict[str, str] = {}
    counts = {"read": 0, "rejected": 0, "duplicates": 0, "inputs_merged": 0}
    # With a limit the sample is known only once every id is: all kept rows go to a temp file first.
    kept_path = outputs.rows if cfg.limit is None else outputs.rows.with_name(f".{outputs.rows.name}.kept.tmp")
    try:
        with (
            SortedJsonlWriter(kept_path, scratch=kept_path != outputs.rows) as rows_out,
            SortedJsonlWriter(outputs.rejects) as rejects_out,
        ):
            for record in read_records(cfg.source):
                row, reason = _row(record, cfg, name, first_seen, counts)
                if row is not None:
                    rows_out.write(row)
                else:
                    reject = {"id": _reject_id(record), "line": record.line}
                    rejects_out.write({**reject, "shard": record.shard, "reason": reason} if record.shard
                                      else {**reject, "reason": reason})
        sampled = len(first_seen)
        if cfg.limit is not None:
            chosen = _sample(first_seen, cfg.limit, cfg.seed)
            sampled = write_jsonl(outputs.rows, (r for r in iter_jsonl(kept_path) if r["id"] in chosen))
    finally:
        if kept_path != outputs.rows:
            kept_path.unlink(missing_ok=True)
    if counts["read"] == 0:
        log.warning("%s: no records; wrote empty outputs", cfg.source)
    metrics = {**counts, "kept": len(first_seen), "sampled": sampled}
    assert metrics["read"] == metrics["kept"] + metrics["rejected"] + metrics["duplicates"]
    sha = _source_sha256(cfg.source)
    if sha is not None:
        # a local file is not a DVC dep (a hub id cannot be one), so record what was read
        metrics["source_sha256"] = sha
    write_metrics(outputs.metrics, metrics)
    log.info("%s: read %d, kept %d, rejected %d, duplicates %d, sampled %d, inputs merged %d", cfg.source,
             metrics["read"], metrics["kept"], metrics["rejected"], metrics["duplicates"], sampled,
             metrics["inputs_merged"])
    return metrics


def _row(record: Record, cfg: Config, name: str, first_seen: dict[str, str],
         counts: dict[str, int]) -> tuple[dict | None, str]:
    """(the canonical row, "") for a new valid record, else (None, the reject reason); updates the counts."""
    counts["read"] += 1
    if record.error is not None:
        counts["rejected"] += 1
        return None, record.error
    try:
        instruction, input_, output = to_fields(record.value, cfg.format)
    except ValueError as e:
        counts["rejected"] += 1
        return None, str(e)
    row = canonical(instruction, input_, output, name or cfg.source, input_mode=cfg.input)
    if row["id"] in first_seen:
        counts["duplicates"] += 1
        return None, f"duplicate of {first_seen[row['id']]}"
    first_seen[row["id"]] = _where(record)
    counts["inputs_merged"] += int(cfg.input == "merge" and bool(input_.strip()))
    return row, ""


def _sample(ids: Iterable[str], limit: int, seed: int) -> set[str]:
    """``limit`` ids drawn with ``seed`` from the sorted ids (all of them when fewer)."""
    ordered = sorted(ids)
    if limit >= len(ordered):
        return set(ordered)
    return set(random.Random(seed).sample(ordered, limit))


STAGE = Stage(
    "fetch", __doc__,
    # Without --dataset, fetch runs outside the pipeline: --source (and every other key) as options.
    sections=(Section(Config, "datasets.{dataset}", standalone=True),),
    outputs={"rows": PathSpec("data/{dataset}/original.jsonl", flag="output"),
             "rejects": "data/{dataset}/rejects.jsonl",
             "metrics": "metrics/{dataset}/fetch.json"},
    invoke=lambda call: run(*call.configs, Outputs(**call.outputs), name=call.dataset or ""),
)
Inputs, Outputs = STAGE.io(__name__)


def main(argv: list[str] | None = None) -> int:
    return STAGE.main(argv)
