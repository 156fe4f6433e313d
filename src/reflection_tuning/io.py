"""Row and metrics files: JSONL in, JSONL out, always atomic and sorted by ``id``.

Every stage writes its outs through these helpers, so a killed stage never leaves a
half-written file behind (temp file in the same directory, then ``os.replace``).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Read a JSONL file of objects.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: a line is not a JSON object; the message names the line number.
    """
    rows = []
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
            rows.append(row)
    return rows


def _atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _sort_key(row: dict[str, Any], keys: tuple[str, ...]) -> tuple:
    return tuple(str(row.get(k, "")) for k in keys)


def write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]], sort_by: tuple[str, ...] = ("id",)) -> int:
    """Write rows as JSONL, sorted by ``sort_by`` (``id`` first), atomically.

    Returns the number of rows written. Keys keep their insertion order, so files diff well.
    """
    ordered = sorted(rows, key=lambda r: _sort_key(r, sort_by))
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ordered)
    _atomic_write_text(Path(path), text)
    return len(ordered)


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
