"""The HTTP side of the client: one openai client per endpoint, taken in turn, each request
a stream (:mod:`.stream`), and error text with the key scrubbed out.

A round's :class:`~reflection_tuning.llm.client.Transport` holds one :class:`Endpoints`; the
window, retries and cost cap are its own, the cache the session's.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import openai

log = logging.getLogger(__name__)

DUMMY_API_KEY = "no-key"  # for endpoints that need none (the embedded server)


# A new connection per request on loopback: llama.cpp's server (the embedded one) closes a
# kept-alive connection at moments the client cannot see, so reusing one failed 2-4 requests
# in 40 ("Server disconnected"); with `Connection: close` none did, and a loopback connect costs
# microseconds.
_LOOPBACK_HEADERS = {"Connection": "close"}


def _loopback(url: str) -> bool:
    return urlsplit(url).hostname in ("127.0.0.1", "localhost", "::1")


class Endpoints:
    """One or several OpenAI-compatible endpoints, shared round-robin.

    Args:
        urls: the base URLs (``…/v1``).
        api_key: the key itself (``None``: a dummy). Only handed to the HTTP clients; every
            error text goes through :meth:`describe`, which scrubs it.
        timeout: seconds; the HTTP timeout of the connect and of each read (the openai
            client's own retries are off: the caller retries).

    The clients use the SDK's aiohttp transport (``openai.DefaultAioHttpClient``, the
    ``openai[aiohttp]`` extra), which the SDK documents for high concurrency: the default
    httpx transport's pool scans every connection on each request, and the gain is what
    ``benchmarks/teacher_scale.py`` prints (``aiohttp / httpx transport``).
    """

    def __init__(self, urls: Sequence[str], api_key: str | None, timeout: float) -> None:
        self._api_key = api_key
        self.clients = [
            openai.AsyncOpenAI(base_url=u, api_key=api_key or DUMMY_API_KEY, timeout=timeout, max_retries=0,
                               default_headers=_LOOPBACK_HEADERS if _loopback(u) else None,
                               http_client=openai.DefaultAioHttpClient(timeout=timeout))
            for u in urls
        ]
        self._turn = 0
        self._usage_option = True  # send stream_options.include_usage until a server refuses it

    def __len__(self) -> int:
        return len(self.clients)

    def next(self) -> int:
        """The index of the endpoint the next attempt goes to (a retry goes to the next one)."""
        n = self._turn % len(self.clients)
        self._turn += 1
        return n

    async def open_stream(self, n: int, **kwargs: Any) -> Any:
        """Open a streamed chat completion on endpoint ``n`` (``kwargs``: the request's fields,
        ``stream=True`` among them); a server that refuses ``stream_options`` is asked again
        without it, and is not asked for it again.

        Raises:
            openai.OpenAIError: the request failed.
        """
        create = self.clients[n].chat.completions.create
        if self._usage_option:
            try:
                return await create(**kwargs, stream_options={"include_usage": True})
            except openai.APIStatusError as exc:
                if exc.status_code not in (400, 422) or "stream_options" not in f"{exc.message} {exc.body}":
                    raise
                log.info("the endpoint refuses stream_options (HTTP %d); token usage only if it sends it unasked",
                         exc.status_code)
                self._usage_option = False
        return await create(**kwargs)

    def describe(self, exc: BaseException | None) -> str:
        """One line on a failed request (HTTP status, message, the start of the body), key scrubbed."""
        if isinstance(exc, openai.APIStatusError):
            text = f"HTTP {exc.status_code}: {exc.message}"
            body = json.dumps(exc.body, default=str, ensure_ascii=False)[:300] if exc.body is not None else ""
            if body and body.strip('"') not in text:
                text += f" {body}"
        else:
            text = f"{type(exc).__name__}: {exc}"
        return text.replace(self._api_key, "***") if self._api_key else text

    async def aclose(self) -> None:
        """Close the HTTP clients."""
        for client in self.clients:
            await client.close()
        self.clients = []
