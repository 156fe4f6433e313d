"""``reflection-tuning compress`` on real Alpaca records against the scripted loopback server:
rows with an input are merged by the teacher, the others copied, failures rejected with a
reason, counts in = counts out, and the reference's own merge of the same records as reply."""

from __future__ import annotations

import json
import re
from pathlib import Path

from reflection_tuning.cli import main as cli
from reflection_tuning.infra.io import read_jsonl

REPO = Path(__file__).resolve().parents[3]


def test_compress_merges_real_rows(tmp_path, fake_openai, alpaca_records, shared_data, monkeypatch):
    compressed = json.loads((shared_data / "alpaca/cherry_alpaca_5_percent_compressed.json").read_text())
    with_input = [n for n, r in enumerate(alpaca_records) if r.get("input", "").strip()][:3]
    without = [n for n, r in enumerate(alpaca_records) if not r.get("input", "").strip()][:2]
    picked = sorted(with_input + without)
    records = [alpaca_records[n] for n in picked] + [{"instruction": "no output"}]  # the last is unreadable
    src = tmp_path / "in.json"
    src.write_text(json.dumps(records), encoding="utf-8")
    bad_instruction = alpaca_records[with_input[-1]]["instruction"]
    merged = {alpaca_records[n]["instruction"]: compressed[n]["instruction"] for n in with_input}

    def reply(body: dict):
        user = body["messages"][-1]["content"]
        instruction = re.search(r"\[Instruction\]\n(.*?)\n\n\[The Start of Input\]", user, re.S).group(1)
        if instruction == bad_instruction:
            return "I would merge them.", "stop"
        return f"[New Instruction] {merged[instruction]} [End]", "stop"

    fake_openai.reply = reply
    monkeypatch.chdir(REPO)  # the default prompt paths are relative to the repo root
    out, metrics = tmp_path / "merged.jsonl", tmp_path / "m.json"
    assert (
        cli(
            [
                "compress",
                "--input",
                str(src),
                "--output",
                str(out),
                "--metrics",
                str(metrics),
                "--params",
                str(REPO / "params.yaml"),
                "--base-url",
                fake_openai.url,
                "--reply-format",
                "markers",
                "--api-key-env",
                "",
                "--cache-dir",
                str(tmp_path / "cache"),
                "--reask",
                "0",
            ]
        )
        == 0
    )
    rows = read_jsonl(out)
    rejects = read_jsonl(tmp_path / "merged.rejects.jsonl")
    m = json.loads(metrics.read_text())
    assert m["records_in"] == 6 == m["rows_out"] + m["rows_rejected"]
    assert (m["rows_out"], m["rows_rejected"], m["rows_without_input"], m["merge_ok"], m["merge_parse_error"]) == (
        4, 2, 2, 2, 1)
    assert len(fake_openai.requests) == 3  # only the rows with an input were sent
    assert [r["merged"] for r in rows] == [alpaca_records[n].get("input", "").strip() != "" for n in picked
                                          if alpaca_records[n]["instruction"] != bad_instruction]
    for r in rows:
        assert r["input"] == "" and r["status"] == "ok"
        if r["merged"]:
            assert r["instruction"] in merged.values() and r["template_hash"] and r["attempts"] == 1
    assert {r["status"] for r in rejects} == {"unreadable", "parse_error"}
    assert all(r["reason"] for r in rejects)


def test_compress_user_errors_exit_2(tmp_path, capsys):
    """A tool like the stages: a missing params file (without every key as an option) or a missing
    input is one line on stderr and exit status 2, not a traceback."""
    out = str(tmp_path / "o.jsonl")
    assert cli(["compress", "--input", "x.json", "--output", out, "--params", str(tmp_path / "none.yaml")]) == 2
    assert cli(["compress", "--input", str(tmp_path / "missing.json"), "--output", out,
                "--params", str(REPO / "params.yaml")]) == 2
    assert "Traceback" not in capsys.readouterr().err
