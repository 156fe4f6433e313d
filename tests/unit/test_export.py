"""The export's pieces: the params hash, the git commit, every variant with its status and scores."""

from __future__ import annotations

import pytest
from shipped import params_config

from reflection_tuning.export import Config, git_commit, params_hash, variant_rows
from reflection_tuning.infra.config import ConfigError
from reflection_tuning.infra.io import write_jsonl


def test_params_hash_is_canonical():
    assert params_hash({"a": 1, "b": [1, 2]}) == params_hash({"b": [1, 2], "a": 1})
    assert params_hash({"a": 1}) != params_hash({"a": 2}) and len(params_hash({})) == 12


def test_git_commit_outside_git_is_unknown(tmp_path):
    assert git_commit(tmp_path) == "unknown"


def test_variant_rows_carry_status_and_only_ok_scores(alpaca_rows, tmp_path):
    orig = alpaca_rows[:2]
    write_jsonl(tmp_path / "original.jsonl", orig)
    write_jsonl(tmp_path / "both.jsonl", [{**orig[0], "status": "parse_error", "teacher_model": "t"}])
    write_jsonl(tmp_path / "scores.jsonl", [
        {"id": orig[0]["id"], "variant": "original", "status": "ok", "ifd": 0.5, "rifd": 0.7},
        {"id": orig[1]["id"], "variant": "original", "status": "nan", "ifd": 0.1, "rifd": 0.2}],
        sort_by=("id", "variant"))
    rows = {(r["id"], r["variant"]): r for r in variant_rows(tmp_path)}
    assert len(rows) == 3
    assert (rows[orig[0]["id"], "original"]["ifd"], rows[orig[1]["id"], "original"]["ifd"]) == (0.5, None)
    both = rows[orig[0]["id"], "both"]
    assert (both["status"], both["teacher_model"], both["score_status"]) == ("parse_error", "t", None)


def test_token_env_must_name_a_variable():
    with pytest.raises(ConfigError, match="token_env"):
        params_config(Config, "export", token_env="")
