"""Which failed requests are retried, and the waits a server asks for (real ``openai`` errors on
real HTTP responses)."""

from __future__ import annotations

import asyncio
import email.utils
import time

import httpx2 as httpx  # openai 3.x ships httpx as httpx2
import openai
import pytest

from reflection_tuning.llm.retry import is_retryable, retry_after_seconds, retry_kind
from reflection_tuning.llm.stream import IncompleteStream

REQUEST = httpx.Request("POST", "http://127.0.0.1/v1/chat/completions")


def status_error(code: int, headers: dict[str, str] | None = None) -> openai.APIStatusError:
    response = httpx.Response(code, headers=headers or {}, request=REQUEST, json={"error": {"message": "x"}})
    return openai.APIStatusError("scripted", response=response, body=None)


@pytest.mark.parametrize("code, kind", [(429, "rate_limited"), (500, "server_error"), (503, "server_error"),
                                        (408, "server_error"), (409, "server_error"), (400, None), (401, None),
                                        (404, None), (422, None)])
def test_status_codes(code, kind):
    exc = status_error(code)
    assert retry_kind(exc) == kind and is_retryable(exc) is (kind is not None)


def test_transport_failures_are_retried():
    assert retry_kind(openai.APITimeoutError(REQUEST)) == "timeout"
    assert retry_kind(asyncio.TimeoutError()) == "timeout"
    assert retry_kind(openai.APIConnectionError(request=REQUEST)) == "connection"
    assert retry_kind(IncompleteStream("cut before finish_reason")) == "connection"
    assert retry_kind(ValueError("a bug")) is None and retry_kind(None) is None


def test_retry_after_in_seconds_milliseconds_or_a_date():
    assert retry_after_seconds(status_error(429, {"Retry-After": "3"})) == 3.0
    assert retry_after_seconds(status_error(429, {"retry-after-ms": "250", "Retry-After": "3"})) == 0.25
    assert retry_after_seconds(status_error(429, {"Retry-After": "-5"})) == 0.0
    date = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= retry_after_seconds(status_error(503, {"Retry-After": date})) <= 30
    assert retry_after_seconds(status_error(429)) is None
    assert retry_after_seconds(openai.APITimeoutError(REQUEST)) is None and retry_after_seconds(None) is None


def test_a_connection_the_server_dropped_is_not_a_timeout():
    """The SDK's aiohttp transport raises a dropped connection as APITimeoutError (from
    httpx.ConnectTimeout, from the aiohttp error): the cause chain makes it ``connection``."""
    import aiohttp
    import httpx2
    import openai

    from reflection_tuning.llm.retry import dropped_connection, retry_kind

    request = httpx2.Request("POST", "http://x/v1/chat/completions")

    def sdk_error(cause: BaseException) -> openai.APITimeoutError:
        try:
            try:
                raise cause
            except Exception as e:
                raise httpx2.ConnectTimeout(str(e)) from e
        except httpx2.ConnectTimeout as mapped:
            err = openai.APITimeoutError(request=request)
            err.__cause__ = mapped
            return err

    dropped = sdk_error(aiohttp.ServerDisconnectedError())
    timed_out = sdk_error(aiohttp.ServerTimeoutError("read timeout"))
    assert dropped_connection(dropped) and retry_kind(dropped) == "connection"
    assert not dropped_connection(timed_out) and retry_kind(timed_out) == "timeout"
    assert retry_kind(openai.APITimeoutError(request=request)) == "timeout"
