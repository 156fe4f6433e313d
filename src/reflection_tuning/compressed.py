"""Compressed sources: the name without its compression suffix, and a decompressing reader
picked by the magic bytes (gzip, zstd), not by the name.

A zstd file is read frame by frame (:class:`_ZstdFrames`), so that a file cut inside a frame
raises ``EOFError`` instead of reading as a shorter one; ``readers`` turns that into a
``SourceError``.
"""

from __future__ import annotations

import io
from typing import IO, Any

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
COMPRESSED_SUFFIXES = (".gz", ".zst", ".zstd")


def inner_name(name: str) -> str:
    """The name with a compression suffix removed: ``rows.csv.gz`` -> ``rows.csv``."""
    lower = name.lower()
    for suffix in COMPRESSED_SUFFIXES:
        if lower.endswith(suffix):
            return name[: -len(suffix)]
    return name


def decompressed(raw: IO[bytes]) -> IO[bytes]:
    """``raw`` itself, or a decompressing reader over it when its magic bytes say gzip / zstd."""
    buffered = raw if hasattr(raw, "peek") else io.BufferedReader(raw)  # type: ignore[arg-type]
    head = buffered.peek(4)[:4]
    if head.startswith(GZIP_MAGIC):
        import gzip

        return gzip.GzipFile(fileobj=buffered)  # type: ignore[return-value]
    if head.startswith(ZSTD_MAGIC):
        return io.BufferedReader(_ZstdFrames(buffered))  # type: ignore[return-value]
    return buffered  # type: ignore[return-value]


class _ZstdFrames(io.RawIOBase):
    """A readable over zstd frames that raises ``EOFError`` when the data ends inside a frame.

    ``zstandard``'s own ``stream_reader`` returns a clean end of file on a truncated frame,
    which would read a cut file as a shorter (or empty) one; its ``decompressobj`` says
    whether a frame ended (``eof``), so the frames are fed through one per frame.
    """

    def __init__(self, raw: IO[bytes], chunk: int = 1 << 16):
        import zstandard

        self._zstd = zstandard
        self._raw, self._chunk = raw, chunk
        self._obj = zstandard.ZstdDecompressor().decompressobj()
        self._pending = b""
        self._in_frame = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            data = self._raw.read(self._chunk)
            if not data:
                if self._in_frame:
                    raise EOFError("zstd data ended inside a frame (a truncated file)")
                return 0
            while data:
                self._in_frame = True
                self._pending += self._obj.decompress(data)
                data = b""
                if self._obj.eof:  # one frame done; what follows starts the next one
                    data = self._obj.unused_data
                    self._in_frame = False
                    self._obj = self._zstd.ZstdDecompressor().decompressobj()
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n
