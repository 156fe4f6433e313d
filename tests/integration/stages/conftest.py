"""Stage-test fixtures: the real embedded teacher, and a fault-injecting proxy in front of it.

``FaultProxy`` is a real HTTP server on loopback (aiohttp) that forwards
``POST /v1/chat/completions`` to the real embedded server (llama.cpp's), except where its ``plan``
says to fail an attempt: 429 with Retry-After, 5xx, a dropped connection, a slow reply, a
body cut off mid-stream, or a reply whose content is cut (``finish_reason: length``).
Streamed requests (``stream: true``) are relayed event by event; ``cut_body`` then drops the
connection after the first content event, and a client that goes away closes the upstream
stream too, so the real server sees the disconnect.
It listens on several ports at once, so several "endpoints" share one fault plan.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from reflection_tuning.llm.server import Served, serve_embedded

# fault kinds a plan can return for an attempt
RATE_LIMITED, SERVER_ERROR, DROP, SLOW, CUT_BODY, CUT_CONTENT = "429", "500", "drop", "slow", "cut_body", "cut_content"
Plan = Callable[[str, int], str | None]  # (request key, attempt number from 1) -> fault or None


def request_key(body: dict[str, Any]) -> str:
    """What identifies a request across retries and reruns: its messages."""
    return hashlib.sha256(json.dumps(body["messages"], sort_keys=True).encode()).hexdigest()


class FaultProxy:
    def __init__(self, upstream: str, plan: Plan, ports: int = 1, delay: float = 0.0) -> None:
        self.upstream = upstream.rstrip("/")
        self.plan = plan
        self.delay = delay  # seconds added to every forwarded request
        self.attempts: Counter[str] = Counter()
        self.forwarded: Counter[str] = Counter()  # requests the real server answered and the client got
        self.per_port: Counter[int] = Counter()
        self.upstream_open = 0  # requests open at the real server right now (generating, or queued there)
        self.max_upstream_open = 0
        self.auth: set[str] = set()
        self.outcomes: dict[str, list[str]] = {}  # request key -> how each attempt ended here
        self.urls: list[str] = []
        self._ports = ports
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._started = threading.Event()

    # -- lifecycle -----------------------------------------------------------------------
    def __enter__(self) -> FaultProxy:
        self._thread.start()
        assert self._started.wait(10), "fault proxy did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        # handlers still wait on replies the server never cancels (plain requests)
        with contextlib.suppress(TimeoutError):
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._start())
        self._started.set()
        self._loop.run_forever()

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._handle)
        # a new upstream connection per request, as the teacher client does on loopback
        # (llm/endpoints.py): llama.cpp's server closes a connection idle for 5 s and aiohttp
        # keeps one for 15 s, so a request sent on one as it closed failed upstream with
        # ServerDisconnectedError, and the client got a 500 the plan never asked for
        # (test_teacher_faults failed about 1 run in 5)
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True),
                                              timeout=aiohttp.ClientTimeout(total=600))

        async def close_session(_: web.Application) -> None:
            await self._session.close()

        app.on_cleanup.append(close_session)
        # a client that goes away cancels its handler, as a server notices a closed connection
        self._runner = web.AppRunner(app, handler_cancellation=True)
        await self._runner.setup()
        for _ in range(self._ports):
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            self.urls.append(f"http://127.0.0.1:{port}/v1")

    # -- requests ------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        key = request_key(body)
        self.attempts[key] += 1
        outcome = self.outcomes.setdefault(key, [])
        try:
            response = await self._attempt(request, body, key)
        except BaseException as exc:  # an upstream failure, or the client went away
            outcome.append(type(exc).__name__)
            raise
        outcome.append(str(response.status))
        return response

    async def _attempt(self, request: web.Request, body: dict, key: str) -> web.StreamResponse:
        self.per_port[request.url.port or 0] += 1
        self.auth.add(request.headers.get("Authorization", ""))
        fault = self.plan(key, self.attempts[key])
        if fault == RATE_LIMITED:
            return web.json_response({"error": {"message": "slow down"}}, status=429, headers={"Retry-After": "1"})
        if fault == SERVER_ERROR:
            return web.json_response({"error": {"message": "injected failure"}}, status=500)
        if fault == DROP:
            request.transport.abort()  # type: ignore[union-attr]
            return web.Response()  # never reaches the client
        await asyncio.sleep(self.delay + (1.5 if fault == SLOW else 0.0))
        if body.get("stream"):
            return await self._relay_stream(request, body, key, fault)
        # a plain request is generated to the end even when its client goes away (the proxy keeps
        # waiting for it, shielded, and counts it as open): the case streaming exists to avoid
        payload, status = await asyncio.shield(self._forward(body))
        if fault == CUT_CONTENT and status == 200:
            reply = json.loads(payload)
            choice = reply["choices"][0]
            choice["message"]["content"] = choice["message"]["content"][: len(choice["message"]["content"]) // 2]
            choice["finish_reason"] = "length"
            payload = json.dumps(reply).encode()
        if fault == CUT_BODY:
            response = web.StreamResponse(status=status, headers={"Content-Type": "application/json",
                                                                  "Content-Length": str(len(payload))})
            await response.prepare(request)
            await response.write(payload[: len(payload) // 2])
            request.transport.abort()  # type: ignore[union-attr]
            return response
        response = web.Response(body=payload, status=status, content_type="application/json")
        await response.prepare(request)
        await response.write_eof()
        if status == 200:
            self.forwarded[key] += 1
        return response

    async def _forward(self, body: dict) -> tuple[bytes, int]:
        self._opened()
        try:
            async with self._session.post(f"{self.upstream}/chat/completions", json=body) as up:
                return await up.read(), up.status
        finally:
            self.upstream_open -= 1

    def _opened(self) -> None:
        self.upstream_open += 1
        self.max_upstream_open = max(self.max_upstream_open, self.upstream_open)

    async def _relay_stream(self, request: web.Request, body: dict, key: str, fault: str | None) -> web.StreamResponse:
        self._opened()
        try:
            return await self._relay(request, body, key, fault)
        finally:  # a cancelled handler (its client went away) closes the upstream stream on the way out
            self.upstream_open -= 1

    async def _relay(self, request: web.Request, body: dict, key: str, fault: str | None) -> web.StreamResponse:
        async with self._session.post(f"{self.upstream}/chat/completions", json=body) as up:
            if up.status != 200:
                return web.Response(body=await up.read(), status=up.status, content_type="application/json")
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            events: list[bytes] = []
            event = b""
            async for line in up.content:  # SSE: events are separated by a blank line
                event += line
                if line.strip():
                    continue
                if fault == CUT_CONTENT:
                    events.append(event)  # rewritten below, once the whole reply is known
                else:
                    try:
                        await response.write(event)
                    except ConnectionResetError:  # the client went away: so does the upstream stream
                        up.close()
                        return response
                    if fault == CUT_BODY and b'"content"' in event:
                        request.transport.abort()  # type: ignore[union-attr]
                        return response
                event = b""
            if fault == CUT_CONTENT:
                for cut in _cut_stream(events):
                    await response.write(cut)
        await response.write_eof()
        self.forwarded[key] += 1
        return response


def _cut_stream(events: list[bytes]) -> list[bytes]:
    """The events of a streamed reply rewritten as "the server" cutting it: half the content,
    then ``finish_reason: length``."""
    chunks = [json.loads(e.decode()[len("data: "):]) for e in events if e.startswith(b"data: {")]
    content = "".join((c["choices"][0]["delta"].get("content") or "") for c in chunks if c.get("choices"))
    last = {**chunks[-1], "choices": [{"index": 0, "delta": {"content": content[: len(content) // 2]},
                                       "finish_reason": "length"}]}
    return [f"data: {json.dumps(c)}\n\n".encode() for c in (chunks[0], last)]


@pytest.fixture(scope="session")
def teacher_server(embedded_gguf) -> Iterator[Served]:
    """The real embedded teacher (llama.cpp's server), shared by the stage tests: URL, pid, log."""
    with serve_embedded(embedded_gguf, parallel=4, slot_ctx=4096, startup_timeout=120) as served:
        yield served


@pytest.fixture(scope="session")
def teacher_url(teacher_server: Served) -> str:
    """The shared embedded teacher's OpenAI base URL."""
    return teacher_server.url
