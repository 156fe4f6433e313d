"""Stage ``fetch@<dataset>``: read an instruction dataset into canonical rows.

Sources: an HF hub dataset id, an http(s) URL, or a local ``.json`` / ``.jsonl`` /
``.parquet`` file. Formats: ``alpaca`` (instruction / input / output), ``wizardlm``
(instruction / output) and ``sharegpt`` (first human turn, first assistant turn).
Every unusable row goes to the rejects file with its line number and reason, and the
metrics hold ``read = kept + rejected + duplicates``; ``limit`` rows of the kept ones are
then sampled with ``seed``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reflection_tuning.errors import UserError
from reflection_tuning.io import write_jsonl, write_metrics
from reflection_tuning.rows import canonical
from reflection_tuning.stages.common import Section, parse_stage_args, stage_parser

log = logging.getLogger(__name__)

FORMATS = ("alpaca", "wizardlm", "sharegpt")
_HUMAN = {"human", "user"}
_ASSISTANT = {"gpt", "assistant", "chatgpt", "bing", "bard"}


class SourceError(UserError):
    """The source cannot be read or reached."""


@dataclass(frozen=True)
class Config:
    source: str
    format: str = "alpaca"
    limit: int | None = None
    seed: int = 0


@dataclass(frozen=True)
class Outputs:
    rows: Path
    rejects: Path
    metrics: Path


def _is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def _looks_local(source: str) -> bool:
    return source.endswith((".json", ".jsonl", ".parquet")) or source.startswith((".", "/", "~"))


def _parse_text(text: str, name: str) -> Iterator[tuple[int, Any]]:
    """(line number, record or json error) for a JSON array or a JSONL document."""
    if name.endswith(".json") and text.lstrip().startswith("["):
        try:
            records = json.loads(text)
        except json.JSONDecodeError as e:
            raise SourceError(f"{name}: not valid JSON ({e.msg} at line {e.lineno})") from e
        # A JSON array has no meaningful line per record: the record's position (1-based) stands in.
        yield from enumerate(records, start=1)
        return
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield lineno, json.loads(line)
        except json.JSONDecodeError as e:
            yield lineno, json.JSONDecodeError(e.msg, e.doc, e.pos)


def read_source(source: str) -> Iterator[tuple[int, Any]]:
    """Yield ``(line, record)`` from ``source``; a bad JSONL line yields a ``JSONDecodeError``.

    Raises:
        SourceError: the file is missing, the URL unreachable, or the hub dataset unavailable.
    """
    if _is_url(source) or _looks_local(source) or Path(source).exists():
        if source.endswith(".parquet"):
            yield from _read_with_datasets("parquet", source)
            return
        yield from _parse_text(_read_text(source), source)
        return
    yield from _read_hub(source)


def _read_text(source: str) -> str:
    import fsspec

    try:
        with fsspec.open(source, "rt", encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError as e:
        raise SourceError(f"source file not found: {source}") from e
    except Exception as e:  # network errors come in many types (aiohttp, OSError, …)
        raise SourceError(f"cannot read {source}: {e}") from e


def _read_with_datasets(builder: str, path: str) -> Iterator[tuple[int, Any]]:
    import datasets

    try:
        ds = datasets.load_dataset(builder, data_files=path, split="train")
    except FileNotFoundError as e:
        raise SourceError(f"source file not found: {path}") from e
    yield from enumerate(ds, start=1)


def _read_hub(dataset_id: str) -> Iterator[tuple[int, Any]]:
    import datasets

    try:
        ds = datasets.load_dataset(dataset_id, split="train")
    except Exception as e:  # offline mode, no network, unknown id: all end here
        raise SourceError(
            f"cannot load HF hub dataset {dataset_id!r} ({type(e).__name__}: {e}). "
            "If the hub is unreachable (offline, HF_HUB_OFFLINE=1), point the dataset at a local "
            "file instead: `make run DATA=path/to/alpaca.json`, or set datasets.<name>.source in params.yaml."
        ) from e
    yield from enumerate(ds, start=1)


def _text_field(record: dict, field: str, required: bool = True) -> str:
    """The string value of ``field``; raises ValueError with the reject reason."""
    if field not in record or record[field] is None:
        if required:
            raise ValueError(f"missing field '{field}'")
        return ""
    value = record[field]
    if not isinstance(value, str):
        raise ValueError(f"field '{field}' is {type(value).__name__}, not a string")
    if required and not value.strip():
        raise ValueError(f"empty field '{field}'")
    return value


def _sharegpt_pair(record: dict) -> tuple[str, str]:
    turns = record.get("conversations", record.get("messages"))
    if not isinstance(turns, list):
        raise ValueError("missing field 'conversations'")
    question = None
    for turn in turns:
        if not isinstance(turn, dict):
            raise ValueError("a conversation turn is not an object")
        role = str(turn.get("from", turn.get("role", ""))).lower()
        text = turn.get("value", turn.get("content"))
        if question is None and role in _HUMAN:
            question = _text_field({"human turn": text}, "human turn")
        elif question is not None and role in _ASSISTANT:
            return question, _text_field({"assistant turn": text}, "assistant turn")
    raise ValueError("no human turn followed by an assistant turn")


def to_fields(record: Any, fmt: str) -> tuple[str, str, str]:
    """(instruction, input, output) of one record in format ``fmt``.

    Raises:
        ValueError: the record is unusable; the message is the reject reason.
    """
    if not isinstance(record, dict):
        raise ValueError(f"record is {type(record).__name__}, not an object")
    if fmt == "alpaca":
        return _text_field(record, "instruction"), _text_field(record, "input", required=False), _text_field(record, "output")
    if fmt == "wizardlm":
        return _text_field(record, "instruction"), "", _text_field(record, "output")
    if fmt == "sharegpt":
        question, answer = _sharegpt_pair(record)
        return question, "", answer
    raise ValueError(f"unknown format {fmt!r}")


def run(cfg: Config, outputs: Outputs, name: str = "") -> dict:
    """Read, validate, deduplicate and sample; write rows, rejects and metrics.

    Raises:
        SourceError: the source cannot be read.
        ValueError: unknown format.
    """
    if cfg.format not in FORMATS:
        raise ValueError(f"unknown format {cfg.format!r}; expected one of {FORMATS}")
    kept: dict[str, dict] = {}
    first_line: dict[str, int] = {}
    rejects: list[dict] = []
    read = duplicates = 0
    for line, record in read_source(cfg.source):
        read += 1
        if isinstance(record, json.JSONDecodeError):
            rejects.append({"id": f"line-{line:09d}", "line": line, "reason": f"bad JSON: {record.msg}"})
            continue
        try:
            instruction, input_, output = to_fields(record, cfg.format)
        except ValueError as e:
            rejects.append({"id": f"line-{line:09d}", "line": line, "reason": str(e)})
            continue
        row = canonical(instruction, input_, output, name or cfg.source)
        if row["id"] in kept:
            duplicates += 1
            rejects.append({"id": f"line-{line:09d}", "line": line, "reason": f"duplicate of line {first_line[row['id']]}"})
            continue
        kept[row["id"]] = row
        first_line[row["id"]] = line
    if read == 0:
        raise SourceError(f"{cfg.source}: no rows")
    ids = sorted(kept)
    if cfg.limit is not None and cfg.limit < len(ids):
        ids = sorted(random.Random(cfg.seed).sample(ids, cfg.limit))
    write_jsonl(outputs.rows, [kept[i] for i in ids])
    write_jsonl(outputs.rejects, rejects)
    metrics = {
        "read": read,
        "kept": len(kept),
        "rejected": len(rejects) - duplicates,
        "duplicates": duplicates,
        "sampled": len(ids),
    }
    assert metrics["read"] == metrics["kept"] + metrics["rejected"] + metrics["duplicates"]
    source_path = Path(cfg.source)
    if source_path.is_file():
        # a local file is not a DVC dep (a hub id cannot be one), so record what was read
        metrics["source_sha256"] = hashlib.sha256(source_path.read_bytes()).hexdigest()
    write_metrics(outputs.metrics, metrics)
    log.info("%s: read %d, kept %d, rejected %d, duplicates %d, sampled %d", cfg.source, read,
             metrics["kept"], metrics["rejected"], duplicates, len(ids))
    return metrics


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser("fetch", __doc__)
    parser.add_argument("--output", type=Path, default=None, help="default data/<dataset>/original.jsonl")
    parser.add_argument("--rejects", type=Path, default=None, help="default data/<dataset>/rejects.jsonl")
    parser.add_argument("--metrics", type=Path, default=None, help="default metrics/<dataset>/fetch.json")
    argv = list(sys.argv[1:] if argv is None else argv)
    # Without --dataset, fetch runs outside the pipeline: --source (and friends) give the config.
    section = "datasets.{dataset}" if "--dataset" in argv else "_cli"
    args, (cfg,), _ = parse_stage_args(parser, [Section(Config, section)], argv)
    name = args.dataset or "cli"
    outputs = Outputs(
        rows=args.output or Path(f"data/{name}/original.jsonl"),
        rejects=args.rejects or Path(f"data/{name}/rejects.jsonl"),
        metrics=args.metrics or Path(f"metrics/{name}/fetch.json"),
    )
    run(cfg, outputs, name=name)
    return 0
