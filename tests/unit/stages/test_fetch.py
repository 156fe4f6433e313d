"""fetch on the real Alpaca file, plus BOM / JSONL / parquet / URL / ShareGPT / shard copies of real rows."""

from __future__ import annotations

import functools
import http.server
import json
import threading
from pathlib import Path

import pytest
from shipped import params_config

from reflection_tuning import cli
from reflection_tuning.infra.config import ConfigError
from reflection_tuning.infra.io import read_jsonl
from reflection_tuning.stages.fetch import Config, Outputs, SourceError, main, run


def _cfg(**kw) -> Config:
    """A dataset entry as the shipped ``datasets.alpaca``, reading every row unless ``limit`` is given."""
    return params_config(Config, "datasets.alpaca", **{"limit": None, **kw})


def _outputs(tmp_path: Path) -> Outputs:
    return Outputs(rows=tmp_path / "rows.jsonl", rejects=tmp_path / "rejects.jsonl", metrics=tmp_path / "m.json")


def _metrics(out: Outputs) -> dict:
    return json.loads(out.metrics.read_text())


def test_real_alpaca_sample_is_reproducible(shared_data, tmp_path):
    source = str(shared_data / "alpaca" / "cherry_alpaca_5_percent.json")
    a, b = _outputs(tmp_path / "a"), _outputs(tmp_path / "b")
    run(_cfg(source=source, limit=16, seed=0), a)
    run(_cfg(source=source, limit=16, seed=0), b)
    assert a.rows.read_bytes() == b.rows.read_bytes()
    rows = read_jsonl(a.rows)
    assert len(rows) == 16
    assert [r["id"] for r in rows] == sorted(r["id"] for r in rows)
    assert set(rows[0]) == {"id", "instruction", "input", "output", "source"}
    m = _metrics(a)
    assert m["read"] == 3111 == m["kept"] + m["rejected"] + m["duplicates"]
    assert m["sampled"] == 16
    run(_cfg(source=source, limit=16, seed=1), b)
    assert a.rows.read_bytes() != b.rows.read_bytes()


def test_bad_rows_go_to_rejects_with_line_and_reason(alpaca_records, tmp_path):
    good = alpaca_records[:5]
    lines = [json.dumps(r) for r in good]
    lines += [
        "{not json",
        json.dumps({"instruction": "Say hi.", "input": ""}),                     # missing output
        json.dumps({"instruction": "   ", "input": "", "output": "Hi."}),       # empty instruction
        json.dumps({"instruction": ["a"], "input": "", "output": "Hi."}),       # not a string
        json.dumps(good[0]),                                                    # duplicate of line 1
        json.dumps([1, 2]),                                                     # not an object
    ]
    src = tmp_path / "mixed.jsonl"
    src.write_text("\n".join(lines) + "\n")
    out = _outputs(tmp_path)
    run(_cfg(source=str(src)), out)
    rejects = {r["line"]: r["reason"] for r in read_jsonl(out.rejects)}
    assert rejects[6].startswith("bad JSON")
    assert rejects[7] == "missing field 'output'"
    assert rejects[8] == "empty field 'instruction'"
    assert rejects[9] == "field 'instruction' is list, not a string"
    assert rejects[10] == "duplicate of line 1"
    assert rejects[11] == "record is list, not an object"
    m = _metrics(out)
    assert (m["read"], m["kept"], m["rejected"], m["duplicates"]) == (11, 5, 5, 1)
    assert len(read_jsonl(out.rows)) == 5


def test_wizardlm_and_sharegpt_formats(alpaca_records, tmp_path):
    recs = [r for r in alpaca_records if not r["input"]][:3]
    wiz = tmp_path / "wiz.json"
    wiz.write_text(json.dumps([{"instruction": r["instruction"], "output": r["output"]} for r in recs]))
    share = tmp_path / "share.jsonl"
    share.write_text("".join(json.dumps({"conversations": [
        {"from": "system", "value": "be nice"},
        {"from": "human", "value": r["instruction"]},
        {"from": "gpt", "value": r["output"]},
        {"from": "human", "value": "and again?"},
    ]}) + "\n" for r in recs))
    a, b = _outputs(tmp_path / "a"), _outputs(tmp_path / "b")
    run(_cfg(source=str(wiz), format="wizardlm"), a)
    run(_cfg(source=str(share), format="sharegpt"), b)
    ids_a = [(r["id"], r["instruction"], r["output"]) for r in read_jsonl(a.rows)]
    ids_b = [(r["id"], r["instruction"], r["output"]) for r in read_jsonl(b.rows)]
    assert ids_a == ids_b and len(ids_a) == 3


def test_parquet_source(alpaca_records, tmp_path):
    import datasets

    path = tmp_path / "alpaca.parquet"
    datasets.Dataset.from_list(alpaca_records[:7]).to_parquet(str(path))
    out = _outputs(tmp_path)
    run(_cfg(source=str(path)), out)
    assert _metrics(out)["kept"] == 7


def test_http_source(shared_data, tmp_path):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(shared_data / "alpaca"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/cherry_alpaca_5_percent.json"
        out = _outputs(tmp_path)
        run(_cfg(source=url, limit=4), out)
        assert _metrics(out)["read"] == 3111
        with pytest.raises(SourceError, match="not found"):
            run(_cfg(source=url.replace("cherry", "missing")), out)
    finally:
        server.shutdown()


def test_unreachable_sources_fail_clearly(tmp_path):
    with pytest.raises(SourceError, match="set datasets.<name>.source"):
        run(_cfg(source="tatsu-lab/alpaca"), _outputs(tmp_path))  # HF_HUB_OFFLINE=1 in tests
    with pytest.raises(SourceError, match="not found"):
        run(_cfg(source=str(tmp_path / "nope.json")), _outputs(tmp_path))


def test_cli_reads_params_section(shared_data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    source = shared_data / "alpaca" / "cherry_alpaca_5_percent.json"
    entry = f"  alpaca:\n    source: {source}\n    format: alpaca\n    limit: 3\n    seed: 0\n    input: merge\n"
    (tmp_path / "params.yaml").write_text("datasets:\n" + entry)
    assert main(["--dataset", "alpaca"]) == 0
    assert len(read_jsonl(tmp_path / "data/alpaca/original.jsonl")) == 3
    assert main(["--dataset=alpaca", "--limit", "2", "--output", "two.jsonl"]) == 0  # --dataset=K too
    assert len(read_jsonl(tmp_path / "two.jsonl")) == 2
    assert json.loads((tmp_path / "two.metrics.json").read_text())["sampled"] == 2  # beside --output
    assert json.loads((tmp_path / "metrics/alpaca/fetch.json").read_text())["sampled"] == 3


def test_format_and_input_are_checked_when_the_config_loads(tmp_path, monkeypatch, capfd):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text("datasets:\n  x:\n    source: nowhere.json\n    format: alpacca\n"
                                          "    limit: null\n    seed: 0\n    input: merge\n")
    assert cli.main(["fetch", "--dataset=x"]) == 2  # a user error: one line, before any reading
    err = capfd.readouterr().err
    assert "format is 'alpacca'; expected one of ['alpaca', 'wizardlm', 'sharegpt']" in err and "Traceback" not in err
    with pytest.raises(ConfigError, match="input is 'drop'"):
        _cfg(source="x", input="drop")
    assert not (tmp_path / "data").exists()


def test_bom_prefixed_copy_of_real_alpaca_keeps_every_row(shared_data, tmp_path):
    import codecs

    real = shared_data / "alpaca" / "cherry_alpaca_5_percent.json"
    plain, bom = _outputs(tmp_path / "plain"), _outputs(tmp_path / "bom")
    run(_cfg(source=str(real)), plain)
    for name, text in (("bom.json", real.read_bytes()),
                       ("bom.jsonl", "".join(json.dumps(r) + "\r\n" for r in json.loads(real.read_text())).encode())):
        copy = tmp_path / name
        copy.write_bytes(codecs.BOM_UTF8 + text)
        run(_cfg(source=str(copy)), bom)
        m = _metrics(bom)
        assert (m["read"], m["kept"], m["rejected"]) == (3111, 3111, 0), name
        assert [r["id"] for r in read_jsonl(bom.rows)] == [r["id"] for r in read_jsonl(plain.rows)]


def test_input_merge_is_the_default_and_keep_keeps_it(shared_data, tmp_path):
    source = str(shared_data / "alpaca" / "cherry_alpaca_5_percent.json")
    merged, kept = _outputs(tmp_path / "m"), _outputs(tmp_path / "k")
    run(_cfg(source=source), merged)
    run(_cfg(source=source, input="keep"), kept)
    by_id = {r["id"]: r for r in read_jsonl(kept.rows)}
    rows = read_jsonl(merged.rows)
    assert set(by_id) == {r["id"] for r in rows}  # the id does not depend on the mode
    assert all(r["input"] == "" for r in rows)
    with_input = [r for r in rows if by_id[r["id"]]["input"].strip()]
    assert _metrics(merged)["inputs_merged"] == len(with_input) > 0
    r = with_input[0]
    assert r["instruction"] == by_id[r["id"]]["instruction"].rstrip() + "\n\n" + by_id[r["id"]]["input"].strip()
    with pytest.raises(ValueError, match="input mode"):  # a config built by hand is checked by run
        run(Config(source, "alpaca", None, 0, "drop"), merged)


def test_cli_outside_a_dataset_writes_beside_the_output(shared_data, tmp_path, monkeypatch, capfd):
    monkeypatch.chdir(tmp_path)
    source = shared_data / "alpaca" / "cherry_alpaca_5_percent.json"
    bad = tmp_path / "rows.jsonl"
    bad.write_text("{oops\n" + json.dumps(json.loads(source.read_text())[0]) + "\n")
    # no params entry: every key of one comes from the options
    keys = ["--format", "alpaca", "--limit", "null", "--seed", "0", "--input", "merge"]
    assert main(["--source", str(bad), *keys, "--output", "out/rows.out.jsonl", "--log-level", "INFO"]) == 0
    log = capfd.readouterr().err  # main sets up logging to stderr itself
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert written == ["out/rows.out.jsonl", "out/rows.out.metrics.json", "out/rows.out.rejects.jsonl", "rows.jsonl"]
    for name in written[:3]:
        assert f"wrote {name}" in log
    assert json.loads((tmp_path / "out/rows.out.metrics.json").read_text())["rejected"] == 1
    assert not (tmp_path / "data").exists() and not (tmp_path / "metrics").exists()
    with pytest.raises(SystemExit):
        main(["--source", str(bad), *keys])  # no --dataset and no --output: nowhere to write
    with pytest.raises(ConfigError, match="missing keys"):
        main(["--source", str(bad), "--output", "o.jsonl"])  # no entry to take the other keys from


def test_empty_source_writes_empty_outputs(tmp_path):
    src = tmp_path / "empty.jsonl"
    src.write_bytes(b"")
    out = _outputs(tmp_path)
    m = run(_cfg(source=str(src)), out)
    assert (m["read"], m["kept"]) == (0, 0) and read_jsonl(out.rows) == []


def test_shard_rejects_name_their_shard(alpaca_records, tmp_path):
    shards = tmp_path / "shards"
    shards.mkdir()
    for i in range(2):
        (shards / f"part-{i}.jsonl").write_text(json.dumps(alpaca_records[i]) + "\n{bad\n")
    out = _outputs(tmp_path)
    m = run(_cfg(source=str(shards)), out)
    assert (m["read"], m["kept"], m["rejected"]) == (4, 2, 2)
    assert [(r["id"], r["shard"]) for r in read_jsonl(out.rejects)] == [
        ("part-0.jsonl:line-000000002", "part-0.jsonl"), ("part-1.jsonl:line-000000002", "part-1.jsonl")]
