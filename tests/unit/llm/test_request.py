"""The request body (one builder for the online and the Batch API modes) and its adaptation to
an endpoint's refusals. The refusals are OpenAI's own words, as its API answers them (the
``error`` objects are quoted in tests/unit/stages/test_providers.py with their sources)."""

from __future__ import annotations

from shipped import params_config

from reflection_tuning.llm.config import EndpointConfig
from reflection_tuning.llm.request import ADAPTABLE, Adaptations, body_key, request_body, split_sdk

MESSAGES = [{"role": "user", "content": "Name a colour."}]
FORMAT = {"type": "json_schema", "json_schema": {"name": "s", "schema": {"type": "object"}, "strict": True}}


def test_the_body_sends_the_token_cap_current_endpoints_read_and_no_null_sampling():
    cfg = params_config(EndpointConfig, "teacher", base_url="https://api.openai.com/v1", model="gpt-5-mini",
                        temperature=None, top_p=None, seed=7, max_tokens=300)
    body = request_body(cfg, MESSAGES, response_format=FORMAT)
    assert body == {"model": "gpt-5-mini", "messages": MESSAGES, "max_completion_tokens": 300, "seed": 7,
                    "response_format": FORMAT}
    embedded = params_config(EndpointConfig, "teacher")  # llama.cpp's DRY only where llama.cpp reads it
    assert {"dry_multiplier", "repeat_penalty"} <= set(request_body(embedded, MESSAGES))
    kwargs, extra = split_sdk(request_body(embedded, MESSAGES))
    assert "dry_multiplier" in extra and "dry_multiplier" not in kwargs and "max_completion_tokens" in kwargs


def test_a_refused_parameter_is_dropped_or_renamed_once_and_counted():
    cfg = params_config(EndpointConfig, "teacher", base_url="https://api.openai.com/v1", model="gpt-5-mini")
    a = Adaptations()
    body = request_body(cfg, MESSAGES, response_format=FORMAT, adaptations=a)
    said = ("Unsupported value: 'temperature' does not support 0 with this model. Only the default (1) value is "
            "supported.")
    assert "temperature dropped" in a.adapt(body, "temperature", said, "auto")
    assert a.adapt(body, "max_completion_tokens", "Unsupported parameter", "auto").startswith(
        "max_completion_tokens renamed max_tokens")
    after = request_body(cfg, MESSAGES, response_format=FORMAT, adaptations=a)
    assert "temperature" not in after and after["max_tokens"] == cfg.max_tokens and "max_completion_tokens" not in after
    assert a.adapt(after, "temperature", said, "auto") is None  # not in the body any more: nothing to adapt
    assert a.adapt(after, "messages", "bad", "auto") is None  # a parameter no request can go without
    # response_format: markers under auto only
    assert Adaptations().adapt(after, "response_format", "not supported", "json_schema") is None
    assert "markers" in a.adapt(after, "response_format", "not supported", "auto")
    assert "response_format" not in request_body(cfg, MESSAGES, response_format=FORMAT, adaptations=a)
    m = a.metrics()
    assert set(m) == {"adaptations", "reply_format_markers", *(f"adapted_{p}" for p in ADAPTABLE)}
    assert (m["adaptations"], m["adapted_temperature"], m["adapted_max_completion_tokens"], m["adapted_top_p"],
            m["reply_format_markers"]) == (3, 1, 1, 0, 1)
    assert Adaptations.from_json(a.to_json()) == a


def test_the_key_is_the_body_as_sent():
    cfg = params_config(EndpointConfig, "teacher", base_url="https://api.openai.com/v1")
    body = request_body(cfg, MESSAGES)
    assert body_key(body, "t") == body_key(dict(reversed(body.items())), "t") != body_key(body, "u")
    dropped = Adaptations(dropped=["temperature"])
    assert body_key(request_body(cfg, MESSAGES, adaptations=dropped), "t") != body_key(body, "t")
