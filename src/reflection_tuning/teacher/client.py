"""The network side of the teacher: an OpenAI-compatible chat client with retries,
a sliding window of concurrent requests, and a content-addressed on-disk cache.

The cache key is the SHA-256 of (model, messages, temperature, top_p, max_tokens, seed,
template hash): never the base URL or the API key, so moving to another endpoint of
the same model reuses the cache, and no secret ever reaches the disk. Only replies that
came back (HTTP 200 with a choice) are cached, so a killed stage rerun pays only for
the requests that had not come back.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import openai
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_random_exponential
from tqdm.auto import tqdm

from reflection_tuning.teacher import TeacherConfig

log = logging.getLogger(__name__)

Messages = list[dict[str, str]]
CACHE_VERSION = 1
DUMMY_API_KEY = "no-key"  # for endpoints that need none (the embedded server)


@dataclass(frozen=True)
class Completion:
    """One teacher reply. Token counts are as the endpoint reports them (0 when it does not)."""

    content: str
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int
    cached: bool = False


class TeacherRequestError(RuntimeError):
    """A request that failed for good (after retries, or not retryable). The message holds no key."""


class ChatTeacher(Protocol):
    """What the reflection stages need from a teacher."""

    async def complete(self, messages: Messages) -> Completion: ...


def cache_key(cfg: TeacherConfig, messages: Messages, template_hash: str) -> str:
    """SHA-256 hex of what determines a reply: model, messages, sampling params, template hash."""
    blob = json.dumps(
        {
            "v": CACHE_VERSION,
            "model": cfg.model,
            "messages": messages,
            "temperature": cfg.temperature,
            "top_p": cfg.top_p,
            "max_tokens": cfg.max_tokens,
            "seed": cfg.seed,
            "template_hash": template_hash,
        },
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def is_retryable(exc: BaseException) -> bool:
    """Timeouts, connection errors, 408, 409, 429 and 5xx are retried; other errors are final."""
    if isinstance(exc, (openai.APIConnectionError, asyncio.TimeoutError)):  # includes APITimeoutError
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in (408, 409, 429) or exc.status_code >= 500
    return False


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
        cfg: the ``teacher:`` section.
        template_hash: hash of the prompt template in use (part of every cache key).
        api_key: the key itself (``None``: a dummy, for endpoints that need none). It is
            only handed to the HTTP client and scrubbed from every error message.
        base_url: the endpoint (``…/v1``); can be given later with :meth:`connect`.
        request_model: the model name sent in requests (default ``cfg.model``).
        backoff_initial, backoff_max: the jittered exponential backoff between attempts,
            in seconds.
        retry_after_max: a server's ``Retry-After`` is honoured up to this many seconds.
    """

    def __init__(
        self,
        cfg: TeacherConfig,
        *,
        template_hash: str,
        api_key: str | None = None,
        base_url: str | None = None,
        request_model: str | None = None,
        backoff_initial: float = 1.0,
        backoff_max: float = 60.0,
        retry_after_max: float = 120.0,
    ) -> None:
        self.cfg = cfg
        self.template_hash = template_hash
        self.request_model = request_model or cfg.model
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.retry_after_max = retry_after_max
        self._api_key = api_key
        self._client: openai.AsyncOpenAI | None = None
        self._window: asyncio.Semaphore | None = None
        self._cache: Any = None
        if cfg.cache_dir:
            import diskcache

            self._cache = diskcache.Cache(str(cfg.cache_dir))
        self.requests_sent = 0  # HTTP attempts, retries included
        self.requests_retried = 0
        self.cache_hits = 0
        self.in_flight = 0
        self.max_in_flight = 0
        if base_url:
            self.connect(base_url)

    # -- cache ---------------------------------------------------------------------------
    def key(self, messages: Messages) -> str:
        return cache_key(self.cfg, messages, self.template_hash)

    def cached(self, messages: Messages) -> Completion | None:
        """The cached reply to ``messages``, or ``None`` (does not count a hit)."""
        if self._cache is None:
            return None
        hit = self._cache.get(self.key(messages))
        return Completion(**hit, cached=True) if hit is not None else None

    def _store(self, messages: Messages, c: Completion) -> None:
        if self._cache is not None:
            value = {k: getattr(c, k) for k in ("content", "finish_reason", "prompt_tokens", "completion_tokens")}
            self._cache.set(self.key(messages), value)

    # -- network -------------------------------------------------------------------------
    def connect(self, base_url: str) -> None:
        """Create the HTTP client for ``base_url`` (the openai client's own retries are off)."""
        self._client = openai.AsyncOpenAI(
            base_url=base_url, api_key=self._api_key or DUMMY_API_KEY, timeout=self.cfg.timeout, max_retries=0
        )

    def _scrub(self, text: str) -> str:
        return text.replace(self._api_key, "***") if self._api_key else text

    def _wait(self, state: RetryCallState) -> float:
        backoff = wait_random_exponential(multiplier=self.backoff_initial, max=self.backoff_max)(state)
        hint = retry_after_seconds(state.outcome.exception() if state.outcome else None)
        return max(backoff, min(hint, self.retry_after_max)) if hint is not None else backoff

    def _before_sleep(self, state: RetryCallState) -> None:
        self.requests_retried += 1
        exc = state.outcome.exception() if state.outcome else None
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
        assert self._client is not None
        self.requests_sent += 1
        kwargs: dict[str, Any] = {}
        if self.cfg.seed is not None:
            kwargs["seed"] = self.cfg.seed
        reply = await self._client.chat.completions.create(
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

    async def complete(self, messages: Messages) -> Completion:
        """The reply to ``messages``, from the cache or the endpoint.

        At most ``cfg.max_concurrency`` calls are in flight at once (a slot is held through
        retries, so a rate-limited endpoint slows the whole window down).

        Raises:
            TeacherRequestError: the request failed after ``cfg.max_retries`` retries, or
                with an error that is not retried (e.g. HTTP 400/401), or no endpoint is set.
        """
        if (hit := self.cached(messages)) is not None:
            self.cache_hits += 1
            return hit
        if self._client is None:
            raise TeacherRequestError("no teacher endpoint connected")
        if self._window is None:
            self._window = asyncio.Semaphore(self.cfg.max_concurrency)
        async with self._window:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                async for attempt in AsyncRetrying(
                    stop=stop_after_attempt(self.cfg.max_retries + 1),
                    wait=self._wait,
                    retry=retry_if_exception(is_retryable),
                    before_sleep=self._before_sleep,
                    reraise=True,
                ):
                    with attempt:
                        completion = await self._attempt(messages)
            except TeacherRequestError:
                raise
            except (openai.OpenAIError, asyncio.TimeoutError) as exc:
                raise TeacherRequestError(self._describe(exc)) from None
            finally:
                self.in_flight -= 1
        self._store(messages, completion)
        return completion

    async def complete_all(self, batch: Sequence[Messages], desc: str = "teacher") -> list[Completion | TeacherRequestError]:
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
        """Close the HTTP client and the cache."""
        if self._client is not None:
            await self._client.close()
            self._client = None
        self.close_cache()

    def close_cache(self) -> None:
        """Close the on-disk cache (idempotent; it reopens on the next use)."""
        if self._cache is not None:
            self._cache.close()

    def stats(self) -> dict[str, int]:
        """Counters for the metrics: requests_sent, requests_retried, cache_hits, max_in_flight."""
        return {
            "requests_sent": self.requests_sent,
            "requests_retried": self.requests_retried,
            "cache_hits": self.cache_hits,
            "max_in_flight": self.max_in_flight,
        }
