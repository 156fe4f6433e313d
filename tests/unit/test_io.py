from __future__ import annotations

import json

import pytest

from reflection_tuning.io import read_jsonl, write_jsonl, write_metrics


def test_jsonl_is_sorted_and_atomic(tmp_path):
    path = tmp_path / "sub" / "rows.jsonl"
    assert write_jsonl(path, [{"id": "b", "x": 1}, {"id": "a", "x": "é"}]) == 2
    assert [r["id"] for r in read_jsonl(path)] == ["a", "b"]
    assert "é" in path.read_text(encoding="utf-8")
    assert list(path.parent.iterdir()) == [path]  # no temp file left behind


def test_read_jsonl_names_the_bad_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": 1}\n\n{oops\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:3"):
        read_jsonl(path)


def test_metrics_are_flat_sorted_and_finite(tmp_path):
    path = tmp_path / "m.json"
    write_metrics(path, {"b": 1, "a": float("nan")})
    assert json.loads(path.read_text()) == {"a": None, "b": 1}
    assert path.read_text().index('"a"') < path.read_text().index('"b"')
    with pytest.raises(TypeError, match="flat"):
        write_metrics(path, {"nested": {"x": 1}})
