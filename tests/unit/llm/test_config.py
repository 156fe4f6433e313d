"""The endpoint config (``teacher:``, ``judge:``): the value checks of :class:`EndpointConfig`."""

from __future__ import annotations

import argparse

import pytest
from shipped import params_config

from reflection_tuning.infra.command import Call, Section, Stage
from reflection_tuning.infra.config import ConfigError
from reflection_tuning.infra.errors import UserError
from reflection_tuning.llm.config import EndpointConfig, api_key, api_key_from_env
from reflection_tuning.llm.cost import Price


@pytest.mark.parametrize("bad", [{"input": 1.0}, {"input": 1, "output": 1, "cached": 0.5}, {"input": -1, "output": 1}])
def test_bad_prices_are_config_errors(bad):
    with pytest.raises(ConfigError):
        params_config(EndpointConfig, "teacher", price=bad)


def test_max_cost_needs_a_price():
    with pytest.raises(ConfigError, match="price"):
        params_config(EndpointConfig, "teacher", max_cost=1.0)
    assert params_config(EndpointConfig, "teacher", price={"input": 1, "output": 2}, max_cost=1.0).price_usd() == Price(
        1.0, 2.0
    )


def test_base_url_list_and_mode_validation():
    cfg = params_config(EndpointConfig, "teacher", base_url=["http://a/v1", "http://b/v1"])
    assert cfg.base_urls == ("http://a/v1", "http://b/v1") and hash(cfg)
    with pytest.raises(ConfigError):
        params_config(EndpointConfig, "teacher", base_url=["embedded"])
    with pytest.raises(ConfigError):
        params_config(EndpointConfig, "teacher", mode="offline")
    with pytest.raises(ConfigError, match="batch"):
        params_config(EndpointConfig, "teacher", mode="batch")  # the embedded server has no Batch API


def test_reply_format_and_timeouts():
    assert (
        params_config(EndpointConfig, "teacher", base_url="embedded", reply_format="json_schema").reply_format
        == "json_schema"
    )
    with pytest.raises(ConfigError, match="reply_format"):
        params_config(EndpointConfig, "teacher", base_url="http://x/v1", reply_format="xml")
    # the Batch API carries response_format in each body: structured replies in batch mode too
    assert params_config(EndpointConfig, "teacher", base_url="http://x/v1", reply_format="auto", mode="batch",
                         cache_dir="c").mode == "batch"
    with pytest.raises(ConfigError, match="length_bounds"):
        params_config(EndpointConfig, "teacher", length_bounds="on")
    with pytest.raises(ConfigError, match="max_request_errors"):
        params_config(EndpointConfig, "teacher", max_request_errors=1.5)
    assert params_config(EndpointConfig, "teacher", base_url="embedded").bounded
    assert not params_config(EndpointConfig, "teacher", base_url="http://x/v1").bounded
    assert params_config(EndpointConfig, "teacher", base_url="http://x/v1", length_bounds="always").bounded
    with pytest.raises(ConfigError, match="total_timeout"):
        params_config(EndpointConfig, "teacher", total_timeout=0)
    with pytest.raises(ConfigError, match="^judge: max_tokens must be >= 1"):
        params_config(EndpointConfig, "judge", max_tokens=0)


def test_a_value_error_names_its_section():
    with pytest.raises(ConfigError, match="^teacher: max_concurrency must be >= 1"):
        params_config(EndpointConfig, "teacher", max_concurrency=0)
    assert params_config(EndpointConfig, "judge") != params_config(EndpointConfig, "teacher")


def test_the_key_comes_from_the_variable_the_section_names():
    remote = params_config(EndpointConfig, "judge", base_url="https://api.example/v1", api_key_env="RT_KEY")
    assert api_key_from_env(remote, {"RT_KEY": "sk-1"}) == "sk-1"
    with pytest.raises(UserError, match=r"RT_KEY \(judge.api_key_env\) is not set"):
        api_key_from_env(remote, {}, section="judge")
    assert api_key_from_env(params_config(EndpointConfig, "teacher", base_url="embedded"), {}) is None


def test_a_calls_key_is_its_endpoint_sections_among_the_stages_sections(monkeypatch):
    remote = params_config(EndpointConfig, "judge", base_url="https://api.example/v1", api_key_env="RT_JUDGE_KEY")
    stage = Stage("toy", None, sections=(Section(Price, "price"), Section(EndpointConfig, "judge")))
    call = Call(argparse.Namespace(dataset=None), (None, remote), {}, {}, {}, stage=stage)
    monkeypatch.setenv("RT_JUDGE_KEY", "sk-test")
    assert api_key(call) == "sk-test"
    monkeypatch.delenv("RT_JUDGE_KEY")
    with pytest.raises(UserError, match=r"RT_JUDGE_KEY \(judge.api_key_env\) is not set"):
        api_key(call)
