"""The teacher client against a real HTTP server on loopback: cache, retries, sliding window."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import pytest

from reflection_tuning.llm.cache import cache_key
from reflection_tuning.llm.config import EndpointConfig
from reflection_tuning.llm.errors import EndpointRefused, TeacherRequestError
from reflection_tuning.llm.retry import retry_after_seconds
from reflection_tuning.llm.session import Session

from ..conftest import Failure, cfg_for, complete_all

KEY = "sk-test-SECRET-0123456789"
MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "Say {hi} in French."}]


def make(cfg: EndpointConfig, url: str | None, **kw) -> Session:
    return Session(cfg, template_hash="abc123", api_key=KEY, base_url=url, **kw)




async def _complete(teacher: Session, messages=MESSAGES):
    try:
        return await teacher.complete(messages)
    finally:
        await teacher.aclose()


def test_cache_key_ignores_endpoint_and_key_but_not_what_shapes_the_reply(tmp_path):
    cfg = cfg_for(tmp_path)
    a = Session(cfg, template_hash="t1", api_key="k1", base_url="http://a.example/v1")
    b = Session(dataclasses.replace(cfg, base_url="http://b.example/v1", api_key_env="OTHER"), template_hash="t1",
                api_key="k2", base_url="http://b.example/v1")
    assert a.key(MESSAGES) == b.key(MESSAGES) == cache_key(cfg, MESSAGES, "t1")
    assert len(a.key(MESSAGES)) == 64
    changed = [
        cache_key(dataclasses.replace(cfg, **{name: value}), MESSAGES, "t1")
        for name, value in [("model", "m2"), ("temperature", 0.7), ("top_p", 0.9), ("max_tokens", 99), ("seed", 1)]
    ]
    changed += [cache_key(cfg, MESSAGES, "t2"), cache_key(cfg, MESSAGES[1:], "t1")]
    assert len({a.key(MESSAGES), *changed}) == len(changed) + 1
    for t in (a, b):
        asyncio.run(t.aclose())


def test_reply_is_cached_and_reused_from_another_endpoint(tmp_path, fake_openai):
    cfg = cfg_for(tmp_path)
    first = asyncio.run(_complete(make(cfg, fake_openai.url)))
    assert (first.content, first.finish_reason, first.cached) == ("[Better Answer] fine [End]", "stop", False)
    assert (first.prompt_tokens, first.completion_tokens) == (11, 7)
    assert fake_openai.auth == [f"Bearer {KEY}"]
    # another endpoint and key, same request: served from disk, nothing sent, no client needed
    other = Session(dataclasses.replace(cfg, base_url="http://elsewhere/v1"), template_hash="abc123", api_key="k2")
    again = asyncio.run(_complete(other))
    assert again.cached and again.content == first.content
    assert (other.cache_hits, other.requests_sent, len(fake_openai.requests)) == (1, 0, 1)
    assert not any(KEY.encode() in f.read_bytes() for f in (tmp_path / "cache").rglob("*") if f.is_file())


def test_429_with_retry_after_then_500_then_success(tmp_path, fake_openai):
    fake_openai.failures = [Failure(429, {"Retry-After": "1"}), Failure(500)]
    teacher = make(cfg_for(tmp_path), fake_openai.url)
    t0 = time.monotonic()
    reply = asyncio.run(_complete(teacher))
    assert reply.content == "[Better Answer] fine [End]"
    assert len(fake_openai.requests) == 3
    stats = teacher.stats()
    assert (stats["requests_sent"], stats["requests_retried"]) == (3, 2)
    assert (stats["retries_rate_limited"], stats["retries_server_error"]) == (1, 1)
    assert time.monotonic() - t0 >= 0.9  # Retry-After honoured over the tiny backoff


def test_retry_after_ms_header_and_http_date_parse():
    class Resp:
        def __init__(self, headers):
            self.headers = headers

    class Exc(Exception):
        def __init__(self, headers):
            self.response = Resp(headers)

    assert retry_after_seconds(Exc({"retry-after-ms": "250"})) == pytest.approx(0.25)
    assert retry_after_seconds(Exc({"retry-after": "3"})) == 3.0
    assert retry_after_seconds(Exc({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"})) == 0.0
    assert retry_after_seconds(Exc({})) is None and retry_after_seconds(None) is None


def test_gives_up_after_max_retries_without_caching_or_leaking_the_key(tmp_path, fake_openai):
    # the server echoes the Authorization header in its error body: the message must not carry it
    fail = Failure(503, body={"error": {"message": f"overloaded; you sent Bearer {KEY}"}})
    fake_openai.failures = [fail] * 10
    cfg = cfg_for(tmp_path, max_retries=2)
    teacher = make(cfg, fake_openai.url)
    with pytest.raises(TeacherRequestError) as err:
        asyncio.run(_complete(teacher))
    assert len(fake_openai.requests) == 3  # 1 + max_retries
    assert "503" in str(err.value) and KEY not in str(err.value)
    assert make(cfg, None).cached(MESSAGES) is None  # failures are never cached


def test_client_errors_are_not_retried(tmp_path, fake_openai):
    """A 4xx is final: at the run's first request it stops the stage with the endpoint's words
    (EndpointRefused, a UserError); after that, it is the row's request error."""
    fake_openai.failures = [Failure(404, body={"error": {"message": "The model `m` does not exist",
                                                         "code": "model_not_found"}})]
    with pytest.raises(EndpointRefused, match="refused the first request.*404.*does not exist"):
        asyncio.run(_complete(make(cfg_for(tmp_path), fake_openai.url)))
    assert len(fake_openai.requests) == 1
    # a 400 that names no parameter may concern this request alone: its row's error, not retried
    fake_openai.failures = [Failure(400, body={"detail": "bad model"})]
    with pytest.raises(TeacherRequestError, match="400.*bad model"):
        asyncio.run(_complete(make(cfg_for(tmp_path), fake_openai.url)))
    assert len(fake_openai.requests) == 2


def test_timeouts_are_retried_then_reported(tmp_path, fake_openai):
    fake_openai.delay = 1.0
    teacher = make(cfg_for(tmp_path, timeout=0.2, max_retries=1), fake_openai.url)
    with pytest.raises(TeacherRequestError, match="(?i)timed? ?out"):
        asyncio.run(_complete(teacher))
    assert teacher.requests_sent == 2


def test_sliding_window_bounds_requests_in_flight(tmp_path, fake_openai):
    fake_openai.delay = 0.1
    teacher = make(cfg_for(tmp_path, max_concurrency=3, cache_dir=None), fake_openai.url)
    batch = [[{"role": "user", "content": f"question {i}"}] for i in range(12)]

    results = complete_all(teacher, batch)
    assert len(results) == 12 and all(r.content for r in results)
    assert fake_openai.max_in_flight == 3 and teacher.max_in_flight == 3
    assert teacher.requests_sent == 12 and teacher.cache_hits == 0


def test_complete_all_returns_errors_in_place_and_keeps_order(tmp_path, fake_openai):
    def reply(body):
        text = body["messages"][-1]["content"]
        return Failure(400) if text == "q1" else (f"answer to {text}", "length" if text == "q2" else "stop")

    fake_openai.reply = reply
    teacher = make(cfg_for(tmp_path), fake_openai.url)
    batch = [[{"role": "user", "content": f"q{i}"}] for i in range(3)]

    async def go():
        try:
            return await teacher.complete_all(batch)
        finally:
            await teacher.aclose()

    r0, r1, r2 = asyncio.run(go())
    assert r0.content == "answer to q0" and isinstance(r1, TeacherRequestError)
    assert r2.finish_reason == "length"


def test_no_endpoint_is_a_request_error(tmp_path):
    teacher = Session(cfg_for(tmp_path), template_hash="x")
    with pytest.raises(TeacherRequestError, match="no teacher endpoint"):
        asyncio.run(_complete(teacher))


def test_round_robin_over_several_endpoints_and_retries_move_on(tmp_path, fake_openai):
    second = fake_openai.url.replace("/v1", "/second/v1")
    fake_openai.failures = [Failure(500)]  # the very first attempt fails; its retry goes to the other endpoint
    urls = [fake_openai.url, second]
    teacher = make(cfg_for(tmp_path, cache_dir=None, base_url=urls), urls)
    batch = [[{"role": "user", "content": f"question {i}"}] for i in range(8)]

    results = complete_all(teacher, batch)
    assert all(r.content for r in results)
    first_hits = fake_openai.paths.count("/v1/chat/completions")
    second_hits = fake_openai.paths.count("/second/v1/chat/completions")
    assert first_hits + second_hits == 9 and abs(first_hits - second_hits) <= 1
    stats = teacher.stats()
    assert stats["endpoints"] == 2 and stats["requests_per_endpoint_max"] - stats["requests_per_endpoint_min"] <= 1


def test_cost_cap_stops_sending_and_keeps_what_came_back(tmp_path, fake_openai):
    from reflection_tuning.llm.cost import Budget, Price, prompt_tokens_upper_bound
    from reflection_tuning.llm.errors import TeacherCostCap

    cfg = cfg_for(tmp_path, max_concurrency=1, max_tokens=10)
    batch = [[{"role": "user", "content": f"question {i}"}] for i in range(6)]
    price = Price(input=1e6, output=1e6)  # USD 1 per token: easy arithmetic
    hold = price.cost(prompt_tokens_upper_bound(batch[0]), cfg.max_tokens)
    budget = Budget(price, cap=18 * 2 + hold)  # the fake bills 11 + 7 = 18 tokens a reply
    teacher = make(cfg, fake_openai.url, budget=budget)

    results = complete_all(teacher, batch)
    sent = [r for r in results if not isinstance(r, TeacherCostCap)]
    assert len(sent) == 3 and len(fake_openai.requests) == 3
    assert all(isinstance(r, TeacherCostCap) for r in results[3:])
    assert budget.spent == pytest.approx(54.0) and budget.spent <= budget.cap and budget.reached
    assert make(cfg, None).cached(batch[2]) is not None  # what came back is kept


def test_a_request_too_long_for_the_context_is_its_row_error_not_the_stage(tmp_path, fake_openai):
    """OpenAI names ``messages`` when a prompt exceeds the context: that concerns one request."""
    fake_openai.failures = [Failure(400, body={"error": {
        "message": "This model's maximum context length is 8192 tokens.", "type": "invalid_request_error",
        "param": "messages", "code": "context_length_exceeded"}})]
    with pytest.raises(TeacherRequestError, match="maximum context length"):
        asyncio.run(_complete(make(cfg_for(tmp_path), fake_openai.url)))
