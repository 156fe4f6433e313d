"""The network side of the teacher: an OpenAI-compatible chat client with retries, a
sliding window of concurrent requests, round-robin over several endpoints, the request
cache (:mod:`.cache`) and the cost cap (:mod:`.cost`).

The window is a semaphore, not gathered batches: a slot frees the moment its reply comes
back, where the reference code sends 10 requests and waits for the slowest of them.

Every request is streamed (:mod:`.stream`): ``teacher.timeout`` bounds the gap between two
chunks and ``teacher.total_timeout`` (optional) the whole attempt. A request that times out,
or whose task is cancelled (shutdown, a fatal error elsewhere), closes its stream, so the
server stops generating it instead of queueing the retry behind an abandoned generation.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Sequence

import openai
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_random_exponential
from tqdm.auto import tqdm

from reflection_tuning.llm.cache import Completion, Messages, ReplyCache, cache_key
from reflection_tuning.llm.config import EndpointConfig
from reflection_tuning.llm.cost import Budget, CostCapReached, prompt_tokens_upper_bound
from reflection_tuning.llm.endpoints import Endpoints
from reflection_tuning.llm.errors import ReplyFormatUnsupported, TeacherCostCap, TeacherRequestError, format_ignored
from reflection_tuning.llm.retry import RETRY_KINDS, dropped_connection, is_retryable, retry_after_seconds, retry_kind
from reflection_tuning.llm.stream import IncompleteStream, read_stream

log = logging.getLogger(__name__)


class Teacher:
    """An OpenAI-compatible chat teacher.

    Args:
        cfg: the ``teacher:`` section (``retry_wait_initial`` / ``retry_wait_max``: the
            jittered exponential backoff between attempts, in seconds).
        template_hash: hash of the prompt template in use (part of every cache key).
        api_key: the key itself (``None``: a dummy, for endpoints that need none). It is
            only handed to the HTTP client and scrubbed from every error message.
        base_url: one endpoint (``…/v1``) or several, shared round-robin (a retry goes to
            the next one); can be given later with :meth:`connect`.
        request_model: the model name sent in requests (default ``cfg.model``).
        budget: the cost cap (``None``: no cap).
        retry_after_max: a server's ``Retry-After`` is honoured up to this many seconds.
        response_format: the OpenAI ``response_format`` sent with every request (see
            :func:`~reflection_tuning.llm.stream.json_schema_format`; ``None``: none, free text).
            The first request is sent alone and checked: an endpoint that rejects (400/422) or ignores
            the option fails the stage there (:class:`ReplyFormatUnsupported`).
    """

    def __init__(
        self,
        cfg: EndpointConfig,
        *,
        template_hash: str,
        api_key: str | None = None,
        base_url: str | Sequence[str] | None = None,
        request_model: str | None = None,
        budget: Budget | None = None,
        retry_after_max: float = 120.0,
        response_format: dict | None = None,
    ) -> None:
        self.cfg = cfg
        self.template_hash = template_hash
        self.request_model = request_model or cfg.model
        self.budget = budget
        self.retry_after_max = retry_after_max
        self.response_format = response_format
        self._format_checked = response_format is None
        self._format_error: ReplyFormatUnsupported | None = None
        self._probe: asyncio.Lock | None = None
        self._api_key = api_key
        self.endpoints: Endpoints | None = None
        self._window: asyncio.Semaphore | None = None
        self.cache = ReplyCache(cfg.cache_dir)
        self.requests_sent = 0  # HTTP attempts, retries included
        self.retries: Counter[str] = Counter()
        self.cancelled = 0  # attempts whose stream we closed before the reply ended
        self.cache_hits = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.per_endpoint: list[int] = []
        if base_url:
            self.connect(base_url)

    # -- cache ---------------------------------------------------------------------------
    def key(self, messages: Messages) -> str:
        return cache_key(self.cfg, messages, self.template_hash, self.response_format)

    def cached(self, messages: Messages) -> Completion | None:
        """The cached reply to ``messages``, or ``None`` (does not count a hit)."""
        return self.cache.get(self.key(messages))

    # -- network -------------------------------------------------------------------------
    def connect(self, base_url: str | Sequence[str]) -> None:
        """Open the endpoints (:class:`~.endpoints.Endpoints`; ``teacher.timeout`` is their HTTP
        timeout, which bounds the connect and each read as the idle limit does)."""
        self.endpoints = Endpoints([base_url] if isinstance(base_url, str) else list(base_url), self._api_key,
                                   self.cfg.timeout)
        self.per_endpoint = [0] * len(self.endpoints)

    def _describe(self, exc: BaseException | None) -> str:
        assert self.endpoints is not None
        return self.endpoints.describe(exc)

    def _wait(self, state: RetryCallState) -> float:
        backoff = wait_random_exponential(multiplier=self.cfg.retry_wait_initial, max=self.cfg.retry_wait_max)(state)
        hint = retry_after_seconds(state.outcome.exception() if state.outcome else None)
        return max(backoff, min(hint, self.retry_after_max)) if hint is not None else backoff

    def _before_sleep(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        self.retries[retry_kind(exc) or "other"] += 1
        log.warning("teacher request failed (%s); retry %d in %.1f s", self._describe(exc), state.attempt_number,
                    state.upcoming_sleep)

    async def _attempt(self, messages: Messages) -> Completion:
        assert self.endpoints is not None
        n = self.endpoints.next()
        self.requests_sent += 1
        self.per_endpoint[n] += 1
        kwargs: dict[str, object] = {"model": self.request_model, "messages": messages,
                                     "temperature": self.cfg.temperature, "top_p": self.cfg.top_p,
                                     "max_tokens": self.cfg.max_tokens}
        if self.cfg.seed is not None:
            kwargs["seed"] = self.cfg.seed
        if self.cfg.frequency_penalty is not None:
            kwargs["frequency_penalty"] = self.cfg.frequency_penalty
        if self.response_format is not None:
            kwargs["response_format"] = self.response_format
        if self.cfg.total_timeout is None:
            return await self._request(n, kwargs)
        return await asyncio.wait_for(self._request(n, kwargs), self.cfg.total_timeout)  # cancels it when past

    async def _request(self, n: int, kwargs: dict[str, object]) -> Completion:
        """One streamed request to endpoint ``n``; an abandoned stream (a timeout, a cancelled
        task) is closed, which tells the server to stop generating it."""
        assert self.endpoints is not None
        try:
            stream = await self.endpoints.open_stream(n, **kwargs, stream=True)
            return await read_stream(stream, self.cfg.timeout)  # closes the stream, also when cancelled
        except (asyncio.TimeoutError, asyncio.CancelledError, openai.APITimeoutError) as exc:
            if not dropped_connection(exc):  # the server's own drop is not a stream we gave up
                self.cancelled += 1
            raise

    async def _send(self, messages: Messages) -> Completion:
        try:
            async for attempt in AsyncRetrying(stop=stop_after_attempt(self.cfg.max_retries + 1), wait=self._wait,
                                               retry=retry_if_exception(is_retryable),
                                               before_sleep=self._before_sleep, reraise=True):
                with attempt:
                    return await self._attempt(messages)
        except TeacherRequestError:
            raise
        except (openai.OpenAIError, asyncio.TimeoutError, IncompleteStream) as exc:
            raise TeacherRequestError(self._describe(exc), getattr(exc, "status_code", None)) from None
        raise AssertionError("unreachable: tenacity either returns or reraises")  # pragma: no cover

    async def complete(self, messages: Messages) -> Completion:
        """The reply to ``messages``, from the cache or the endpoint.

        At most ``cfg.max_concurrency`` calls are in flight at once (a slot is held through
        retries, so a rate-limited endpoint slows the whole window down). A reply is stored
        in the cache the moment it arrives. With a ``response_format``, the first request to
        the endpoint goes alone and is checked before any other is sent.

        Raises:
            TeacherCostCap: sending could take the spend over ``teacher.max_cost``.
            TeacherRequestError: the request failed after ``cfg.max_retries`` retries, or
                with an error that is not retried (e.g. HTTP 400/401), or no endpoint is set.
            ReplyFormatUnsupported: the endpoint rejected ``response_format`` (HTTP 400/422), or
                ignored it (a finished reply that is not a JSON object).
        """
        if (hit := self.cached(messages)) is not None:
            self.cache_hits += 1
            return hit
        if self.endpoints is None:
            raise TeacherRequestError("no teacher endpoint connected")
        if not self._format_checked:
            if self._probe is None:
                self._probe = asyncio.Lock()
            async with self._probe:
                if self._format_error is not None:
                    raise self._format_error
                if not self._format_checked:
                    return self._store(messages, self._check_format(await self._probe_fetch(messages)))
        return self._store(messages, await self._fetch(messages))

    async def _probe_fetch(self, messages: Messages) -> Completion:
        try:
            return await self._fetch(messages)
        except TeacherCostCap:
            raise
        except TeacherRequestError as exc:
            if exc.status_code in (400, 422):  # a bad request, not a key (401/403) or model (404) problem
                self._format_error = ReplyFormatUnsupported.refused(exc)
                raise self._format_error from None
            raise  # not about the format (e.g. a timeout): the next request is the probe

    def _check_format(self, completion: Completion) -> Completion:
        if completion.finish_reason == "stop":
            self._format_error = format_ignored(completion.content)
            if self._format_error is not None:
                raise self._format_error
            self._format_checked = True
        return completion  # cut off (length): cannot tell yet, the next request checks again

    def _store(self, messages: Messages, completion: Completion) -> Completion:
        self.cache.set(self.key(messages), completion)
        return completion

    async def _fetch(self, messages: Messages) -> Completion:
        """Send ``messages`` in a window slot, under the cost cap (not cached here)."""
        if self._window is None:
            self._window = asyncio.Semaphore(self.cfg.max_concurrency)
        async with self._window:
            hold = 0.0
            if self.budget is not None:
                try:
                    hold = self.budget.reserve(prompt_tokens_upper_bound(messages), self.cfg.max_tokens)
                except CostCapReached as exc:
                    raise TeacherCostCap(str(exc)) from None
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            completion = None
            try:
                completion = await self._send(messages)
            finally:
                self.in_flight -= 1
                if self.budget is not None:
                    self.budget.settle(hold, completion and completion.prompt_tokens,
                                       completion and completion.completion_tokens)
            # the caller stores it before the slot's next user runs: a SIGKILL re-pays at most the window
            return completion

    async def complete_all(
        self, batch: Sequence[Messages], desc: str = "teacher"
    ) -> list[Completion | TeacherRequestError]:
        """Replies to every message list, in order; a failed request is returned as its error.

        Shows a tqdm bar (one tick per reply, cached or not). Other exceptions propagate,
        after every request still in flight is cancelled (its stream closed).
        """
        bar = tqdm(total=len(batch), desc=desc, unit="req", mininterval=1.0)

        async def one(messages: Messages) -> Completion | TeacherRequestError:
            try:
                return await self.complete(messages)
            except TeacherRequestError as exc:
                return exc
            finally:
                bar.update(1)

        tasks = [asyncio.ensure_future(one(m)) for m in batch]
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException:  # a fatal error, Ctrl-C or a cancelled run: abandon the rest cleanly
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        finally:
            bar.close()

    async def aclose(self) -> None:
        """Close the HTTP clients and the cache."""
        if self.endpoints is not None:
            await self.endpoints.aclose()
            self.endpoints = None
        self.cache.close()

    def close_cache(self) -> None:
        """Close the on-disk cache (idempotent; it reopens on the next use)."""
        self.cache.close()

    def stats(self) -> dict[str, int]:
        """Counters for the metrics: requests_sent, requests_retried (and by kind),
        requests_cancelled (attempts abandoned mid-stream: timeouts, shutdown),
        cache_hits, max_in_flight, and the busiest and idlest endpoint's requests."""
        out = {
            "requests_sent": self.requests_sent,
            "requests_retried": sum(self.retries.values()),
            "requests_cancelled": self.cancelled,
            **{f"retries_{kind}": self.retries.get(kind, 0) for kind in RETRY_KINDS},
            "cache_hits": self.cache_hits,
            "max_in_flight": self.max_in_flight,
            "endpoints": len(self.cfg.base_urls),  # configured, so a fully cached rerun reports the same
            "requests_per_endpoint_max": max(self.per_endpoint, default=0),
            "requests_per_endpoint_min": min(self.per_endpoint, default=0),
        }
        return out
