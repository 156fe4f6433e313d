"""Both reflection stages end to end against the scripted loopback server: every status,
the `both` chaining, CLI paths, the key handling, and a rerun served from the cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from shipped import PARAMS, link_prompt_files

from reflection_tuning.infra.config import ConfigError
from reflection_tuning.infra.errors import UserError
from reflection_tuning.infra.io import read_jsonl, write_jsonl
from reflection_tuning.llm import runner
from reflection_tuning.stages import reflect_instruction, reflect_response

from ..conftest import Failure

REPO = Path(__file__).resolve().parents[3]
SECRET = "sk-fake-DO-NOT-LEAK-42"


def _user(body: dict) -> str:
    return next(m["content"] for m in body["messages"] if m["role"] == "user")


def scripted(rows: list[dict]):
    """Row 0: ok everywhere; row 1: parse error; row 2: truncated; row 3: HTTP 400."""

    def reply(body: dict):
        text = _user(body)
        if "[New Instruction]" in text:  # instruction reflection
            if rows[0]["instruction"] in text:
                text = ("Critique...\n**[New Instruction]** Reflected Q0 about an Endpoint. [End]\n"
                        "**[New Answer]** Reflected A0 [End]")
                return text, "stop"
            if rows[1]["instruction"] in text:
                return "I cannot rewrite this.", "stop"
            if rows[2]["instruction"] in text:
                return "[New Instruction] cut off mid", "length"
            return Failure(400, body={"detail": "rejected"})
        if "Reflected Q0 about an Endpoint." in text:  # response reflection of the `both` row
            return "[Better Answer] Better A0, **really**. [End]", "stop"
        if rows[1]["instruction"] in text:
            return "[Better Answer] your answer [End]", "stop"
        return "[Better Answer] A better answer. [End]", "stop"

    return reply


@pytest.fixture
def workdir(tmp_path, monkeypatch, alpaca_rows):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RT_FAKE_KEY", SECRET)
    rows = alpaca_rows[:4]
    write_jsonl(tmp_path / "data/alpaca/original.jsonl", rows)
    return tmp_path, rows


def cli(fake_url: str, *extra: str) -> list[str]:
    return [
        "--dataset=alpaca",
        "--params",
        str(PARAMS),
        "--base-url",
        fake_url,
        "--reply-format",
        "markers",
        "--model",
        "teacher-x",
        "--api-key-env",
        "RT_FAKE_KEY",
        "--max-retries",
        "0",
        "--cache-dir",
        "cache/teacher",
        *extra,
    ]


@pytest.mark.parametrize("chunk_rows", [None, 1], ids=["one-chunk", "row-by-row"])
def test_statuses_chaining_and_rerun(workdir, fake_openai, monkeypatch, chunk_rows):
    """Streamed a row at a time, the stages write and count exactly what one chunk gives."""
    if chunk_rows:
        monkeypatch.setattr(runner, "CHUNK_ROWS", chunk_rows)
    tmp, rows = workdir
    fake_openai.reply = scripted(rows)
    prompts = ["--prompt-file", str(REPO / "src/reflection_tuning/steps/reflect_instruction.j2"),
               "--system-file", str(REPO / "src/reflection_tuning/steps/reflect_instruction.system.txt")]
    assert reflect_instruction.main(cli(fake_openai.url, *prompts)) == 0
    out = {r["id"]: r for r in read_jsonl(tmp / "data/alpaca/instruction.jsonl")}
    assert [out[r["id"]]["status"] for r in rows] == ["ok", "parse_error", "truncated", "request_error"]
    ok = out[rows[0]["id"]]
    assert (ok["instruction"], ok["input"], ok["output"]) == ("Reflected Q0 about an Endpoint.", "", "Reflected A0")
    assert ok["variant"] == "instruction" and ok["teacher_model"] == "teacher-x" and len(ok["template_hash"]) == 12
    for r in rows[1:]:
        bad = out[r["id"]]
        assert bad["instruction"] is None and bad["input"] is None and bad["output"] is None
        assert bad["error"] and bad["source"] == "cherry_alpaca"
    assert out[rows[2]["id"]]["raw_reply"] == "[New Instruction] cut off mid"
    assert "400" in out[rows[3]["id"]]["error"]
    m = json.loads((tmp / "metrics/alpaca/reflect_instruction.json").read_text())
    assert (m["rows_in"], m["rows_out"], m["rows_ok"], m["rows_parse_error"], m["rows_truncated"],
            m["rows_request_error"], m["rows_upstream_unusable"]) == (4, 4, 1, 1, 1, 1, 0)
    # the parse error and the truncated reply were asked once more (teacher.reask 1, seed 1), in vain
    assert (m["requests_sent"], m["cache_hits"], m["completion_tokens"], m["requests_reasked"]) == (6, 0, 35, 2)
    assert (m["rows_ok_first_try"], m["rows_ok_reasked"]) == (1, 0)
    assert [out[r["id"]]["attempts"] for r in rows] == [1, 2, 2, 1]
    assert sorted(b.get("seed") for b in fake_openai.requests) == [0, 0, 0, 0, 1, 1]

    prompts = ["--prompt-file", str(REPO / "src/reflection_tuning/steps/reflect_response.j2"),
               "--system-file", str(REPO / "src/reflection_tuning/steps/reflect_response.system.txt")]
    assert reflect_response.main(cli(fake_openai.url, *prompts)) == 0
    resp = {r["id"]: r for r in read_jsonl(tmp / "data/alpaca/response.jsonl")}
    both = {r["id"]: r for r in read_jsonl(tmp / "data/alpaca/both.jsonl")}
    assert len(resp) == len(both) == 4
    assert [resp[r["id"]]["status"] for r in rows] == ["ok", "parse_error", "ok", "ok"]
    r0 = resp[rows[0]["id"]]
    assert (r0["instruction"], r0["input"], r0["output"]) == (rows[0]["instruction"], rows[0]["input"],
                                                              "A better answer.")
    assert [both[r["id"]]["status"] for r in rows] == ["ok", "upstream_unusable", "upstream_unusable",
                                                       "upstream_unusable"]
    b0 = both[rows[0]["id"]]
    assert (b0["variant"], b0["instruction"], b0["input"], b0["output"]) == (
        "both", "Reflected Q0 about an Endpoint.", "", "Better A0, **really**.")
    assert "instruction variant is truncated" in both[rows[2]["id"]]["error"]
    m = json.loads((tmp / "metrics/alpaca/reflect_response.json").read_text())
    assert (m["rows_in"], m["response_rows_out"], m["both_rows_out"], m["both_rows_upstream_unusable"]) == (4, 4, 4, 3)
    assert m["requests_sent"] == 6  # 4 responses + 1 `both` + 1 re-ask of the echoed answer

    # the key went to the server, and nowhere else
    assert set(fake_openai.auth) == {f"Bearer {SECRET}"}
    for f in tmp.rglob("*"):
        if f.is_file():
            assert SECRET.encode() not in f.read_bytes(), f

    # rerun: everything that came back is cached, only the failed request is sent again
    sent = len(fake_openai.requests)
    assert reflect_response.main(cli(fake_openai.url, *prompts)) == 0
    m = json.loads((tmp / "metrics/alpaca/reflect_response.json").read_text())
    assert (m["requests_sent"], m["cache_hits"], m["prompt_tokens_sent"]) == (0, 6, 0)  # re-asks cached too
    assert len(fake_openai.requests) == sent


def test_explicit_paths_without_dataset(tmp_path, fake_openai, alpaca_rows, monkeypatch):
    monkeypatch.chdir(REPO)  # the default prompt paths in Config are relative to the repo root
    src = tmp_path / "in.jsonl"
    write_jsonl(src, alpaca_rows[4:6])
    argv = ["--params", str(PARAMS), "--base-url", fake_openai.url, "--reply-format", "markers", "--api-key-env", "",
            "--cache-dir", str(tmp_path / "c"), "--input", str(src), "--output", str(tmp_path / "o.jsonl"),
            "--metrics", str(tmp_path / "m.json")]
    assert reflect_instruction.main(argv) == 0
    assert [r["status"] for r in read_jsonl(tmp_path / "o.jsonl")] == ["parse_error", "parse_error"]
    assert fake_openai.auth == ["Bearer no-key"] * 4  # two rows, each re-asked once


def test_cli_errors(tmp_path, fake_openai, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    link_prompt_files(tmp_path)
    with pytest.raises(SystemExit):
        reflect_instruction.main(["--params", str(PARAMS), "--base-url", fake_openai.url])  # no paths, no dataset
    assert "--input is required without --dataset" in capsys.readouterr().err
    monkeypatch.delenv("RT_UNSET_KEY", raising=False)
    for name in ("original", "instruction"):  # the inputs exist: the key is what is missing
        write_jsonl(tmp_path / f"data/y/{name}.jsonl", [])
    with pytest.raises(UserError, match="RT_UNSET_KEY \\(teacher.api_key_env\\) is not set"):
        reflect_response.main(["--dataset", "y", "--params", str(PARAMS), "--base-url", fake_openai.url,
                               "--api-key-env", "RT_UNSET_KEY"])
    with pytest.raises(UserError, match="missing input data/x/original.jsonl"):
        reflect_instruction.main(["--dataset", "x", "--params", str(PARAMS), "--base-url", fake_openai.url,
                                  "--api-key-env", ""])
    with pytest.raises(ConfigError, match="max_concurrency"):
        reflect_instruction.main(["--dataset", "x", "--params", str(PARAMS), "--max-concurrency", "0"])
    assert fake_openai.requests == []


def test_a_structured_reply_carries_the_step_schema_in_the_openai_form(workdir, fake_openai):
    """``reply_format: json_schema``: each request holds ``{type: json_schema, json_schema: {name,
    schema, strict}}`` with the step's schema (unbounded for a remote endpoint: OpenAI's strict
    keywords only), and the JSON reply becomes the row."""
    from reflection_tuning.steps.reflect_instruction import ReflectInstruction

    schema = ReflectInstruction.shipped().schema

    tmp, rows = workdir
    template, system = ReflectInstruction.template_files()
    reply = {"critique": "The instruction asks for very little.", "instruction": "Name three primary colours.",
             "output": "Red, yellow and blue are the traditional primaries."}
    fake_openai.reply = lambda body: (json.dumps(reply), "stop")
    assert reflect_instruction.main(cli(fake_openai.url, "--reply-format", "json_schema", "--prompt-file",
                                        str(template), "--system-file", str(system))) == 0
    assert {json.dumps(b["response_format"], sort_keys=True) for b in fake_openai.requests} == {json.dumps(
        {"type": "json_schema", "json_schema": {"name": "reflect_instruction", "schema": schema, "strict": True}},
        sort_keys=True)}
    out = read_jsonl(tmp / "data/alpaca/instruction.jsonl")
    assert {(r["status"], r["instruction"], r["critique"]) for r in out} == {
        ("ok", reply["instruction"], reply["critique"])} and len(out) == len(rows)
