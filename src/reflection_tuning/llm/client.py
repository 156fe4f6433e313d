"""The network side of one round of requests: a sliding window of concurrent requests over
:mod:`.endpoints` (round-robin), each attempt streamed (:mod:`.stream`), retried with backoff
(:mod:`.retry`), under the run's cost cap (:mod:`.cost`), and counted.

The window is a semaphore, not gathered batches: a slot frees the moment its reply comes
back, where the reference code sends 10 requests and waits for the slowest of them.

Every request is streamed: ``timeout`` bounds the gap between two chunks and
``total_timeout`` (optional) the whole attempt. A request that times out, or whose task is
cancelled (shutdown, a fatal error elsewhere), closes its stream, so the server stops
generating it instead of queueing the retry behind an abandoned generation.

A :class:`Transport` lives in one event loop (one round); the :class:`RequestCounts` it counts
into are the stage run's (:class:`~reflection_tuning.llm.session.Session`).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import openai
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_random_exponential

from reflection_tuning.llm.cache import Completion
from reflection_tuning.llm.cost import Budget, CostCapReached, prompt_tokens_upper_bound
from reflection_tuning.llm.endpoints import Endpoints
from reflection_tuning.llm.errors import TeacherCostCap, TeacherRequestError
from reflection_tuning.llm.request import split_sdk
from reflection_tuning.llm.retry import RETRY_KINDS, dropped_connection, is_retryable, retry_after_seconds, retry_kind
from reflection_tuning.llm.stream import IncompleteStream, read_stream

log = logging.getLogger(__name__)


@dataclass
class RequestCounts:
    """What a stage run's requests came to, over every round.

    Attributes:
        cache_hits: requests the cache answered (counted by the session).
        sent: HTTP attempts made (retries included).
        retries: retries by kind (:data:`~.retry.RETRY_KINDS`, or ``other``).
        cancelled: attempts whose stream was closed before the reply ended (timeouts, shutdown).
        in_flight, max_in_flight: requests holding a window slot now, and at most.
        per_endpoint: attempts per endpoint, in the order of the URLs.
    """

    cache_hits: int = 0
    sent: int = 0
    retries: Counter[str] = field(default_factory=Counter)
    cancelled: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    per_endpoint: list[int] = field(default_factory=list)

    def metrics(self, endpoints: int) -> dict[str, int]:
        """``requests_sent``, ``requests_retried``, ``requests_cancelled``, ``retries_<kind>`` for
        every kind, ``cache_hits``, ``max_in_flight``, ``endpoints`` (how many are configured, so a
        fully cached rerun reports the same) and the busiest and idlest endpoint's attempts."""
        return {
            "requests_sent": self.sent,
            "requests_retried": sum(self.retries.values()),
            "requests_cancelled": self.cancelled,
            **{f"retries_{kind}": self.retries.get(kind, 0) for kind in RETRY_KINDS},
            "cache_hits": self.cache_hits,
            "max_in_flight": self.max_in_flight,
            "endpoints": endpoints,
            "requests_per_endpoint_max": max(self.per_endpoint, default=0),
            "requests_per_endpoint_min": min(self.per_endpoint, default=0),
        }


class Transport:
    """Sends request bodies to one or several OpenAI-compatible endpoints, in one event loop.

    Args:
        urls: the base URLs (``…/v1``), shared round-robin (a retry goes to the next one).
        api_key: the key itself (``None``: a dummy); only handed to the HTTP clients and
            scrubbed from every error message.
        max_concurrency: requests in flight at once (the window; a slot is held through retries).
        timeout: seconds; the HTTP timeout of the connect and of each read, and the longest
            wait for the next chunk of a reply.
        total_timeout: seconds one whole attempt may take (``None``: no limit).
        max_retries: retries after the first attempt.
        retry_wait: (initial, max) seconds of the jittered exponential backoff between attempts.
        retry_after_max: a server's ``Retry-After`` is honoured up to this many seconds.
        budget: the run's cost cap (``None``: none); ``max_tokens`` (completion tokens) is
            what each request may cost at most, besides its prompt.
        counts: the run's counters, counted into (default: new ones).
    """

    def __init__(self, urls: Sequence[str], api_key: str | None, *, max_concurrency: int, timeout: float,
                 total_timeout: float | None, max_retries: int, retry_wait: tuple[float, float],
                 retry_after_max: float = 120.0, budget: Budget | None = None, max_tokens: int = 0,
                 counts: RequestCounts | None = None) -> None:
        self.endpoints = Endpoints(urls, api_key, timeout)
        self.timeout, self.total_timeout = timeout, total_timeout
        self.max_retries, self.retry_wait, self.retry_after_max = max_retries, retry_wait, retry_after_max
        self.budget, self.max_tokens = budget, max_tokens
        self.counts = counts if counts is not None else RequestCounts()
        if len(self.counts.per_endpoint) != len(urls):  # the counts hold across the rounds of a run
            self.counts.per_endpoint = [0] * len(urls)
        self._window = asyncio.Semaphore(max_concurrency)

    async def send(self, body: dict[str, Any]) -> Completion:
        """The reply to the request ``body`` (:func:`~.request.request_body`), in a window slot,
        under the cost cap. The caller stores it before the slot's next user runs, so a SIGKILL
        pays again for at most the window.

        Raises:
            TeacherCostCap: sending could take the spend over the cap.
            TeacherRequestError: the request failed after ``max_retries`` retries, or with an
                error that is not retried (e.g. HTTP 400/401).
        """
        count = self.counts
        async with self._window:
            hold = 0.0
            if self.budget is not None:
                try:
                    hold = self.budget.reserve(prompt_tokens_upper_bound(body["messages"]), self.max_tokens)
                except CostCapReached as exc:
                    raise TeacherCostCap(str(exc)) from None
            count.in_flight += 1
            count.max_in_flight = max(count.max_in_flight, count.in_flight)
            completion = None
            try:
                completion = await self._retrying(body)
            finally:
                count.in_flight -= 1
                if self.budget is not None:
                    self.budget.settle(hold, completion and completion.prompt_tokens,
                                       completion and completion.completion_tokens)
            return completion

    def _wait(self, state: RetryCallState) -> float:
        initial, most = self.retry_wait
        backoff = wait_random_exponential(multiplier=initial, max=most)(state)
        hint = retry_after_seconds(state.outcome.exception() if state.outcome else None)
        return max(backoff, min(hint, self.retry_after_max)) if hint is not None else backoff

    def _before_sleep(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        self.counts.retries[retry_kind(exc) or "other"] += 1
        log.warning("teacher request failed (%s); retry %d in %.1f s", self.endpoints.describe(exc),
                    state.attempt_number, state.upcoming_sleep)

    async def _retrying(self, body: dict[str, Any]) -> Completion:
        kwargs, extra = split_sdk(body)
        if extra:  # fields the SDK has no argument for (llama.cpp's sampling)
            kwargs["extra_body"] = extra
        try:
            async for attempt in AsyncRetrying(stop=stop_after_attempt(self.max_retries + 1), wait=self._wait,
                                               retry=retry_if_exception(is_retryable),
                                               before_sleep=self._before_sleep, reraise=True):
                with attempt:
                    return await self._attempt(kwargs)
        except (openai.OpenAIError, asyncio.TimeoutError, IncompleteStream) as exc:
            said = exc.body.get("message") if isinstance(getattr(exc, "body", None), dict) else None
            raise TeacherRequestError(self.endpoints.describe(exc), getattr(exc, "status_code", None),
                                      param=getattr(exc, "param", None), endpoint_message=said) from None
        raise AssertionError("unreachable: tenacity either returns or reraises")  # pragma: no cover

    async def _attempt(self, kwargs: dict[str, Any]) -> Completion:
        n = self.endpoints.next()
        self.counts.sent += 1
        self.counts.per_endpoint[n] += 1
        if self.total_timeout is None:
            return await self._request(n, kwargs)
        return await asyncio.wait_for(self._request(n, kwargs), self.total_timeout)  # cancels it

    async def _request(self, n: int, kwargs: dict[str, Any]) -> Completion:
        """One streamed request to endpoint ``n``; an abandoned stream (a timeout, a cancelled
        task) is closed, which tells the server to stop generating it."""
        try:
            stream = await self.endpoints.open_stream(n, **kwargs, stream=True)
            return await read_stream(stream, self.timeout)  # closes the stream, also when cancelled
        except (asyncio.TimeoutError, asyncio.CancelledError, openai.APITimeoutError) as exc:
            if not dropped_connection(exc):  # the server's own drop is not a stream we gave up
                self.counts.cancelled += 1
            raise

    async def aclose(self) -> None:
        """Close the HTTP clients."""
        await self.endpoints.aclose()
