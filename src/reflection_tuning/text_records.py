"""Records of text files: JSON Lines, a JSON array, CSV / TSV with a header row.

UTF-8 with or without a byte-order mark; LF or CRLF. Bytes that are not UTF-8 reject the
record that holds them, with their byte offset; the read goes on. JSON Lines are split on
LF only, since a JSON string may hold U+2028, which ``str.splitlines`` would split on.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from reflection_tuning.infra.errors import SourceError

log = logging.getLogger(__name__)

_LINES_SUFFIXES = (".jsonl", ".ndjson")
_SURROGATE = re.compile("[\ud800-\udfff]")


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


def read_json_text(stream: IO[bytes], name: str, shard: str = "") -> Iterator[Record]:
    """Records of a JSON array (first non-blank character ``[``) or of JSON Lines.

    ``stream`` must support ``peek`` (a ``BufferedReader``).

    Raises:
        SourceError: a document that starts like an array is not valid JSON, and neither its
            name (``.jsonl``, ``.ndjson``) nor its first line says it is JSON Lines.
    """
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


def read_csv(data: bytes, delimiter: str, shard: str = "") -> Iterator[Record]:
    """Rows of a CSV / TSV file with a header row, each a dict of strings (never raises)."""
    data, skipped = _strip_bom(data)
    bad = _invalid_offsets(data, skipped) if _has_invalid_utf8(data) else {}
    text = data.decode("utf-8", errors="surrogateescape")
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        _ = reader.fieldnames  # reads the header now, so that the first row's line is the one after it
        previous = reader.line_num
        for value in reader:
            first, last = previous + 1, reader.line_num
            previous = last
            value.pop(None, None)  # cells beyond the header: not a field of ours
            reason = _span_reason(value, first, last, bad)
            yield Record(first, error=reason, shard=shard) if reason else Record(first, value, shard=shard)
    except csv.Error as e:
        yield Record(reader.line_num, error=f"bad CSV: {e}", shard=shard)
