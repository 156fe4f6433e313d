"""Resumable scoring: an append-only on-disk cache of pair scores, outside the DVC outs.

Every batch the scorer finishes is appended (one JSON line per pair) to
``<cache_dir>/<model fingerprint>/pairs.rank<R>.jsonl`` and flushed, so a killed scorer
loses at most the batch in flight; the next run reads every ``*.jsonl`` of its
fingerprint directory and skips the batches whose pairs are all there. Each rank of a
data-parallel job appends to its own file, so writers never share one.

A pair's key is the SHA-256 of (model fingerprint, ``max_length``, prefix, target,
``max_target_tokens``). The prefix holds the whole student prompt, so the template is
part of the key; the fingerprint covers the weights, the tokenizer and the precision
(fp32 on CPU, bf16 autocast on CUDA). Floats go through JSON as ``repr``, which round-trips,
so a resumed run writes byte-identical scores.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reflection_tuning.score.batching import PairScore, Request

log = logging.getLogger(__name__)

_CHUNK = 1 << 20


def model_fingerprint(model: str | Path, precision: str) -> str:
    """A hex SHA-256 of every file of the model directory ``model`` (names and bytes) and ``precision``.

    A hub id (not a local directory) is fingerprinted by its name only. Hashing reads the
    weights once (about 1 s per GB).
    """
    h = hashlib.sha256(precision.encode())
    root = Path(model)
    if not root.is_dir():
        h.update(str(model).encode())
        return h.hexdigest()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(root)).encode() + b"\0")
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
    return h.hexdigest()


class PairCache:
    """Pair scores of one model fingerprint: read all writers' files, append to this writer's.

    Args:
        directory: the cache root (``score.cache_dir``).
        fingerprint: :func:`model_fingerprint` of the scorer's model.
        writer: this process's file name part (``rank0``, ``rank1`` …).
    """

    def __init__(self, directory: str | Path, fingerprint: str, writer: str = "rank0") -> None:
        self.fingerprint = fingerprint
        self.dir = Path(directory) / fingerprint[:16]
        self.path = self.dir / f"pairs.{writer}.jsonl"
        self._scores: dict[str, PairScore] = {}
        self._file: Any = None
        self.reload()

    def reload(self) -> None:
        """Read every writer's file; a line cut by a kill (not valid JSON) is skipped."""
        self._scores.clear()
        for path in sorted(self.dir.glob("*.jsonl")):
            with open(path, encoding="utf-8") as f:
                for line in f:
                    try:
                        rec = json.loads(line)
                        self._scores[rec["k"]] = PairScore(*rec["v"])
                    except (json.JSONDecodeError, KeyError, TypeError):
                        continue
        if self._scores:
            log.info("resume cache %s: %d pair scores", self.dir, len(self._scores))

    def __len__(self) -> int:
        return len(self._scores)

    def key(self, request: Request, max_length: int) -> str:
        blob = json.dumps([self.fingerprint, max_length, request.prefix, request.target, request.max_target_tokens],
                          ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def get_all(self, keys: Sequence[str]) -> list[PairScore] | None:
        """The scores of all ``keys``, or None if any one is missing."""
        found = [self._scores.get(k) for k in keys]
        return None if any(s is None for s in found) else found

    def put(self, keys: Sequence[str], scores: Sequence[PairScore]) -> None:
        """Append one batch's scores and flush them to disk."""
        if self._file is None:
            self.dir.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115  (kept open across batches)
            if self._file.tell() and not _ends_with_newline(self.path):
                self._file.write("\n")  # end a line cut by a kill, so it does not swallow the next one
        self._file.write("".join(json.dumps({"k": k, "v": list(s)}) + "\n" for k, s in zip(keys, scores)))
        self._file.flush()
        self._scores.update(zip(keys, scores))

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(-1, 2)
        return f.read(1) == b"\n"
