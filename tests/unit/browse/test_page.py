"""The data browser page: one self-contained HTML file whose embedded records inflate back to the rows."""

from __future__ import annotations

import base64
import gzip
import json
import re

from reflection_tuning.browse.page import build, pack, render
from reflection_tuning.infra.io import write_jsonl


def _records(html: str) -> list[dict]:
    """The records the page's script inflates (the base64 gzip JSON it embeds)."""
    (data,) = {m for m in re.findall(r"[A-Za-z0-9+/]{40,}={0,2}", html) if m.startswith("H4sI")}  # gzip magic
    return json.loads(gzip.decompress(base64.b64decode(data)))


def test_pack_is_deterministic_and_lossless():
    records = [{"id": "b", "text": "caf\u00e9 </script>"}, {"id": "a", "text": ""}]
    assert pack(records) == pack(records)
    assert json.loads(gzip.decompress(base64.b64decode(pack(records)))) == records


def test_specs_cannot_close_the_script_element():
    html = render("alpaca", [], {"ifd": {"title": "</script><b>x</b>"}}, {"method": "v2"})
    assert "</script><b>x</b>" not in html and "<\\/script><b>x<\\/b>" in html


def test_build_from_what_ran_so_far(tmp_path, alpaca_rows):
    """Only fetch ran: the page shows the original rows, no selection, and loads nothing from a network."""
    data, metrics = tmp_path / "data", tmp_path / "metrics"
    write_jsonl(data / "original.jsonl", [{**r, "variant": "original"} for r in alpaca_rows[:5]])
    figures = build("alpaca", data, metrics, tmp_path / "reports" / "alpaca.html", method="v2")
    html = (tmp_path / "reports" / "alpaca.html").read_text(encoding="utf-8")
    assert figures["samples"] == 5 and figures["bytes"] == len(html.encode("utf-8"))
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)  # self-contained
    records = _records(html)
    assert len(records) == 5 and all(r["kept"] is None for r in records)
    assert alpaca_rows[0]["instruction"] in json.dumps(records, ensure_ascii=False)
