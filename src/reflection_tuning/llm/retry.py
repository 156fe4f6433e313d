"""Which failed requests are retried, and how long a server asks us to wait."""

from __future__ import annotations

import asyncio
import email.utils
import time

import openai

from reflection_tuning.llm.stream import IncompleteStream

RETRY_KINDS = ("rate_limited", "server_error", "timeout", "connection")


def dropped_connection(exc: BaseException | None) -> bool:
    """Whether ``exc`` comes from a connection the server closed or reset. The SDK's aiohttp
    transport reports those as a timeout (``openai._vendor.httpx_aiohttp`` maps every
    ``aiohttp.ClientConnectionError`` to ``httpx.ConnectTimeout``), so the cause chain tells."""
    import aiohttp

    seen = 0
    while exc is not None and seen < 8:  # the SDK error <- the httpx error <- the aiohttp one
        if isinstance(exc, aiohttp.ClientConnectionError) and not isinstance(exc, asyncio.TimeoutError):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def retry_kind(exc: BaseException | None) -> str | None:
    """``rate_limited`` (429), ``server_error`` (408, 409, 5xx), ``timeout``, ``connection``
    (refused, reset, a body or stream cut off), or ``None`` for an error that is final (e.g. 400, 401)."""
    if isinstance(exc, (openai.APITimeoutError, asyncio.TimeoutError)):
        return "connection" if dropped_connection(exc) else "timeout"
    if isinstance(exc, (openai.APIConnectionError, IncompleteStream)):
        return "connection"
    if isinstance(exc, openai.APIStatusError):
        if exc.status_code == 429:
            return "rate_limited"
        if exc.status_code in (408, 409) or exc.status_code >= 500:
            return "server_error"
    return None


def is_retryable(exc: BaseException) -> bool:
    """Timeouts, connection errors, 408, 409, 429 and 5xx are retried; other errors are final."""
    return retry_kind(exc) is not None


def retry_after_seconds(exc: BaseException | None) -> float | None:
    """The server's ``retry-after-ms`` / ``Retry-After`` (seconds or HTTP date), if any."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None
