"""The HTTP side: endpoints taken in turn, a stream opened on each, error text without the key
(the retries and the window around them: test_client.py; the streams: test_stream.py)."""

from __future__ import annotations

import asyncio

import openai
import pytest

from reflection_tuning.llm.endpoints import Endpoints
from reflection_tuning.llm.stream import read_stream

from ..conftest import Failure

KEY = "sk-endpoints-secret-7"


def test_endpoints_are_taken_in_turn():
    endpoints = Endpoints(["http://a.example/v1", "http://b.example/v1", "http://c.example/v1"], None, 5)
    assert len(endpoints) == 3 and [endpoints.next() for _ in range(7)] == [0, 1, 2, 0, 1, 2, 0]
    asyncio.run(endpoints.aclose())
    assert endpoints.clients == []


def test_a_stream_opens_with_the_key_and_asks_for_usage(fake_openai):
    async def go():
        endpoints = Endpoints([fake_openai.url], KEY, 5)
        try:
            stream = await endpoints.open_stream(0, model="m", messages=[{"role": "user", "content": "hi"}],
                                                 stream=True)
            return await read_stream(stream, 5)
        finally:
            await endpoints.aclose()

    reply = asyncio.run(go())
    assert reply.finish_reason == "stop" and reply.content
    assert fake_openai.auth == [f"Bearer {KEY}"]
    assert fake_openai.requests[0]["stream_options"] == {"include_usage": True}


def test_describe_names_the_status_and_body_and_never_the_key(fake_openai):
    fake_openai.failures = [Failure(400, body={"error": {"message": f"bad key {KEY}"}})]

    async def go():
        endpoints = Endpoints([fake_openai.url], KEY, 5)
        try:
            with pytest.raises(openai.BadRequestError) as caught:
                await endpoints.open_stream(0, model="m", messages=[{"role": "user", "content": "hi"}], stream=True)
            return endpoints.describe(caught.value), endpoints.describe(TimeoutError(f"slow {KEY}"))
        finally:
            await endpoints.aclose()

    http, other = asyncio.run(go())
    assert http.startswith("HTTP 400: ") and "bad key ***" in http and KEY not in http
    assert other == "TimeoutError: slow ***"


def test_loopback_endpoints_open_a_connection_per_request():
    """The embedded llama.cpp server drops kept-alive connections: loopback clients send
    ``Connection: close``; a remote endpoint keeps its pool."""
    from reflection_tuning.llm.endpoints import Endpoints

    local, remote = Endpoints(["http://127.0.0.1:8080/v1", "https://api.openai.com/v1"], None, 5).clients
    assert local.default_headers.get("Connection") == "close"
    assert "Connection" not in remote.default_headers
