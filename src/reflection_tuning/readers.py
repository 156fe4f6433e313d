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
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from reflection_tuning.errors import SourceError

log = logging.getLogger(__name__)

_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_PARQUET_MAGIC = b"PAR1"
_ARROW_STREAM_MAGIC = b"\xff\xff\xff\xff"  # an IPC stream opens with a continuation marker
_COMPRESSED_SUFFIXES = (".gz", ".zst", ".zstd")
_DATA_SUFFIXES = (".json", ".jsonl", ".ndjson", ".csv", ".tsv", ".parquet", ".arrow", ".txt")
_LINES_SUFFIXES = (".jsonl", ".ndjson")
_SURROGATE = re.compile("[\ud800-\udfff]")
_DATASET_DIR_MARKERS = ("state.json", "dataset_dict.json")


@dataclass(frozen=True)
class Record:
    """One record of a source: its value, or why it cannot be one.

    ``line`` is the 1-based line where the record starts (text formats) or its 1-based
    position (parquet, Arrow, hub datasets). ``shard`` names the file inside a directory
    source ("" for a single file).
    """

    line: int
    value: Any = None
    error: str | None = None
    shard: str = ""


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
        yield from _read_stream(raw, _inner_name(source))


def _looks_like_path(source: str) -> bool:
    # A hub id is "owner/name" (which may hold dots: "teknium/OpenHermes-2.5"); a name with a data
    # file's suffix, or one that starts like a path, is a missing file.
    lower = _inner_name(source).lower()
    return source.startswith((".", "/", "~")) or lower.endswith(_DATA_SUFFIXES) or source.count("/") != 1


def _inner_name(name: str) -> str:
    """The name with a compression suffix removed: ``rows.csv.gz`` -> ``rows.csv``."""
    lower = name.lower()
    for suffix in _COMPRESSED_SUFFIXES:
        if lower.endswith(suffix):
            return name[: -len(suffix)]
    return name


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


def _decompressed(raw: IO[bytes]) -> IO[bytes]:
    """``raw`` itself, or a decompressing reader over it when its magic bytes say gzip / zstd."""
    buffered = raw if hasattr(raw, "peek") else io.BufferedReader(raw)  # type: ignore[arg-type]
    head = buffered.peek(4)[:4]
    if head.startswith(_GZIP_MAGIC):
        import gzip

        return gzip.GzipFile(fileobj=buffered)  # type: ignore[return-value]
    if head.startswith(_ZSTD_MAGIC):
        import zstandard

        return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(buffered))  # type: ignore[return-value]
    return buffered  # type: ignore[return-value]


def _read_stream(raw: IO[bytes], name: str, shard: str = "") -> Iterator[Record]:
    try:
        stream = _decompressed(raw)
        head = stream.peek(4)[:4]  # type: ignore[attr-defined]
    except OSError as e:  # a truncated or corrupt compressed file
        raise SourceError(f"{shard or name}: cannot decompress ({e})") from e
    suffix = Path(name).suffix.lower()
    if head == _PARQUET_MAGIC:
        yield from _read_parquet(stream, shard)
    elif head == _ARROW_STREAM_MAGIC or suffix == ".arrow":
        yield from _read_arrow(stream, name, shard)
    elif suffix in (".csv", ".tsv"):
        yield from _read_csv(stream.read(), "\t" if suffix == ".tsv" else ",", shard)
    else:
        yield from _read_json_text(stream, name, shard)


def _read_json_text(stream: IO[bytes], name: str, shard: str) -> Iterator[Record]:
    if _first_char(stream) != b"[":
        yield from _read_jsonl(stream, shard)
        return
    data = stream.read()
    try:
        records = list(_read_json_array(data, name, shard))
    except SourceError:
        # Not one valid array. JSON Lines whose first record is an array, or a file whose name
        # says it is JSON Lines, is read line by line; anything else is a broken JSON document.
        if not (Path(name).suffix.lower() in _LINES_SUFFIXES or _first_line_parses(data)):
            raise
        log.info("%s: not a JSON array; reading it as JSON Lines", shard or name)
        yield from _read_jsonl(io.BufferedReader(io.BytesIO(data)), shard)  # type: ignore[arg-type]
        return
    yield from records


def _first_char(stream: IO[bytes]) -> bytes:
    head = stream.peek(4096)  # type: ignore[attr-defined]
    head = head[len(codecs.BOM_UTF8):] if head.startswith(codecs.BOM_UTF8) else head
    stripped = head.lstrip()
    return stripped[:1]


def _first_line_parses(data: bytes) -> bool:
    first = _strip_bom(data)[0].split(b"\n", 1)[0]
    try:
        json.loads(first.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return False
    return True


def _strip_bom(data: bytes) -> tuple[bytes, int]:
    """(data without a leading UTF-8 BOM, its length in bytes: 0 or 3)."""
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8):], len(codecs.BOM_UTF8)
    return data, 0


def _utf8_error(e: UnicodeDecodeError, offset: int) -> str:
    return f"invalid UTF-8 (byte 0x{e.object[e.start]:02x}) at byte offset {offset + e.start}"


def _unencodable(value: Any) -> str | None:
    """Why ``value`` cannot be written as UTF-8 JSON (a lone surrogate), or None."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return "text holds a lone UTF-16 surrogate, which UTF-8 cannot encode"
    except (TypeError, ValueError) as e:  # not JSON-serialisable (a parquet timestamp, a NaN is fine)
        return f"value is not JSON-serialisable ({e})"
    return None


def _read_jsonl(stream: IO[bytes], shard: str) -> Iterator[Record]:
    """One record per line; the line is split on LF only (JSON strings may hold U+2028)."""
    offset = 0
    for lineno, raw in enumerate(stream, start=1):
        start = offset
        offset += len(raw)
        if lineno == 1:
            raw, skipped = _strip_bom(raw)
            start += skipped
        if not raw.strip():
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            yield Record(lineno, error=_utf8_error(e, start), shard=shard)
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError as e:
            yield Record(lineno, error=f"bad JSON: {e.msg} (column {e.colno})", shard=shard)
            continue
        except RecursionError:
            yield Record(lineno, error="bad JSON: nested too deeply", shard=shard)
            continue
        reason = _unencodable(value)
        yield Record(lineno, error=reason, shard=shard) if reason else Record(lineno, value, shard=shard)


def _invalid_offsets(data: bytes, base: int) -> dict[int, int]:
    """{line number: byte offset of its first non-UTF-8 byte} for each line that has one."""
    found: dict[int, int] = {}
    offset = base
    for lineno, line in enumerate(data.split(b"\n"), start=1):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as e:
            found[lineno] = offset + e.start
        offset += len(line) + 1
    return found


def _span_reason(value: Any, first: int, last: int, bad: dict[int, int]) -> str | None:
    """The reject reason of a record on lines ``first..last`` of a surrogate-escaped text."""
    if not _SURROGATE.search(json.dumps(value, ensure_ascii=False)):
        return None
    for lineno in range(first, last + 1):
        if lineno in bad:
            return f"invalid UTF-8 at byte offset {bad[lineno]}"
    return _unencodable(value)


def _read_json_array(data: bytes, name: str, shard: str) -> Iterator[Record]:
    """Each element of a top-level JSON array, with the line it starts on.

    Undecodable bytes are kept through ``surrogateescape`` so that one bad string rejects
    its element only; the array must otherwise be valid JSON.
    """
    data, skipped = _strip_bom(data)
    bad = _invalid_offsets(data, skipped) if _has_invalid_utf8(data) else {}
    text = data.decode("utf-8", errors="surrogateescape")
    try:
        values = json.loads(text)
    except json.JSONDecodeError as e:
        raise SourceError(f"{shard or name}: not valid JSON ({e.msg} at line {e.lineno})") from e
    except RecursionError as e:
        raise SourceError(f"{shard or name}: JSON nested too deeply") from e
    if not isinstance(values, list):
        raise SourceError(f"{shard or name}: a JSON document must be an array of records")
    for (first, last), value in zip(_element_lines(text), values):
        reason = _span_reason(value, first, last, bad)
        yield Record(first, error=reason, shard=shard) if reason else Record(first, value, shard=shard)


def _has_invalid_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def _element_lines(text: str) -> Iterator[tuple[int, int]]:
    """(first line, last line) of each element of the JSON array ``text`` (valid JSON).

    The stdlib decoder's ``raw_decode`` gives each element's end; only the separators
    between elements are skipped here.
    """
    decoder = json.JSONDecoder()
    pos = text.index("[") + 1
    line = text.count("\n", 0, pos) + 1
    ws = re.compile(r"[\s,]*")
    while True:
        skip = ws.match(text, pos).end()  # type: ignore[union-attr]
        line += text.count("\n", pos, skip)
        pos = skip
        if pos >= len(text) or text[pos] == "]":
            return
        _, end = decoder.raw_decode(text, pos)
        last = line + text.count("\n", pos, end)
        yield line, last
        line, pos = last, end


# A cell may hold a long answer; the csv module's default cap (128 KiB) would turn it into an error.
csv.field_size_limit(2**31 - 1)


def _read_csv(data: bytes, delimiter: str, shard: str) -> Iterator[Record]:
    """Rows of a CSV / TSV file with a header row, each a dict of strings."""
    data, skipped = _strip_bom(data)
    bad = _invalid_offsets(data, skipped) if _has_invalid_utf8(data) else {}
    text = data.decode("utf-8", errors="surrogateescape")
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    previous = reader.line_num
    try:
        for value in reader:
            first, last = previous + 1, reader.line_num
            previous = last
            value.pop(None, None)  # cells beyond the header: not a field of ours
            reason = _span_reason(value, first, last, bad)
            yield Record(first, error=reason, shard=shard) if reason else Record(first, value, shard=shard)
    except csv.Error as e:
        yield Record(reader.line_num, error=f"bad CSV: {e}", shard=shard)


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
            yield from _read_stream(raw, _inner_name(shard.name), shard=rel)


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
