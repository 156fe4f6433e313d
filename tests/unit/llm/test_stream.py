"""Streamed requests and structured outputs, against a real HTTP server on loopback speaking SSE."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

import pytest

from reflection_tuning.infra.errors import UserError
from reflection_tuning.llm.errors import EndpointRefused, TeacherRequestError
from reflection_tuning.llm.request import is_json_object
from reflection_tuning.llm.session import Session
from reflection_tuning.llm.stream import json_schema_format, read_stream

from ..conftest import cfg_for, complete_all

MESSAGES = [{"role": "user", "content": "Say hi."}]
SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"],
          "additionalProperties": False}
FORMAT = json_schema_format("better_answer", SCHEMA)




def batch_of(n: int) -> list:
    return [[{"role": "user", "content": f"question {i}"}] for i in range(n)]


def test_chunks_are_assembled_into_one_reply_with_usage(tmp_path, fake_openai):
    fake_openai.reply = lambda body: ("[Better Answer] a streamed reply [End]", "stop")
    teacher = Session(cfg_for(tmp_path), template_hash="t", base_url=fake_openai.url)
    [reply] = complete_all(teacher, [MESSAGES])
    assert (reply.content, reply.finish_reason) == ("[Better Answer] a streamed reply [End]", "stop")
    assert (reply.prompt_tokens, reply.completion_tokens) == (11, 7)
    body = fake_openai.requests[0]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert "response_format" not in body  # markers: free text, nothing extra sent
    assert teacher.stats()["requests_cancelled"] == 0 and fake_openai.streams_closed_early == 0


def test_a_server_that_refuses_stream_options_is_asked_again_without_it(tmp_path, fake_openai):
    fake_openai.refuse = {"stream_options"}
    teacher = Session(cfg_for(tmp_path, max_concurrency=1), template_hash="t", base_url=fake_openai.url)
    replies = complete_all(teacher, batch_of(3))
    assert all(r.finish_reason == "stop" and r.completion_tokens == 0 for r in replies)  # no usage sent unasked
    # one refusal (a window of 1), then never asked again; the refusal is neither a retry nor a failure
    assert ["stream_options" in b for b in fake_openai.requests].count(True) == 1
    assert len(fake_openai.requests) == 4 and teacher.stats()["requests_retried"] == 0


def test_idle_timeout_closes_the_stream_and_retries(tmp_path, fake_openai):
    fake_openai.chunk_delay = 0.6  # each gap is longer than the idle limit
    teacher = Session(cfg_for(tmp_path, timeout=0.3, max_retries=1), template_hash="t", base_url=fake_openai.url)
    [reply] = complete_all(teacher, [MESSAGES])
    assert isinstance(reply, TeacherRequestError) and "Timeout" in str(reply)
    stats = teacher.stats()
    assert (stats["requests_sent"], stats["retries_timeout"], stats["requests_cancelled"]) == (2, 1, 2)
    deadline = asyncio.run(asyncio.sleep(1.0))  # the server notices the closed streams on its next write
    assert deadline is None and fake_openai.streams_closed_early == 2


def test_slow_but_steady_stream_passes_the_idle_limit_but_not_the_total_one(tmp_path, fake_openai):
    fake_openai.reply = lambda body: ("x" * 40, "stop")  # 10 chunks of 4 characters
    fake_openai.chunk_delay = 0.1
    steady = Session(cfg_for(tmp_path, timeout=0.5), template_hash="t", base_url=fake_openai.url)
    [ok] = complete_all(steady, [MESSAGES])
    assert ok.content == "x" * 40  # 1.1 s in all, never 0.5 s without a chunk
    capped = Session(cfg_for(tmp_path, timeout=0.5, total_timeout=0.4, max_retries=0, cache_dir=None),
                     template_hash="t", base_url=fake_openai.url)
    [late] = complete_all(capped, [MESSAGES])
    assert isinstance(late, TeacherRequestError) and capped.stats()["requests_cancelled"] == 1


def test_a_stream_cut_before_its_finish_reason_is_a_connection_retry(tmp_path, fake_openai):
    fake_openai.cut_after = 3
    teacher = Session(cfg_for(tmp_path, max_retries=1), template_hash="t", base_url=fake_openai.url)
    [reply] = complete_all(teacher, [MESSAGES])
    assert isinstance(reply, TeacherRequestError)  # never a half reply passed off as complete
    assert teacher.stats()["retries_connection"] == 1 and teacher.cached(MESSAGES) is None
    fake_openai.cut_after = None
    [again] = complete_all(Session(cfg_for(tmp_path), template_hash="t", base_url=fake_openai.url), [MESSAGES])
    assert again.finish_reason == "stop"


def test_cancelled_run_closes_every_stream_in_flight(tmp_path, fake_openai):
    teacher = Session(cfg_for(tmp_path, max_concurrency=3), template_hash="t", base_url=fake_openai.url)
    complete_all(teacher, [[{"role": "user", "content": "warm-up"}]])  # the run's first request goes alone
    teacher.connect(fake_openai.url)
    fake_openai.requests.clear()
    fake_openai.chunk_delay = 0.2
    fake_openai.reply = lambda body: ("y" * 400, "stop")  # 100 chunks: 20 s per reply

    async def go():
        task = asyncio.ensure_future(teacher.complete_all(batch_of(5), desc="test"))
        await asyncio.sleep(1.0)
        task.cancel()  # what Ctrl-C, or a fatal error in another step, does to the run
        with pytest.raises(asyncio.CancelledError):
            await task
        await teacher.aclose()
        await asyncio.sleep(0.5)

    asyncio.run(go())
    assert teacher.stats()["requests_cancelled"] == 3 and len(fake_openai.requests) == 3
    assert fake_openai.streams_closed_early == 3


def test_json_schema_request_shape_and_reply(tmp_path, fake_openai):
    fake_openai.reply = lambda body: (json.dumps({"answer": f"for {body['messages'][0]['content']}"}), "stop")
    cfg = cfg_for(tmp_path, base_url="http://x/v1", reply_format="json_schema")
    teacher = Session(cfg, template_hash="t", base_url=fake_openai.url, response_format=FORMAT)
    replies = complete_all(teacher, batch_of(4))
    assert [json.loads(r.content)["answer"] for r in replies] == [f"for question {i}" for i in range(4)]
    for body in fake_openai.requests:
        assert body["response_format"] == {"type": "json_schema",
                                           "json_schema": {"name": "better_answer", "schema": SCHEMA, "strict": True}}
    # the format is part of the cache key: a markers request for the same messages is another reply
    markers = Session(cfg_for(tmp_path), template_hash="t")
    assert markers.key(MESSAGES) != teacher.key(MESSAGES) and markers.cached(batch_of(1)[0]) is None
    markers.close_cache()


@pytest.mark.parametrize("server", ["refuses", "ignores"])
def test_a_server_without_structured_outputs_fails_at_the_first_request(tmp_path, fake_openai, server):
    """``reply_format: json_schema`` asked explicitly: an endpoint that refuses or ignores it stops
    the run at its first request, with the endpoint's words."""
    if server == "refuses":
        fake_openai.refuse = {"response_format"}
    else:
        fake_openai.reply = lambda body: ("[Better Answer] free text [End]", "stop")
    teacher = Session(cfg_for(tmp_path, max_concurrency=4, reply_format="json_schema"), template_hash="t",
                      base_url=fake_openai.url, response_format=FORMAT)
    with pytest.raises(UserError, match="response_format") as err:
        complete_all(teacher, batch_of(16))
    assert "reply_format" in str(err.value) and (server == "ignores" or "param response_format" in str(err.value))
    assert len(fake_openai.requests) == 1  # one request, not 16 failed rows
    assert teacher.cached(batch_of(1)[0]) is None  # an ignored format is not cached


@pytest.mark.parametrize("server", ["refuses", "ignores"])
def test_auto_falls_back_to_markers_once_for_the_run(tmp_path, fake_openai, server):
    """``reply_format: auto``: the first request decides; the replies after it are free text, the
    choice is in the counters, and a rerun asks under the same keys (the adaptation is kept)."""
    if server == "refuses":
        fake_openai.refuse = {"response_format"}
    fake_openai.reply = lambda body: ("[Better Answer] free text [End]", "stop")
    cfg = cfg_for(tmp_path, max_concurrency=4, reply_format="auto")
    teacher = Session(cfg, template_hash="t", base_url=fake_openai.url, response_format=FORMAT)
    replies = complete_all(teacher, batch_of(8))
    assert all(not r.structured and r.adaptations for r in replies)
    assert teacher.stats()["reply_format_markers"] == 1 and teacher.stats()["adapted_response_format"] == 1
    sent = [("response_format" in b) for b in fake_openai.requests]
    assert sent == [True] + [False] * 8  # the refused or ignored first request, then every one in markers
    again = Session(cfg, template_hash="t", base_url=fake_openai.url, response_format=FORMAT)
    assert all(r.cached for r in complete_all(again, batch_of(8)))


def test_json_schema_format_and_config_checks():
    assert is_json_object('{"a": 1}') and not is_json_object("[1]") and not is_json_object("free text")
    with pytest.raises(ValueError):
        json_schema_format("has space", SCHEMA)
    with pytest.raises(ValueError):
        json_schema_format("ok", {"type": "string"})


def test_a_bad_key_at_the_first_json_schema_request_is_not_blamed_on_the_format(tmp_path, fake_openai):
    from ..conftest import Failure

    fake_openai.failures = [Failure(401, body={"error": {"message": "bad key"}})]
    fake_openai.reply = lambda body: ('{"answer": "x"}', "stop")
    teacher = Session(cfg_for(tmp_path, max_concurrency=2), template_hash="t", base_url=fake_openai.url,
                      response_format=FORMAT)
    with pytest.raises(EndpointRefused, match="HTTP 401.*bad key") as err:
        complete_all(teacher, batch_of(2))
    assert "response_format" not in str(err.value) and len(fake_openai.requests) == 1


class _FastStream:
    """A long reply whose chunks are all ready at once (a fast server's stream)."""

    closed, sent = False, 0

    def __aiter__(self):
        return self

    async def __anext__(self):
        await asyncio.sleep(0)
        if self.sent == 2_000:
            raise StopAsyncIteration
        self.sent += 1
        done = self.sent == 2_000
        delta = SimpleNamespace(content="x")
        return SimpleNamespace(usage=None, choices=[SimpleNamespace(index=0, delta=delta,
                                                                    finish_reason="stop" if done else None)])

    async def close(self):
        self.closed = True


def test_a_timeout_around_a_stream_whose_chunks_are_always_ready_is_not_lost():
    """A cancellation that lands the moment a chunk arrives still stops the read (the race
    CPython gh-86296 has in ``wait_for`` before 3.12), on each of 20 tries."""
    for _ in range(20):
        stream = _FastStream()

        async def go(s=stream):
            await asyncio.wait_for(read_stream(s, idle_timeout=60), 0.01)

        with pytest.raises(asyncio.TimeoutError):
            asyncio.run(go())
        assert stream.closed and stream.sent < 2_000  # stopped, not read to its end
