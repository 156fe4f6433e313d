"""OpenAI Batch API mode: building the request file and reading the results, offline.

The result lines below are shaped as the Batch API guide shows them
(platform.openai.com/docs/guides/batch). The paid API itself is replaced by ``FakeBatchAPI``,
which keeps files and batches in memory and answers every request line.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from shipped import params_config

from reflection_tuning.llm.batch import ENDPOINT, read_result_line, read_results, request_line, send_batch
from reflection_tuning.llm.cache import Completion, ReplyCache, cache_key
from reflection_tuning.llm.config import EndpointConfig
from reflection_tuning.llm.cost import Budget, Price
from reflection_tuning.llm.errors import TeacherCostCap, TeacherRequestError
from reflection_tuning.llm.request import request_body

DOC_OUTPUT = {
    "id": "batch_req_123",
    "custom_id": "request-2",
    "response": {
        "status_code": 200,
        "request_id": "req_123",
        "body": {
            "id": "chatcmpl-123", "object": "chat.completion", "created": 1711652795, "model": "gpt-4o-mini",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello."}, "logprobs": None,
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 22, "completion_tokens": 2, "total_tokens": 24},
            "system_fingerprint": "fp_123",
        },
    },
    "error": None,
}
DOC_ERROR = {"id": "batch_req_456", "custom_id": "request-3", "response": None,
             "error": {"code": "invalid_request", "message": "Invalid request"}}
DOC_HTTP_ERROR = {"id": "batch_req_789", "custom_id": "request-4",
                  "response": {"status_code": 400, "request_id": "req_9", "body": {"error": {"message": "bad model"}}},
                  "error": None}


def cfg_for(tmp_path, **over) -> EndpointConfig:
    return params_config(
        EndpointConfig,
        "teacher",
        model="gpt-4o-mini",
        base_url="https://api.openai.com/v1",
        mode="batch",
        reply_format="markers",
        max_tokens=50,
        cache_dir=str(tmp_path / "cache"),
        batch_poll_interval=0,
        **over,
    )


def test_request_line_is_the_documented_shape(tmp_path):
    """The body of a batch line is the online request's: the token cap as max_completion_tokens,
    and the step's response_format (the Batch API carries it in each body)."""
    cfg = cfg_for(tmp_path)
    msgs = [{"role": "user", "content": "hi"}]
    fmt = {"type": "json_schema", "json_schema": {"name": "s", "schema": {"type": "object"}, "strict": True}}
    line = request_line("k1", request_body(cfg, msgs, response_format=fmt))
    assert line == {"custom_id": "k1", "method": "POST", "url": "/v1/chat/completions",
                    "body": {"model": "gpt-4o-mini", "messages": msgs, "temperature": 0.0, "top_p": 1.0,
                             "max_completion_tokens": 50, "seed": 0, "response_format": fmt}}
    assert json.loads(json.dumps(line)) == line


def test_result_lines_are_read_as_documented():
    key, ok = read_result_line(DOC_OUTPUT)
    assert key == "request-2" and ok == Completion("Hello.", "stop", 22, 2)
    key, err = read_result_line(DOC_ERROR)
    assert key == "request-3" and isinstance(err, TeacherRequestError) and "invalid_request" in str(err)
    key, err = read_result_line(DOC_HTTP_ERROR)
    assert isinstance(err, TeacherRequestError) and "400" in str(err) and "bad model" in str(err)
    text = "\n".join(json.dumps(x) for x in (DOC_OUTPUT, DOC_ERROR, DOC_HTTP_ERROR)) + "\n\n"
    assert set(read_results(text.splitlines())) == {"request-2", "request-3", "request-4"}
    with pytest.raises(ValueError, match="custom_id"):
        read_result_line({"response": None})


class FakeBatchAPI:
    """Files and batches in memory; a batch completes on its second poll. ``answer(body) ->
    (content, finish_reason)`` writes each reply (default: ``re: <first message>``), or returns a
    ``Failure`` (``tests/unit/conftest.py``) that the line carries as its HTTP status and body."""

    def __init__(self, expire_after: int | None = None, answer=None) -> None:
        self.answer = answer
        self.store: dict[str, str] = {}
        self.created: list[str] = []
        self.polls = 0
        self.expire_after = expire_after  # answer only this many requests, then expire
        self.files = SimpleNamespace(create=self._file_create, content=self._file_content)
        self.batches = SimpleNamespace(create=self._batch_create, retrieve=self._batch_retrieve)

    def _file_create(self, file, purpose):
        assert purpose == "batch"
        fid = f"file-{len(self.store)}"
        self.store[fid] = file.read().decode()
        return SimpleNamespace(id=fid)

    def _file_content(self, fid):
        return SimpleNamespace(text=self.store[fid])

    def _batch_create(self, input_file_id, endpoint, completion_window, metadata=None):
        assert endpoint == ENDPOINT and completion_window == "24h"
        self.created.append(input_file_id)
        return SimpleNamespace(id=f"batch-{input_file_id}")

    def _batch_retrieve(self, batch_id):
        self.polls += 1
        if self.polls % 2:
            return SimpleNamespace(id=batch_id, status="in_progress", request_counts=None)
        lines = [json.loads(x) for x in self.store[batch_id.removeprefix("batch-")].splitlines()]
        n = len(lines) if self.expire_after is None else self.expire_after
        def response(body):  # a refusal (a scripted Failure) is a line with its HTTP status and error body
            got = self.answer(body) if self.answer else ("re: " + body["messages"][0]["content"], "stop")
            if hasattr(got, "status"):
                return {**DOC_HTTP_ERROR["response"], "status_code": got.status, "body": got.body}
            content, finish = got
            choice = {"index": 0, "finish_reason": finish, "message": {"role": "assistant", "content": content}}
            return {**DOC_OUTPUT["response"], "body": {**DOC_OUTPUT["response"]["body"], "choices": [choice]}}

        out = [{**DOC_OUTPUT, "custom_id": x["custom_id"], "response": response(x["body"])} for x in lines[:n]]
        fid = f"file-out-{batch_id}"
        self.store[fid] = "".join(json.dumps(x) + "\n" for x in out)
        status = "completed" if self.expire_after is None else "expired"
        return SimpleNamespace(id=batch_id, status=status, output_file_id=fid, error_file_id=None)


def _batch(n, cfg=None):
    """``n`` request bodies (one message each)."""
    cfg = cfg or cfg_for(Path("unused"))
    return [request_body(cfg, [{"role": "user", "content": f"q{i}"}]) for i in range(n)]


def _keys(cfg, batch):
    return [cache_key(cfg, body["messages"], "t") for body in batch]


def test_send_batch_fills_the_same_cache_the_online_mode_reads(tmp_path):
    cfg = cfg_for(tmp_path)
    batch = _batch(4) + _batch(1)  # a duplicate request is sent once
    keys = _keys(cfg, batch)
    api, cache = FakeBatchAPI(), ReplyCache(cfg.cache_dir)
    results = send_batch(cfg, api, batch, cache, keys, sleep=lambda s: None)
    assert [r.content for r in results] == ["re: q0", "re: q1", "re: q2", "re: q3", "re: q0"]
    assert len(api.created) == 1 and len(api.store[api.created[0]].splitlines()) == 4
    again = send_batch(cfg, FakeBatchAPI(), batch, cache, keys, sleep=lambda s: None)
    assert all(r.cached for r in again)  # nothing submitted the second time
    assert not list((tmp_path / "cache" / "batches").glob("*.json"))  # finished batches leave no state


def test_a_killed_wait_resumes_the_same_batch(tmp_path):
    cfg = cfg_for(tmp_path)
    batch = _batch(3)
    keys = _keys(cfg, batch)
    api, cache = FakeBatchAPI(), ReplyCache(cfg.cache_dir)

    def killed(seconds):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        send_batch(cfg, api, batch, cache, keys, sleep=killed)
    results = send_batch(cfg, api, batch, cache, keys, sleep=lambda s: None)
    assert len(api.created) == 1  # polled again, not paid again
    assert all(isinstance(r, Completion) for r in results)


def test_expired_batch_gives_explicit_errors_and_a_rerun_sends_only_those(tmp_path):
    cfg = cfg_for(tmp_path)
    batch = _batch(5)
    keys = _keys(cfg, batch)
    cache = ReplyCache(cfg.cache_dir)
    results = send_batch(cfg, FakeBatchAPI(expire_after=2), batch, cache, keys, sleep=lambda s: None)
    assert [isinstance(r, Completion) for r in results] == [True, True, False, False, False]
    assert all("expired" in str(r) for r in results[2:])
    api = FakeBatchAPI()
    send_batch(cfg, api, batch, cache, keys, sleep=lambda s: None)
    assert len(api.store[api.created[0]].splitlines()) == 3


def test_cost_cap_submits_only_what_fits(tmp_path):
    cfg = cfg_for(tmp_path, price={"input": 1e6, "output": 1e6}, max_cost=200.0)
    batch = _batch(5)  # each request holds (2 bytes + 16) + 50 = 68 USD at USD 1 a token
    keys = _keys(cfg, batch)
    api = FakeBatchAPI()
    results = send_batch(cfg, api, batch, ReplyCache(cfg.cache_dir), keys, budget=Budget(Price(1e6, 1e6), 200.0),
                         sleep=lambda s: None)
    assert [type(r).__name__ for r in results] == ["Completion"] * 2 + ["TeacherCostCap"] * 3
    assert isinstance(results[4], TeacherCostCap)
