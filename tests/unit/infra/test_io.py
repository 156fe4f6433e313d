from __future__ import annotations

import json
import os

import pytest

from reflection_tuning.infra.io import read_index, read_jsonl, write_jsonl, write_metrics


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


def test_read_index_by_id_or_pair_and_refuses_a_repeat(tmp_path):
    path = tmp_path / "scores.jsonl"
    rows = [{"id": "a", "variant": "original"}, {"id": "a", "variant": "both"}, {"id": "b", "variant": "both"}]
    write_jsonl(path, rows, sort_by=("id", "variant"))
    assert list(read_index(path, ("id", "variant"))) == [("a", "both"), ("a", "original"), ("b", "both")]
    with pytest.raises(ValueError, match=r"scores.jsonl: id a appears twice"):
        read_index(path)
    write_jsonl(path, rows[1:])
    assert read_index(path) == {"a": rows[1], "b": rows[2]}


def test_metrics_are_flat_sorted_and_finite(tmp_path):
    path = tmp_path / "m.json"
    write_metrics(path, {"b": 1, "a": float("nan")})
    assert json.loads(path.read_text()) == {"a": None, "b": 1}
    assert path.read_text().index('"a"') < path.read_text().index('"b"')
    with pytest.raises(TypeError, match="flat"):
        write_metrics(path, {"nested": {"x": 1}})


def test_iter_jsonl_streams_and_names_the_bad_line(tmp_path):
    from reflection_tuning.infra.io import iter_jsonl

    path = tmp_path / "rows.jsonl"
    path.write_text('{"id": "a"}\n\n{"id": "b"}\n[1]\n')
    rows = iter_jsonl(path)
    assert next(rows) == {"id": "a"} and next(rows) == {"id": "b"}  # lazily: line 4 not read yet
    with pytest.raises(ValueError, match=r"rows.jsonl:4: expected a JSON object"):
        next(rows)


def test_sorted_writer_merges_spilled_runs_stably(tmp_path):
    import random

    from reflection_tuning.infra.io import SortedJsonlWriter

    rng = random.Random(0)
    rows = [{"id": f"{rng.randrange(50):03d}", "seq": i, "text": "é" * (i % 3)} for i in range(500)]
    path = tmp_path / "out" / "rows.jsonl"
    spilled = []
    with SortedJsonlWriter(path, buffer_rows=37) as writer:
        for row in rows:
            writer.write(row)
            spilled.append(len(writer._runs))
    assert max(spilled) == 500 // 37  # rows went to disk: the buffer never held more than 37
    assert read_jsonl(path) == sorted(rows, key=lambda r: r["id"])  # stable: equal ids keep write order
    assert list(path.parent.iterdir()) == [path]  # runs and temp file removed


def test_sorted_writer_leaves_nothing_on_error(tmp_path):
    from reflection_tuning.infra.io import SortedJsonlWriter

    path = tmp_path / "rows.jsonl"
    with pytest.raises(RuntimeError), SortedJsonlWriter(path, buffer_rows=2) as writer:
        for i in range(5):
            writer.write({"id": str(i)})
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_write_jsonl_takes_a_generator_and_logs_the_file(tmp_path, caplog):
    path = tmp_path / "rows.jsonl"
    with caplog.at_level("INFO", logger="reflection_tuning.infra.io"):
        n = write_jsonl(path, ({"id": str(9 - i)} for i in range(10)), buffer_rows=3)
    assert n == 10 and [r["id"] for r in read_jsonl(path)] == [str(i) for i in range(10)]
    assert f"wrote {path}" in caplog.text


def test_write_jsonl_without_sort_key_keeps_the_order(tmp_path):
    path = tmp_path / "rows.jsonl"
    rows = [{"id": str(i % 7), "n": i} for i in range(30)]
    assert write_jsonl(path, iter(rows), sort_by=()) == 30
    assert read_jsonl(path) == rows
    assert list(tmp_path.iterdir()) == [path]


def test_join_by_id_streams_sorted_files(tmp_path):
    from reflection_tuning.infra.io import iter_jsonl, join_by_id

    write_jsonl(tmp_path / "a.jsonl", [{"id": i, "a": 1} for i in ("1", "2", "4")])
    write_jsonl(tmp_path / "b.jsonl", [{"id": i, "b": 1} for i in ("2", "3", "4")])
    got = [(k, [r is not None for r in rows]) for k, rows in join_by_id(iter_jsonl(tmp_path / "a.jsonl"),
                                                                           iter_jsonl(tmp_path / "b.jsonl"))]
    assert got == [("1", [True, False]), ("2", [True, True]), ("3", [False, True]), ("4", [True, True])]
    with pytest.raises(ValueError, match="stream 1 is not sorted"):
        list(join_by_id([{"id": "2"}, {"id": "1"}], []))
    with pytest.raises(ValueError, match="not sorted"):
        list(join_by_id([{"id": "1"}, {"id": "1"}]))


def test_atomic_outs_get_the_mode_of_a_new_file(tmp_path):
    """The temp file is 0600 (mkstemp); the out must not keep that mode."""
    mask = os.umask(0o022)
    os.umask(mask)
    write_jsonl(tmp_path / "rows.jsonl", [{"id": "a"}])
    write_metrics(tmp_path / "m.json", {"n": 1})
    for name in ("rows.jsonl", "m.json"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~mask, name
