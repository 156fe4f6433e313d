"""Property test of fetch's reading: any mix of valid rows, duplicates and broken lines.

For every file Hypothesis builds (real Alpaca rows and generated ones, duplicates, binary
garbage, huge lines, invalid UTF-8, a BOM, CRLF, an empty file), ``fetch.run`` must not
raise, must keep every valid row exactly once, and must count
``read = kept + rejected + duplicates``.
"""

from __future__ import annotations

import codecs
import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shipped import params_config

from reflection_tuning.infra.io import read_jsonl
from reflection_tuning.rows import row_id
from reflection_tuning.stages.fetch import Config, Outputs, run

_nonblank = st.text(min_size=1, max_size=40).filter(lambda s: s.strip() != "")
_generated = st.fixed_dictionaries(
    {"instruction": _nonblank, "input": st.text(max_size=20), "output": _nonblank}
)
_garbage = st.one_of(
    st.binary(max_size=200),                                      # anything, newlines included
    st.binary(min_size=1, max_size=50).map(lambda b: b"\xff" + b),  # never UTF-8
    st.text(max_size=80).map(lambda t: t.encode("utf-8")),         # text that is rarely JSON
    st.sampled_from([b"{", b"[", b"[1, 2]", b"null", b'{"instruction": 1}', b'"\\udc80"',
                     b'{"instruction": "\\ud800", "output": "x"}', b"\x00" * 10]),
    st.integers(min_value=1 << 16, max_value=1 << 20).map(lambda n: b"y" * n),  # huge lines
)


@st.composite
def _files(draw, real: list[dict]) -> tuple[bytes, list[dict]]:
    """(file bytes, the valid rows in it, duplicates included)."""
    valid = draw(st.lists(st.one_of(st.sampled_from(real), _generated), max_size=12))
    dupes = draw(st.lists(st.sampled_from(valid), max_size=4)) if valid else []
    lines = [json.dumps(r, ensure_ascii=draw(st.booleans())).encode("utf-8") for r in valid + dupes]
    lines += draw(st.lists(_garbage, max_size=6))
    lines = draw(st.permutations(lines))
    end = draw(st.sampled_from([b"\n", b"\r\n"]))
    data = b"".join(line + end for line in lines)
    if draw(st.booleans()):
        data = codecs.BOM_UTF8 + data
    return data, valid + dupes


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_fetch_keeps_every_valid_row_once_and_counts_add_up(alpaca_records, data):
    data_bytes, valid = data.draw(_files(alpaca_records[:300]))
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "rows.jsonl"
        source.write_bytes(data_bytes)
        out = Outputs(rows=Path(tmp) / "o.jsonl", rejects=Path(tmp) / "r.jsonl", metrics=Path(tmp) / "m.json")
        metrics = run(params_config(Config, "datasets.alpaca", source=str(source), limit=None, input="keep"), out)
        rows = read_jsonl(out.rows)
        rejects = read_jsonl(out.rejects)
    assert metrics["read"] == metrics["kept"] + metrics["rejected"] + metrics["duplicates"]
    assert metrics["rejected"] + metrics["duplicates"] == len(rejects)
    expected = {row_id(r["instruction"], r.get("input", ""), r["output"]) for r in valid}
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)) == metrics["kept"]
    assert set(ids) == expected
    assert all(r["reason"] for r in rejects)
