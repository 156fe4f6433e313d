"""Read the records of a dataset source the way real files come: one ``Record`` per row.

What a source can be (``read_records`` picks the reader from the content, not the name,
where the content can tell):

- a local file or an http(s) URL, gzip- or zstd-compressed or not (magic bytes decide);
  inside it: parquet (magic ``PAR1``), an Arrow IPC stream (what ``datasets`` writes),
  CSV / TSV with a header row (by extension: ``.csv``, ``.tsv``, before ``.gz`` / ``.zst``),
  a JSON array (first non-blank character ``[``) or JSON Lines (anything else);
- a directory written by ``datasets.save_to_disk`` (it holds ``state.json`` or
  ``dataset_dict.json``), read with ``datasets.load_from_disk``;
- any other directory: a set of shards, each read as above, in sorted path order;
- anything else: an HF hub dataset id.

Text is UTF-8 with or without a byte-order mark, with LF or CRLF line ends. Bytes that
are not UTF-8 never stop the read: the record holding them comes back as an error whose
reason gives the byte offset in the (decompressed) file. A JSON Lines line is one record;
a line that does not parse is an error record, and the next line reads on.

A record becomes (instruction, input, output) by its dataset's format (:func:`to_fields`):
``alpaca`` (instruction / input / output), ``wizardlm`` (instruction / output) or
``sharegpt`` (the first human turn, the first assistant turn after it). :class:`Config` is
one ``datasets.<name>:`` entry of ``params.yaml``; ``input: merge`` folds an input into its
instruction (``rows.merge_input``), ``keep`` keeps it apart.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal, get_args

from reflection_tuning.compressed import decompressed, inner_name
from reflection_tuning.infra.config import ConfigError
from reflection_tuning.infra.errors import SourceError
from reflection_tuning.rows import INPUT_MODES
from reflection_tuning.text_records import Record, read_csv, read_json_text

__all__ = ["FORMATS", "Config", "Record", "read_records", "to_fields"]

log = logging.getLogger(__name__)

_PARQUET_MAGIC = b"PAR1"
_ARROW_STREAM_MAGIC = b"\xff\xff\xff\xff"  # an IPC stream opens with a continuation marker
_DATA_SUFFIXES = (".json", ".jsonl", ".ndjson", ".csv", ".tsv", ".parquet", ".arrow", ".txt")
_DATASET_DIR_MARKERS = ("state.json", "dataset_dict.json")


Format = Literal["alpaca", "wizardlm", "sharegpt"]
FORMATS = get_args(Format)
InputMode = Literal[INPUT_MODES]  # rows.INPUT_MODES: merge | keep
_HUMAN = {"human", "user"}
_ASSISTANT = {"gpt", "assistant", "chatgpt", "bing", "bard"}


@dataclass(frozen=True)
class Config:
    """One ``datasets.<name>:`` entry: ``source`` (see ``readers``), ``format``, ``limit`` (rows
    sampled; None = all), ``seed`` (of the sample), ``input`` (merge | keep, see the module doc).

    Raises:
        ConfigError: a negative ``limit``.
    """

    source: str
    format: Format
    limit: int | None
    seed: int
    input: InputMode

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < 0:
            raise ConfigError(f"datasets.*.limit must be >= 0 or null, got {self.limit}")


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
        return (
            _text_field(record, "instruction"),
            _text_field(record, "input", required=False),
            _text_field(record, "output"),
        )
    if fmt == "wizardlm":
        return _text_field(record, "instruction"), "", _text_field(record, "output")
    if fmt == "sharegpt":
        question, answer = _sharegpt_pair(record)
        return question, "", answer
    raise ValueError(f"unknown format {fmt!r}")


def _is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def read_records(source: str) -> Iterator[Record]:
    """Every record of ``source``, in file order.

    Raises:
        SourceError: the file or URL cannot be opened, a JSON array is not valid JSON, or
            the hub dataset cannot be loaded.
    """
    if not _is_url(source):
        path = Path(source).expanduser()
        if path.is_dir():
            yield from _read_dir(path)
            return
        if not path.exists():
            if _looks_like_path(source):
                raise SourceError(f"source file not found: {source}")
            yield from _read_hub(source)
            return
    with _open_binary(source) as raw:
        yield from _read_stream(raw, inner_name(source))


def _looks_like_path(source: str) -> bool:
    # A hub id is "name" or "owner/name" (which may hold dots: "teknium/OpenHermes-2.5"); a name
    # with a data file's suffix, deeper than owner/name, or that starts like a path, is a missing file.
    lower = inner_name(source).lower()
    return source.startswith((".", "/", "~")) or lower.endswith(_DATA_SUFFIXES) or source.count("/") > 1


def _open_binary(source: str) -> IO[bytes]:
    import fsspec

    try:
        if not _is_url(source):
            return open(Path(source).expanduser(), "rb")  # noqa: SIM115 - closed by the caller's ``with``
        return fsspec.open(source, "rb").open()
    except FileNotFoundError as e:
        raise SourceError(f"source file not found: {source}") from e
    except Exception as e:  # network errors come in many types (aiohttp, OSError, …)
        raise SourceError(f"cannot read {source}: {e}") from e


def _read_stream(raw: IO[bytes], name: str, shard: str = "") -> Iterator[Record]:
    try:
        stream = decompressed(raw)
        head = stream.peek(4)[:4]  # type: ignore[attr-defined]
    except (OSError, EOFError) as e:  # a truncated or corrupt compressed file
        raise SourceError(f"{shard or name}: cannot decompress ({type(e).__name__}: {e})") from e
    suffix = Path(name).suffix.lower()
    try:
        if head == _PARQUET_MAGIC:
            yield from _read_parquet(stream, shard)
        elif head == _ARROW_STREAM_MAGIC or suffix == ".arrow":
            yield from _read_arrow(stream, name, shard)
        elif suffix in (".csv", ".tsv"):
            yield from read_csv(stream.read(), "\t" if suffix == ".tsv" else ",", shard)
        else:
            yield from read_json_text(stream, name, shard)
    except (OSError, EOFError) as e:  # a truncated gzip, a corrupt zstd frame: the file itself is broken
        raise SourceError(f"{shard or name}: cannot read past byte {_position(raw)} ({type(e).__name__}: {e})") from e
    except Exception as e:
        if type(e).__module__.startswith("zstandard"):
            raise SourceError(f"{shard or name}: corrupt zstd data ({e})") from e
        raise


def _position(raw: IO[bytes]) -> str:
    try:
        return str(raw.tell())
    except (OSError, ValueError):
        return "?"


def _read_parquet(stream: IO[bytes], shard: str) -> Iterator[Record]:
    import pyarrow.parquet as pq

    position = 0
    for batch in pq.ParquetFile(stream).iter_batches(batch_size=1024):
        for value in batch.to_pylist():
            position += 1
            yield Record(position, value, shard=shard)


def _read_arrow(stream: IO[bytes], name: str, shard: str) -> Iterator[Record]:
    import pyarrow as pa

    try:
        reader = pa.ipc.open_stream(stream)
    except pa.ArrowInvalid as e:
        raise SourceError(f"{shard or name}: not an Arrow stream ({e})") from e
    position = 0
    for batch in reader:
        for value in batch.to_pylist():
            position += 1
            yield Record(position, value, shard=shard)


def _iter_dataset(ds: Any, shard: str = "") -> Iterator[Record]:
    for position, value in enumerate(ds, start=1):
        yield Record(position, value, shard=shard)


def _read_dir(path: Path) -> Iterator[Record]:
    """A ``save_to_disk`` directory, or a directory of shards (hidden files skipped)."""
    if any((path / marker).exists() for marker in _DATASET_DIR_MARKERS):
        yield from _read_saved_dataset(path)
        return
    shards = sorted(p for p in path.rglob("*") if p.is_file() and not _hidden(p.relative_to(path)))
    if not shards:
        raise SourceError(f"{path}: the directory holds no files")
    log.info("%s: %d shards", path, len(shards))
    for shard in shards:
        rel = shard.relative_to(path).as_posix()
        with _open_binary(str(shard)) as raw:
            yield from _read_stream(raw, inner_name(shard.name), shard=rel)


def _hidden(rel: Path) -> bool:
    return any(part.startswith((".", "_")) for part in rel.parts)


def _read_saved_dataset(path: Path) -> Iterator[Record]:
    import datasets

    try:
        ds = datasets.load_from_disk(str(path))
    except Exception as e:  # a damaged directory: datasets raises several types
        raise SourceError(f"{path}: cannot load the saved dataset ({type(e).__name__}: {e})") from e
    if isinstance(ds, datasets.DatasetDict):
        split = "train" if "train" in ds else next(iter(ds), None)
        if split is None:
            raise SourceError(f"{path}: the saved DatasetDict has no split")
        log.info("%s: reading split %r of %s", path, split, list(ds))
        ds = ds[split]
    yield from _iter_dataset(ds)


def _read_hub(dataset_id: str) -> Iterable[Record]:
    import datasets

    try:
        ds = datasets.load_dataset(dataset_id, split="train")
    except Exception as e:  # offline mode, no network, unknown id: all end here
        raise SourceError(
            f"cannot load HF hub dataset {dataset_id!r} ({type(e).__name__}: {e}). "
            "If the hub is unreachable (offline, HF_HUB_OFFLINE=1), point the dataset at a local "
            "file instead: `make run DATA=path/to/alpaca.json`, or set datasets.<name>.source in params.yaml."
        ) from e
    yield from _iter_dataset(ds)
