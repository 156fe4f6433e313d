"""The one runner of every LLM step, against the scripted loopback server: statuses, the
re-ask (its own seed and cache key, first-try and re-asked successes counted apart), a step
that reads cut replies, and the per-status metrics."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from shipped import params_config

from reflection_tuning import status as st
from reflection_tuning.infra.config import ConfigError
from reflection_tuning.llm import runner
from reflection_tuning.llm.cache import Completion
from reflection_tuning.llm.config import EndpointConfig
from reflection_tuning.llm.outcome import status_metrics, token_metrics
from reflection_tuning.llm.runner import iter_step, reask_config, run_step
from reflection_tuning.llm.step import Failure, Parsed

from ..conftest import Failure as HTTPFailure


class Echo:
    """A step whose reply must start with ``OK:``; the rest is the field ``text``."""

    name = "echo"
    input_columns = ("q",)
    output_fields = ("text",)
    schema = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"],
              "additionalProperties": False}
    template_hash = "0123456789ab"
    reads_truncated = False

    def format_input(self, row: Mapping[str, Any]) -> list[dict[str, str]]:
        return [{"role": "user", "content": row["q"]}]

    def parse(self, reply: Completion, row: Mapping[str, Any]) -> Parsed | Failure:
        if reply.content.startswith("OK:"):
            return Parsed({"text": reply.content[3:].strip()})
        return Failure(st.PARSE_ERROR, f"no OK: in {reply.content[:20]!r}")


def cfg(tmp_path, **kw) -> EndpointConfig:
    kw.setdefault("reply_format", "markers")  # the fake server replies in free text unless a test says otherwise
    return params_config(EndpointConfig, "teacher", model="m", base_url=kw.pop("url"), api_key_env=None, max_retries=0,
                         cache_dir=str(tmp_path / "cache"), **kw)


def script(fake, replies: dict[tuple[str, int | None], tuple[str, str]]):
    """Reply by (question, seed); a question not listed fails with HTTP 400."""
    def reply(body: dict):
        key = (body["messages"][0]["content"], body.get("seed"))
        return replies.get(key) or HTTPFailure(400, body={"detail": "rejected"})

    fake.reply = reply


ROWS = [{"id": "a", "q": "good"}, {"id": "b", "q": "bad-then-good"}, {"id": "c", "q": "cut-then-cut"},
        {"id": "d", "q": "http-400"}]
REPLIES = {("good", 0): ("OK: fine", "stop"), ("bad-then-good", 0): ("rambling", "stop"),
           ("bad-then-good", 1): ("OK: second", "stop"), ("cut-then-cut", 0): ("OK: cu", "length"),
           ("cut-then-cut", 1): ("OK: cut ag", "length")}


def test_statuses_and_reask(tmp_path, fake_openai):
    script(fake_openai, REPLIES)
    done = run_step(Echo(), cfg(tmp_path, url=fake_openai.url, reask=1), iter(ROWS))
    got = [(o.row["id"], o.status, o.attempts, (o.fields or {}).get("text")) for o in done.outcomes]
    assert got == [("a", "ok", 1, "fine"), ("b", "ok", 2, "second"), ("c", "truncated", 2, None),
                   ("d", "request_error", 1, None)]
    # the re-ask went out with seed 1 and the re-ask temperature, only for b and c
    reasks = [(r["messages"][0]["content"], r["seed"], r["temperature"]) for r in fake_openai.requests[4:]]
    assert sorted(reasks) == [("bad-then-good", 1, 0.7), ("cut-then-cut", 1, 0.7)]
    m = status_metrics(done.outcomes)
    assert (m["rows_out"], m["rows_ok"], m["rows_ok_first_try"], m["rows_ok_reasked"], m["rows_truncated"],
            m["rows_request_error"], m["rows_parse_error"]) == (4, 2, 1, 1, 1, 1, 0)
    assert done.stats["requests_sent"] == 6 and done.stats["requests_reasked"] == 2
    assert token_metrics(done.outcomes)["completion_tokens"] == sum(
        c.completion_tokens for o in done.outcomes for c in o.replies)
    assert done.outcomes[2].completion.content == "OK: cut ag"  # the last reply is kept

    # a rerun is served from the cache, re-asks included: their own keys
    sent = len(fake_openai.requests)
    again = run_step(Echo(), cfg(tmp_path, url=fake_openai.url, reask=1), ROWS)
    assert [o.status for o in again.outcomes] == [o.status for o in done.outcomes]
    assert len(fake_openai.requests) == sent + 1  # only the HTTP 400 is sent again
    assert again.stats["cache_hits"] == 5


def test_reask_zero_keeps_the_first_reply(tmp_path, fake_openai):
    script(fake_openai, REPLIES)
    done = run_step(Echo(), cfg(tmp_path, url=fake_openai.url, reask=0), ROWS[:3])
    assert [o.status for o in done.outcomes] == ["ok", "parse_error", "truncated"]
    assert len(fake_openai.requests) == 3 and done.stats["requests_reasked"] == 0


def test_a_failed_reask_request_keeps_the_reply_it_had(tmp_path, fake_openai):
    script(fake_openai, {("bad", 0): ("nope", "stop")})  # the re-ask (seed 1) gets HTTP 400
    done = run_step(Echo(), cfg(tmp_path, url=fake_openai.url, reask=1), [{"id": "x", "q": "bad"}])
    (o,) = done.outcomes
    assert (o.status, o.attempts, o.completion.content) == ("parse_error", 2, "nope")
    assert "re-ask 1" in o.reason and "400" in o.reason


def test_a_step_that_reads_cut_replies(tmp_path, fake_openai):
    class Lenient(Echo):
        reads_truncated = True

    script(fake_openai, {("cut", 0): ("OK: half", "length")})
    (o,) = run_step(Lenient(), cfg(tmp_path, url=fake_openai.url, reask=1), [{"id": "x", "q": "cut"}]).outcomes
    assert (o.status, o.fields, o.attempts) == ("ok", {"text": "half"}, 1)


def test_reask_config_and_validation():
    base = params_config(EndpointConfig, "teacher", seed=5, temperature=0.0, reask_temperature=0.7)
    assert (reask_config(base, 2).seed, reask_config(base, 2).temperature) == (7, 0.7)
    same = params_config(EndpointConfig, "teacher", seed=None, temperature=0.3, reask_temperature=None)
    assert (reask_config(same, 1).seed, reask_config(same, 1).temperature) == (1, 0.3)
    with pytest.raises(ConfigError, match="reask"):
        params_config(EndpointConfig, "teacher", reask=-1)
    with pytest.raises(ConfigError, match="reask_temperature"):
        params_config(EndpointConfig, "teacher", reask_temperature=-0.5)


def test_chunks_stream_the_same_outcomes(tmp_path, fake_openai, monkeypatch):
    """In chunks of 3 rows, the outcomes, their order and the re-asks are those of one round:
    only the memory differs. Rows are pulled a chunk at a time."""
    script(fake_openai, REPLIES)
    whole = run_step(Echo(), cfg(tmp_path / "whole", url=fake_openai.url, reask=1), ROWS * 2)
    monkeypatch.setattr(runner, "CHUNK_ROWS", 3)
    pulled: list[int] = []

    def rows():
        for n, r in enumerate(ROWS * 2):
            pulled.append(n)
            yield r

    stats: dict[str, int] = {}
    seen = []
    for o in iter_step(Echo(), cfg(tmp_path / "chunks", url=fake_openai.url, reask=1), rows(), stats=stats):
        seen.append((o.row["id"], o.status, o.attempts))
        assert len(pulled) <= len(seen) + 3  # never more than a chunk ahead
    assert seen == [(o.row["id"], o.status, o.attempts) for o in whole.outcomes]
    # the second copy of ROWS hits the cache the first chunks filled; in one round both copies go out
    # (but the copy of the run's first request, which went alone, is a hit there too)
    assert stats["requests_sent"] + stats["cache_hits"] == whole.stats["requests_sent"] + whole.stats["cache_hits"]
    assert whole.stats["requests_sent"] + whole.stats["cache_hits"] == 12
    assert stats["requests_reasked"] == whole.stats["requests_reasked"] == 4
    assert stats["max_in_flight"] <= 3


def test_reask_feedback_carries_the_failed_reply(tmp_path, fake_openai):
    def reply(body: dict):
        if len(body["messages"]) == 1:
            return ("rambling", "stop")
        assert body["messages"][1] == {"role": "assistant", "content": "rambling"}
        assert "could not be used: no OK:" in body["messages"][2]["content"]
        return ("OK: fixed", "stop")

    fake_openai.reply = reply
    done = run_step(Echo(), cfg(tmp_path, url=fake_openai.url, reask=1, reask_feedback=True),
                    [{"id": "x", "q": "bad"}])
    (o,) = done.outcomes
    assert (o.status, o.fields, o.attempts) == ("ok", {"text": "fixed"}, 2)


class EchoJSON(Echo):
    """:class:`Echo` that also takes structured replies (``reply_format: json_schema``)."""

    def parse_json(self, obj: Mapping[str, Any], row: Mapping[str, Any]) -> Parsed | Failure:
        return Parsed({"text": obj["text"]})


def test_json_schema_replies_are_requested_decoded_and_validated(tmp_path, fake_openai):
    """With ``reply_format: json_schema`` the request carries the step's schema as an OpenAI
    ``response_format``; a JSON reply that matches it is ok, one that does not (or is not JSON,
    or was cut) gets an explicit status and is re-asked."""
    bodies = []
    replies = {("good", 0): ('{"text": "fine"}', "stop"), ("wrong-key", 0): ('{"answer": "x"}', "stop"),
               ("wrong-key", 1): ('{"text": "fixed"}', "stop"), ("prose", 0): ("OK: not json", "stop"),
               ("prose", 1): ("still prose", "stop"), ("cut", 0): ('{"text": "cu', "length"),
               ("cut", 1): ('{"text": "cu', "length")}

    def reply(body: dict):
        bodies.append(body)
        return replies[(body["messages"][0]["content"], body.get("seed"))]

    fake_openai.reply = reply
    rows = [{"id": q, "q": q} for q in ("good", "wrong-key", "prose", "cut")]
    run = run_step(EchoJSON(), cfg(tmp_path, url=fake_openai.url, reply_format="json_schema", reask=1,
                                   reask_feedback=False), rows)
    assert [o.status for o in run.outcomes] == [st.OK, st.OK, st.PARSE_ERROR, st.TRUNCATED]
    assert run.outcomes[1].fields == {"text": "fixed"} and run.outcomes[1].attempts == 2
    assert "not JSON" in run.outcomes[2].reason
    fmt = bodies[0]["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
    assert fmt["json_schema"]["name"] == "echo" and fmt["json_schema"]["schema"] == dict(EchoJSON.schema)
