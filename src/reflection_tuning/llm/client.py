"""The network side of the teacher: an OpenAI-compatible chat client with retries, a
sliding window of concurrent requests, round-robin over several endpoints, the request
cache (:mod:`.cache`) and the cost cap (:mod:`.cost`).

The window is a semaphore, not gathered batches: a slot frees the moment its reply comes
back, where the reference code sends 10 requests and waits for the slowest of them.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import time
from collections import Counter
from collections.abc import Sequence
from typing import Protocol

import openai
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_random_exponential
from tqdm.auto import tqdm

from reflection_tuning.teacher import TeacherConfig
from reflection_tuning.llm.cache import Completion, Messages, ReplyCache, cache_key
from reflection_tuning.llm.cost import Budget, CostCapReached, prompt_tokens_upper_bound

log = logging.getLogger(__name__)

DUMMY_API_KEY = "no-key"  # for endpoints that need none (the embedded server)
RETRY_KINDS = ("rate_limited", "server_error", "timeout", "connection")

__all__ = ["ChatTeacher", "Completion", "Messages", "Teacher", "TeacherCostCap", "TeacherRequestError",
           "cache_key", "is_retryable", "retry_after_seconds", "retry_kind"]


class TeacherRequestError(RuntimeError):
    """A request that failed for good (after retries, or not retryable). The message holds no key."""


class TeacherCostCap(TeacherRequestError):
    """A request not sent because it could take the spend over ``teacher.max_cost``."""


class ChatTeacher(Protocol):
    """What the reflection stages need from a teacher."""

    async def complete(self, messages: Messages) -> Completion: ...


def retry_kind(exc: BaseException | None) -> str | None:
    """``rate_limited`` (429), ``server_error`` (408, 409, 5xx), ``timeout``, ``connection``
    (refused, reset, a body cut off), or ``None`` for an error that is final (e.g. 400, 401)."""
    if isinstance(exc, (openai.APITimeoutError, asyncio.TimeoutError)):
        return "timeout"
    if isinstance(exc, openai.APIConnectionError):
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
    """

    def __init__(
        self,
        cfg: TeacherConfig,
        *,
        template_hash: str,
        api_key: str | None = None,
        base_url: str | Sequence[str] | None = None,
        request_model: str | None = None,
        budget: Budget | None = None,
        retry_after_max: float = 120.0,
    ) -> None:
        self.cfg = cfg
        self.template_hash = template_hash
        self.request_model = request_model or cfg.model
        self.budget = budget
        self.retry_after_max = retry_after_max
        self._api_key = api_key
        self._clients: list[openai.AsyncOpenAI] = []
        self._turn = 0
        self._window: asyncio.Semaphore | None = None
        self.cache = ReplyCache(cfg.cache_dir)
        self.requests_sent = 0  # HTTP attempts, retries included
        self.retries: Counter[str] = Counter()
        self.cache_hits = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.per_endpoint: list[int] = []
        if base_url:
            self.connect(base_url)

    # -- cache ---------------------------------------------------------------------------
    def key(self, messages: Messages) -> str:
        return cache_key(self.cfg, messages, self.template_hash)

    def cached(self, messages: Messages) -> Completion | None:
        """The cached reply to ``messages``, or ``None`` (does not count a hit)."""
        return self.cache.get(self.key(messages))

    # -- network -------------------------------------------------------------------------
    def connect(self, base_url: str | Sequence[str]) -> None:
        """Create one HTTP client per endpoint (the openai client's own retries are off)."""
        urls = [base_url] if isinstance(base_url, str) else list(base_url)
        self._clients = [
            openai.AsyncOpenAI(base_url=u, api_key=self._api_key or DUMMY_API_KEY, timeout=self.cfg.timeout,
                               max_retries=0)
            for u in urls
        ]
        self.per_endpoint = [0] * len(urls)

    def _scrub(self, text: str) -> str:
        return text.replace(self._api_key, "***") if self._api_key else text

    def _wait(self, state: RetryCallState) -> float:
        backoff = wait_random_exponential(multiplier=self.cfg.retry_wait_initial, max=self.cfg.retry_wait_max)(state)
        hint = retry_after_seconds(state.outcome.exception() if state.outcome else None)
        return max(backoff, min(hint, self.retry_after_max)) if hint is not None else backoff

    def _before_sleep(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        self.retries[retry_kind(exc) or "other"] += 1
        log.warning("teacher request failed (%s); retry %d in %.1f s", self._describe(exc), state.attempt_number,
                    state.upcoming_sleep)

    def _describe(self, exc: BaseException | None) -> str:
        if isinstance(exc, openai.APIStatusError):
            text = f"HTTP {exc.status_code}: {exc.message}"
            body = json.dumps(exc.body, default=str, ensure_ascii=False)[:300] if exc.body is not None else ""
            if body and body.strip('"') not in text:
                text += f" {body}"
            return self._scrub(text)
        return self._scrub(f"{type(exc).__name__}: {exc}")

    async def _attempt(self, messages: Messages) -> Completion:
        n = self._turn % len(self._clients)
        self._turn += 1
        self.requests_sent += 1
        self.per_endpoint[n] += 1
        kwargs = {"seed": self.cfg.seed} if self.cfg.seed is not None else {}
        if self.cfg.frequency_penalty is not None:
            kwargs["frequency_penalty"] = self.cfg.frequency_penalty
        reply = await self._clients[n].chat.completions.create(
            model=self.request_model,
            messages=messages,  # type: ignore[arg-type]
            temperature=self.cfg.temperature,
            top_p=self.cfg.top_p,
            max_tokens=self.cfg.max_tokens,
            **kwargs,
        )
        if not reply.choices:
            raise TeacherRequestError("the endpoint returned no choices")
        choice = reply.choices[0]
        usage = reply.usage
        return Completion(
            content=choice.message.content or "",
            finish_reason=choice.finish_reason,
            prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
        )

    async def _send(self, messages: Messages) -> Completion:
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(self.cfg.max_retries + 1),
                wait=self._wait,
                retry=retry_if_exception(is_retryable),
                before_sleep=self._before_sleep,
                reraise=True,
            ):
                with attempt:
                    return await self._attempt(messages)
        except TeacherRequestError:
            raise
        except (openai.OpenAIError, asyncio.TimeoutError) as exc:
            raise TeacherRequestError(self._describe(exc)) from None
        raise AssertionError("unreachable: tenacity either returns or reraises")  # pragma: no cover

    async def complete(self, messages: Messages) -> Completion:
        """The reply to ``messages``, from the cache or the endpoint.

        At most ``cfg.max_concurrency`` calls are in flight at once (a slot is held through
        retries, so a rate-limited endpoint slows the whole window down). A reply is stored
        in the cache the moment it arrives.

        Raises:
            TeacherCostCap: sending could take the spend over ``teacher.max_cost``.
            TeacherRequestError: the request failed after ``cfg.max_retries`` retries, or
                with an error that is not retried (e.g. HTTP 400/401), or no endpoint is set.
        """
        if (hit := self.cached(messages)) is not None:
            self.cache_hits += 1
            return hit
        if not self._clients:
            raise TeacherRequestError("no teacher endpoint connected")
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
            # stored before the slot frees: a SIGKILL re-pays at most max_concurrency requests
            self.cache.set(self.key(messages), completion)
        return completion

    async def complete_all(
        self, batch: Sequence[Messages], desc: str = "teacher"
    ) -> list[Completion | TeacherRequestError]:
        """Replies to every message list, in order; a failed request is returned as its error.

        Shows a tqdm bar (one tick per reply, cached or not). Other exceptions propagate.
        """
        bar = tqdm(total=len(batch), desc=desc, unit="req", mininterval=1.0)

        async def one(messages: Messages) -> Completion | TeacherRequestError:
            try:
                return await self.complete(messages)
            except TeacherRequestError as exc:
                return exc
            finally:
                bar.update(1)

        try:
            return list(await asyncio.gather(*(one(m) for m in batch)))
        finally:
            bar.close()

    async def aclose(self) -> None:
        """Close the HTTP clients and the cache."""
        for client in self._clients:
            await client.close()
        self._clients = []
        self.cache.close()

    def close_cache(self) -> None:
        """Close the on-disk cache (idempotent; it reopens on the next use)."""
        self.cache.close()

    def stats(self) -> dict[str, int]:
        """Counters for the metrics: requests_sent, requests_retried (and by kind),
        cache_hits, max_in_flight, and the busiest and idlest endpoint's requests."""
        out = {
            "requests_sent": self.requests_sent,
            "requests_retried": sum(self.retries.values()),
            **{f"retries_{kind}": self.retries.get(kind, 0) for kind in RETRY_KINDS},
            "cache_hits": self.cache_hits,
            "max_in_flight": self.max_in_flight,
            "endpoints": len(self.cfg.base_urls),  # configured, so a fully cached rerun reports the same
            "requests_per_endpoint_max": max(self.per_endpoint, default=0),
            "requests_per_endpoint_min": min(self.per_endpoint, default=0),
        }
        return out
