"""The glue of the commands that send an LLM step: the endpoint's key from the environment, and the
check of the rows they read before sending anything (their ``main`` runs in
tests/unit/stages/test_reflect_loop.py)."""

from __future__ import annotations

import argparse

import pytest
from shipped import params_config

from reflection_tuning.infra.command import Call
from reflection_tuning.infra.errors import UserError
from reflection_tuning.llm.config import EndpointConfig
from reflection_tuning.stages import judge
from reflection_tuning.stages.llm_stage import api_key, check_rows


def test_the_key_is_read_from_the_variable_the_endpoint_section_names(monkeypatch):
    remote = params_config(EndpointConfig, "judge", base_url="https://api.example/v1", api_key_env="RT_JUDGE_KEY")
    call = Call(argparse.Namespace(dataset=None), (remote, None), {}, {}, {}, stage=judge.STAGE)
    monkeypatch.setenv("RT_JUDGE_KEY", "sk-test")
    assert api_key(call) == "sk-test"
    monkeypatch.delenv("RT_JUDGE_KEY")
    with pytest.raises(UserError, match=r"RT_JUDGE_KEY \(judge.api_key_env\) is not set"):
        api_key(call)


def test_check_rows_names_the_bad_row_and_what_to_do(alpaca_rows):
    check_rows(alpaca_rows[:3], "in.jsonl")
    bad = [*alpaca_rows[:2], {"id": "x", "instruction": "Q", "output": None}]
    with pytest.raises(UserError, match=r"in.jsonl: row 3 \(id x\) has no string \['output'\]; give the rows fetch"):
        check_rows(bad, "in.jsonl")
