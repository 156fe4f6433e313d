"""The decompressing reader is picked by the magic bytes; a zstd file cut inside a frame raises."""

from __future__ import annotations

import gzip
import io

import pytest

from reflection_tuning.compressed import decompressed, inner_name


def test_inner_name_drops_only_a_compression_suffix():
    assert [inner_name(n) for n in ("rows.csv.gz", "rows.JSONL.ZST", "a.zstd", "rows.csv", "gz")] == [
        "rows.csv", "rows.JSONL", "a", "rows.csv", "gz"]


def test_gzip_zstd_and_plain_by_magic_bytes(alpaca_records):
    import zstandard

    data = "".join(f"{r['instruction']}\n" for r in alpaca_records[:20]).encode()
    frames = b"".join(zstandard.ZstdCompressor().compress(data[i:i + 100]) for i in range(0, len(data), 100))
    for packed in (gzip.compress(data), frames, data):
        assert decompressed(io.BytesIO(packed)).read() == data
    with pytest.raises(EOFError, match="inside a frame"):
        decompressed(io.BytesIO(frames[:-5])).read()
