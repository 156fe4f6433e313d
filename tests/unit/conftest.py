"""A scriptable OpenAI-compatible chat server on loopback (real HTTP, aiohttp) for the teacher tests.

It speaks both documented shapes of ``POST /v1/chat/completions``: one JSON ``chat.completion``,
and with ``stream: true`` server-sent events of ``chat.completion.chunk`` objects ended by
``data: [DONE]``, with a last chunk of empty ``choices`` carrying ``usage`` when the request
asks for ``stream_options: {include_usage: true}`` (OpenAI API reference, "Streaming").
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from shipped import params_config

from reflection_tuning.llm.config import EndpointConfig


@dataclass
class Failure:
    """One scripted error answer."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] = field(default_factory=lambda: {"error": {"message": "scripted failure"}})
    delay: float = 0.0


class FakeOpenAI:
    """``POST /v1/chat/completions``: first the scripted ``failures`` (in order), then ``reply``.

    ``reply(body) -> (content, finish_reason)`` or a :class:`Failure`; ``delay`` is seconds per request.
    A streamed reply comes in ``chunk_chars``-character chunks, ``chunk_delay`` seconds apart;
    ``cut_after`` chunks (if set) and the connection is dropped. ``refuse`` holds request fields
    the server answers with HTTP 400 (as a strict server does); ``streams_closed_early`` counts
    the streams whose client went away before the end.
    """

    def __init__(self) -> None:
        self.failures: list[Failure] = []
        self.reply: Callable[[dict], tuple[str, str] | Failure] = lambda body: ("[Better Answer] fine [End]", "stop")
        self.delay = 0.0
        self.requests: list[dict] = []
        self.auth: list[str] = []
        self.paths: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.chunk_chars = 4
        self.chunk_delay = 0.0
        self.cut_after: int | None = None
        self.refuse: set[str] = set()
        self.streams_closed_early = 0
        self.url = ""

    def reset(self) -> None:
        self.__init__()  # type: ignore[misc]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        self.auth.append(request.headers.get("Authorization", ""))
        self.paths.append(request.path)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if refused := sorted(self.refuse & set(body)):
                return web.json_response({"error": {"message": f"Unsupported parameter: {refused[0]}",
                                                    "param": refused[0], "type": "invalid_request_error"}},
                                         status=400)
            outcome = self.failures.pop(0) if self.failures else self.reply(body)
            delay = outcome.delay if isinstance(outcome, Failure) else 0.0
            await asyncio.sleep(self.delay + delay)
            if isinstance(outcome, Failure):
                return web.json_response(outcome.body, status=outcome.status, headers=outcome.headers)
            content, finish = outcome
            if body.get("stream"):
                return await self._stream(request, body, content, finish)
            return web.json_response(
                {
                    "id": f"chatcmpl-{len(self.requests)}",
                    "object": "chat.completion",
                    "created": 0,
                    "model": body["model"],
                    "choices": [{"index": 0, "finish_reason": finish,
                                 "message": {"role": "assistant", "content": content}}],
                    "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
                }
            )
        finally:
            self.in_flight -= 1

    async def _stream(self, request: web.Request, body: dict, content: str, finish: str) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        base = {"id": f"chatcmpl-{len(self.requests)}", "object": "chat.completion.chunk", "created": 0,
                "model": body["model"]}
        pieces = [content[i:i + self.chunk_chars] for i in range(0, len(content), self.chunk_chars)]
        deltas = [{"role": "assistant", "content": ""}] + [{"content": p} for p in pieces]
        usage = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
        events = [{**base, "choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in deltas]
        events.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append({**base, "choices": [], "usage": usage})
        try:
            for n, event in enumerate(events):
                if self.cut_after is not None and n >= self.cut_after:
                    request.transport.abort()  # type: ignore[union-attr]
                    return response
                await response.write(f"data: {json.dumps(event)}\n\n".encode())
                await asyncio.sleep(self.chunk_delay)
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
        except (ConnectionError, asyncio.CancelledError):  # the client closed the stream
            self.streams_closed_early += 1
            raise
        return response


@contextlib.contextmanager
def serve_app(app: web.Application) -> Iterator[str]:
    """Serve the aiohttp ``app`` on a free loopback port in a thread; yields its base URL
    (``http://127.0.0.1:PORT``) and shuts it down on exit."""
    loop = asyncio.new_event_loop()
    started = threading.Event()
    state: dict[str, Any] = {}

    async def start() -> None:
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        state["runner"] = runner
        state["port"] = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert started.wait(10), "the local test server did not start"
    try:
        yield f"http://127.0.0.1:{state['port']}"
    finally:
        asyncio.run_coroutine_threadsafe(state["runner"].cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def cfg_for(tmp_path: Path, **over: Any) -> EndpointConfig:
    """A teacher config for the fake server: fast retries, a cache under ``tmp_path``."""
    base = params_config(
        EndpointConfig,
        "teacher",
        model="m",
        base_url="unused",
        reply_format="markers",
        max_retries=2,
        timeout=5,
        cache_dir=str(tmp_path / "cache"),
        retry_wait_initial=0.01,
        retry_wait_max=0.05,
    )
    return dataclasses.replace(base, **over)


def complete_all(session: Any, batch: list) -> list:
    """``session.complete_all(batch)`` (one round of a :class:`~reflection_tuning.llm.session.Session`)
    run to the end, its transport and cache closed afterwards."""
    async def go() -> list:
        try:
            return await session.complete_all(batch, desc="test")
        finally:
            await session.aclose()

    return asyncio.run(go())


@pytest.fixture(scope="session")
def _fake_server() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", fake.handle)
    app.router.add_post("/second/v1/chat/completions", fake.handle)  # a second "endpoint"
    with serve_app(app) as base:
        fake.url = f"{base}/v1"
        yield fake


@pytest.fixture
def fake_openai(_fake_server: FakeOpenAI) -> FakeOpenAI:
    """The fake server, reset for this test (its ``url`` is the OpenAI base URL)."""
    url = _fake_server.url
    _fake_server.reset()
    _fake_server.url = url
    return _fake_server


@pytest.fixture(scope="package", autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """The unit tier's models are tiny: one thread runs them fastest. More threads spin against
    each other and the other jobs on a shared CPU (a 2-layer forward took 4 s instead of 0.07 s on
    the 2-core machine under load 5). Only this process: servers and subprocesses keep theirs."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
