"""Stage ``reflect_instruction`` against the scripted loopback server: one row per original, its
input folded into the rewritten instruction (every status and the CLI are in
tests/unit/stages/test_reflect_loop.py)."""

from __future__ import annotations

import json

from shipped import PARAMS, REPO

from reflection_tuning import status as st
from reflection_tuning.infra.io import read_jsonl, write_jsonl
from reflection_tuning.rows import canonical
from reflection_tuning.stages import reflect_instruction


def test_the_rewrite_is_self_contained_and_keeps_the_sample_id(fake_openai, tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)  # the params' prompt files, as under DVC; every path written is under tmp_path
    original = canonical("Translate the sentence into English.", "Je pense, donc je suis.",
                         "I think, therefore I am.", "alpaca")
    write_jsonl(tmp_path / "original.jsonl", [original])
    fake_openai.reply = lambda body: ("Critique: name the language.\n**[New Instruction]** Translate the French "
                                      "sentence 'Je pense, donc je suis.' into English. [End]\n"
                                      "**[New Answer]** \"I think, therefore I am\": Descartes' cogito. [End]", "stop")
    assert (
        reflect_instruction.main(
            [
                "--params",
                str(PARAMS),
                "--input",
                str(tmp_path / "original.jsonl"),
                "--output",
                str(tmp_path / "instruction.jsonl"),
                "--base-url",
                fake_openai.url,
                "--reply-format",
                "markers",
                "--model",
                "teacher-x",
                "--api-key-env",
                "",
                "--max-retries",
                "0",
                "--cache-dir",
                str(tmp_path / "cache"),
            ]
        )
        == 0
    )
    sent = next(m["content"] for m in fake_openai.requests[0]["messages"] if m["role"] == "user")
    assert "Je pense, donc je suis." in sent  # the teacher sees the input it is asked to fold in
    (row,) = read_jsonl(tmp_path / "instruction.jsonl")
    assert (row["id"], row["variant"], row["source"], row["status"]) == (original["id"], "instruction", "alpaca",
                                                                         st.OK)
    assert row["instruction"] == "Translate the French sentence 'Je pense, donc je suis.' into English."
    assert (row["input"], row["output"]) == ("", "\"I think, therefore I am\": Descartes' cogito.")
    assert row["teacher_model"] == "teacher-x" and row["template_hash"]
    metrics = json.loads((tmp_path / "instruction.metrics.json").read_text())
    assert (metrics["rows_in"], metrics["rows_ok"]) == (1, 1)
