"""Row and metrics files: JSONL in, JSONL out, always atomic and sorted by ``id``.

Every stage writes its outs through these helpers, so a killed stage never leaves a
half-written file behind (temp file in the same directory, then ``os.replace``), and the
log names each file written. Rows stream both ways: ``iter_jsonl`` reads one line at a
time, and ``SortedJsonlWriter`` holds at most ``buffer_rows`` rows, spilling sorted runs to
disk and merging them (``heapq.merge``) when the rows outgrow the buffer, so memory stays
flat in the number of rows; ``join_by_id`` joins files sorted by ``id`` one row at a time.
"""

from __future__ import annotations

import heapq
import json
import logging
import math
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Any

log = logging.getLogger(__name__)

# Rows held in memory before a sorted run goes to disk: at ~2 KB a row (an Alpaca row with
# a reflected answer), about 100 MB.
BUFFER_ROWS = 50_000

# mkstemp creates its file 0600; an out replaced from it gets the mode any new file would
# (0666 less the umask), so a report or a row file is as readable as one the user wrote.
_UMASK = os.umask(0)
os.umask(_UMASK)
_FILE_MODE = 0o666 & ~_UMASK


def iter_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    """Yield the objects of a JSONL file one line at a time (blank lines skipped).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: a line is not a JSON object; the message names the line number.
    """
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{lineno}: not valid JSON ({e.msg})") from e
            if not isinstance(row, dict):
                raise ValueError(f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}")
            yield row


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Read a whole JSONL file of objects into a list (``iter_jsonl`` streams it).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: a line is not a JSON object; the message names the line number.
    """
    return list(iter_jsonl(path))


def read_index(path: str | Path, key: tuple[str, ...] = ("id",)) -> dict[Any, dict[str, Any]]:
    """The rows of a JSONL file by ``key``: ``{id: row}``, or ``{(id, variant): row}`` for two keys.

    Raises:
        FileNotFoundError, ValueError: see :func:`read_jsonl`; ValueError also for a key that appears twice.
    """
    out: dict[Any, dict[str, Any]] = {}
    for r in iter_jsonl(path):
        k = tuple(r.get(x) for x in key) if len(key) > 1 else r.get(key[0])
        if k in out:
            raise ValueError(f"{path}: {'/'.join(key)} {k} appears twice")
        out[k] = r
    return out


def join_by_id(*streams: Iterable[dict[str, Any]]) -> Iterator[tuple[str, list[dict[str, Any] | None]]]:
    """Join row streams that are sorted by ``id`` (as every stage writes them), one id at a time.

    Yields ``(id, [the row of that id in each stream, or None])`` in ``id`` order, holding one
    row per stream: a streaming merge-join, so ``original.jsonl`` and ``instruction.jsonl``
    join without either being read whole.

    Raises:
        ValueError: a stream is not sorted by ``id``, or repeats an ``id``.
    """
    iters = [iter(s) for s in streams]
    heads: list[dict[str, Any] | None] = [next(it, None) for it in iters]
    while any(h is not None for h in heads):
        current = min(str(h["id"]) for h in heads if h is not None)
        out: list[dict[str, Any] | None] = []
        for n, head in enumerate(heads):
            if head is None or str(head["id"]) != current:
                out.append(None)
                continue
            out.append(head)
            nxt = next(iters[n], None)
            if nxt is not None and str(nxt["id"]) <= current:
                raise ValueError(f"stream {n + 1} is not sorted by id: {nxt['id']!r} after {current!r}")
            heads[n] = nxt
        yield current, out


def _fsync_replace(fd_file: IO[str], tmp: str, path: Path) -> None:
    fd_file.flush()
    os.fchmod(fd_file.fileno(), _FILE_MODE)
    os.fsync(fd_file.fileno())
    fd_file.close()
    os.replace(tmp, path)


def _atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            _fsync_replace(f, tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    log.info("wrote %s", path)


def _atomic_write_rows(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    """Rows as JSONL in the order given, atomically, one at a time; the number written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    count = 0
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for row in rows:
                f.write(_line(row))
                count += 1
            _fsync_replace(f, tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    log.info("wrote %s (%d rows)", path, count)
    return count


def _sort_key(row: dict[str, Any], keys: tuple[str, ...]) -> tuple:
    return tuple(str(row.get(k, "")) for k in keys)


def _line(row: dict[str, Any]) -> str:
    return json.dumps(row, ensure_ascii=False) + "\n"


class SortedJsonlWriter:
    """Write rows as JSONL sorted by ``sort_by``, atomically, in memory bounded by ``buffer_rows``.

    Use as a context manager and ``write`` rows in any order; on a clean exit the file
    appears at ``path`` sorted (a stable sort: rows with equal keys keep their write order),
    and on an exception nothing appears and the spill files are removed. Past
    ``buffer_rows`` rows, the buffer is sorted and spilled to a run file beside ``path``;
    closing merges the runs with ``heapq.merge``. Peak memory: ``buffer_rows`` rows plus
    one line per run.

    Raises:
        ValueError: ``buffer_rows`` < 1.
    """

    def __init__(self, path: str | Path, sort_by: tuple[str, ...] = ("id",), buffer_rows: int = BUFFER_ROWS,
                 scratch: bool = False):
        if buffer_rows < 1:
            raise ValueError(f"buffer_rows must be >= 1, got {buffer_rows}")
        self.path = Path(path)
        self.sort_by = sort_by
        self.buffer_rows = buffer_rows
        self.scratch = scratch  # a file the stage deletes before it ends: logged at DEBUG, not as written
        self.count = 0
        self._buffer: list[dict[str, Any]] = []
        self._runs: list[Path] = []

    def __enter__(self) -> SortedJsonlWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return self

    def write(self, row: dict[str, Any]) -> None:
        """Add one row; it may go to a sorted run on disk before the file is written."""
        self._buffer.append(row)
        self.count += 1
        if len(self._buffer) >= self.buffer_rows:
            self._spill()

    def _key(self, row: dict[str, Any]) -> tuple:
        return _sort_key(row, self.sort_by)

    def _spill(self) -> None:
        self._buffer.sort(key=self._key)
        fd, run = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.run{len(self._runs)}.",
                                   suffix=".tmp")
        self._runs.append(Path(run))
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.writelines(_line(r) for r in self._buffer)
        self._buffer = []

    def _read_run(self, run: Path) -> Iterator[dict[str, Any]]:
        with open(run, encoding="utf-8") as f:
            for line in f:
                yield json.loads(line)

    def _commit(self) -> None:
        self._buffer.sort(key=self._key)
        # heapq.merge is stable across its inputs in argument order: runs in spill order, then the buffer.
        merged = heapq.merge(*(self._read_run(r) for r in self._runs), self._buffer, key=self._key)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.writelines(_line(r) for r in merged)
                _fsync_replace(f, tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        log.log(logging.DEBUG if self.scratch else logging.INFO, "wrote %s (%d rows%s)", self.path, self.count,
                 f", merged from {len(self._runs)} sorted runs" if self._runs else "")

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            if exc_type is None:
                self._commit()
        finally:
            for run in self._runs:
                run.unlink(missing_ok=True)
            self._buffer = []


def write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]], sort_by: tuple[str, ...] = ("id",),
                buffer_rows: int = BUFFER_ROWS) -> int:
    """Write rows as JSONL, sorted by ``sort_by`` (``id`` first), atomically.

    ``rows`` may be a generator: at most ``buffer_rows`` of them are held at once (see
    ``SortedJsonlWriter``); with ``sort_by=()`` they keep their order and stream straight
    to the file. Returns the number of rows written. Keys keep their insertion order, so
    files diff well.
    """
    if not sort_by:
        return _atomic_write_rows(Path(path), rows)
    with SortedJsonlWriter(path, sort_by, buffer_rows) as writer:
        for row in rows:
            writer.write(row)
    return writer.count


def _finite(value: Any) -> Any:
    # JSON has no NaN/Infinity; DVC's metrics parser rejects them, so they become null.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_metrics(path: str | Path, metrics: dict[str, Any]) -> None:
    """Write a flat metrics dict as pretty JSON, atomically, with keys sorted.

    Raises:
        TypeError: a value is a dict or list; DVC metrics stay flat so ``dvc metrics diff`` reads well.
    """
    for key, value in metrics.items():
        if isinstance(value, (dict, list)):
            raise TypeError(f"metric {key!r} is not a scalar; metrics must be flat")
    clean = {k: _finite(v) for k, v in sorted(metrics.items())}
    _atomic_write_text(Path(path), json.dumps(clean, indent=2) + "\n")


def write_json(path: str | Path, obj: Any) -> None:
    """Write any JSON document atomically (used for manifests, not metrics)."""
    _atomic_write_text(Path(path), json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def write_text(path: str | Path, text: str) -> None:
    """Write a text document (a report) atomically."""
    _atomic_write_text(Path(path), text)


def write_csv(path: str | Path, header: list[str] | tuple[str, ...], rows: Iterable[Iterable[Any]]) -> None:
    """Write DVC plot data as CSV (header first), atomically."""
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    _atomic_write_text(Path(path), buf.getvalue())
