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
import dataclasses
import logging
from collections import Counter
from collections.abc import Sequence

import openai
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_random_exponential
from tqdm.auto import tqdm

from reflection_tuning.llm.cache import Completion, Messages, ReplyCache
from reflection_tuning.llm.config import EndpointConfig
from reflection_tuning.llm.cost import Budget, CostCapReached, prompt_tokens_upper_bound
from reflection_tuning.llm.endpoints import Endpoints
from reflection_tuning.llm.errors import EndpointRefused, TeacherCostCap, TeacherRequestError, format_ignored
from reflection_tuning.llm.request import AUTO, Adaptations, adaptations_name, body_key, request_body, split_sdk
from reflection_tuning.llm.retry import RETRY_KINDS, dropped_connection, is_retryable, retry_after_seconds, retry_kind
from reflection_tuning.llm.stream import IncompleteStream, is_json_object, read_stream

log = logging.getLogger(__name__)


# Parameters whose refusal concerns what one request holds (OpenAI's context_length_exceeded names
# ``messages``), not the endpoint.
PER_REQUEST = frozenset({"messages"})


def endpoint_wide(exc: TeacherRequestError) -> bool:
    """A refusal that every request of the run would get: a key or a model the endpoint does not
    know (401, 403, 404), or a parameter it names (``error.param``, or ``response_format`` in
    its words) that no adaptation removes. A 400 without a parameter may be about one request
    alone (a prompt too long for the context), so it is that row's ``request_error``."""
    per_request = exc.param in PER_REQUEST
    return (exc.status_code in (401, 403, 404) or (bool(exc.param) and not per_request)
            or "response_format" in exc.endpoint_message)


class Teacher:
    """An OpenAI-compatible chat teacher for one stage run: its cache, endpoints, cost cap,
    counters and adaptations hold across every round (the first asks and the re-asks).

    Args:
        cfg: the ``teacher:`` section (``retry_wait_initial`` / ``retry_wait_max``: the
            jittered exponential backoff between attempts, in seconds).
        template_hash: hash of the prompt template in use (part of every cache key).
        api_key: the key itself (``None``: a dummy, for endpoints that need none). It is
            only handed to the HTTP client and scrubbed from every error message.
        base_url: one endpoint (``…/v1``) or several, shared round-robin (a retry goes to
            the next one); can be given later with :meth:`connect`.
        budget: the cost cap (``None``: no cap).
        retry_after_max: a server's ``Retry-After`` is honoured up to this many seconds.
        response_format: the OpenAI ``response_format`` of the step (see
            :func:`~reflection_tuning.llm.stream.json_schema_format`; ``None``: free text).

    The first request the run sends goes alone: an endpoint that refuses one of its
    parameters by name (HTTP 400/422 with ``error.param``) gets it again without it, or
    renamed, or in markers (:class:`~.request.Adaptations`); one that refuses it otherwise
    (a bad model or key), or ignores an explicit ``json_schema``, stops the stage with one line.
    """

    def __init__(
        self,
        cfg: EndpointConfig,
        *,
        template_hash: str,
        api_key: str | None = None,
        base_url: str | Sequence[str] | None = None,
        budget: Budget | None = None,
        retry_after_max: float = 120.0,
        response_format: dict | None = None,
    ) -> None:
        self.cfg = cfg
        self.sampling = cfg  # this round's sampling parameters (a re-ask has its own seed)
        self.template_hash = template_hash
        self.budget = budget
        self.retry_after_max = retry_after_max
        self.response_format = response_format
        self._checked = False  # the first request of the run came back usable
        self._fatal: BaseException | None = None
        self._probe: asyncio.Lock | None = None
        self._api_key = api_key
        self.endpoints: Endpoints | None = None
        self._window: asyncio.Semaphore | None = None
        self.cache = ReplyCache(cfg.cache_dir)
        self._meta = adaptations_name(cfg)
        self.adaptations = Adaptations.from_json(self.cache.meta(self._meta))
        if cfg.reply_format != AUTO:  # markers were auto's choice; an explicit format is sent as asked
            self.adaptations.forget_format()
        if self.adaptations.notes:
            log.info("%s: the adaptations of an earlier run hold: %s", cfg.model, "; ".join(self.adaptations.notes))
        self.requests_sent = 0  # HTTP attempts, retries included
        self.retries: Counter[str] = Counter()
        self.cancelled = 0  # attempts whose stream we closed before the reply ended
        self.cache_hits = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.per_endpoint: list[int] = []
        if base_url:
            self.connect(base_url)

    # -- requests and the cache -----------------------------------------------------------
    def body(self, messages: Messages) -> dict:
        """The request body for ``messages`` as it is sent now (:func:`~.request.request_body`)."""
        return request_body(self.sampling, messages, response_format=self.response_format,
                            adaptations=self.adaptations)

    def key(self, messages: Messages) -> str:
        return body_key(self.body(messages), self.template_hash)

    def cached(self, messages: Messages) -> Completion | None:
        """The cached reply to ``messages``, or ``None`` (does not count a hit)."""
        hit = self.cache.get(self.key(messages))
        return self.mark(hit, self.body(messages)) if hit is not None else None

    def mark(self, completion: Completion, body: dict) -> Completion:
        return dataclasses.replace(completion, structured="response_format" in body,
                                   adaptations=tuple(self.adaptations.notes))

    # -- network -------------------------------------------------------------------------
    def connect(self, base_url: str | Sequence[str]) -> None:
        """Open the endpoints (:class:`~.endpoints.Endpoints`; ``teacher.timeout`` is their HTTP
        timeout, which bounds the connect and each read as the idle limit does)."""
        self.endpoints = Endpoints([base_url] if isinstance(base_url, str) else list(base_url), self._api_key,
                                   self.cfg.timeout)
        if len(self.per_endpoint) != len(self.endpoints):  # the counts hold across the rounds of a run
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
        body = self.body(messages)
        kwargs, extra = split_sdk(body)
        if extra:  # fields the SDK has no argument for (llama.cpp's sampling)
            kwargs["extra_body"] = extra
        if self.cfg.total_timeout is None:
            completion = await self._request(n, kwargs)
        else:
            completion = await asyncio.wait_for(self._request(n, kwargs), self.cfg.total_timeout)  # cancels it
        return self.mark(completion, body)

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
            body = getattr(exc, "body", None)
            said = body.get("message") if isinstance(body, dict) else None
            raise TeacherRequestError(self._describe(exc), getattr(exc, "status_code", None),
                                      param=getattr(exc, "param", None), endpoint_message=said) from None
        raise AssertionError("unreachable: tenacity either returns or reraises")  # pragma: no cover

    async def complete(self, messages: Messages) -> Completion:
        """The reply to ``messages``, from the cache or the endpoint.

        At most ``cfg.max_concurrency`` calls are in flight at once (a slot is held through
        retries, so a rate-limited endpoint slows the whole window down). A reply is stored
        in the cache the moment it arrives. The run's first request to the endpoint goes
        alone and is checked before any other is sent (see the class).

        Raises:
            TeacherCostCap: sending could take the spend over ``teacher.max_cost``.
            TeacherRequestError: the request failed after ``cfg.max_retries`` retries, or
                with an error that is not retried (e.g. HTTP 400/401), or no endpoint is set.
            EndpointRefused: the endpoint refused the run's first request and no adaptation helps.
            ReplyFormatUnsupported: ``reply_format: json_schema`` and the endpoint ignored it.
        """
        if (hit := self.cached(messages)) is not None:
            self.cache_hits += 1
            return hit
        if self.endpoints is None:
            raise TeacherRequestError("no teacher endpoint connected")
        if not self._checked:
            if self._probe is None:
                self._probe = asyncio.Lock()
            async with self._probe:
                if self._fatal is not None:
                    raise self._fatal
                if not self._checked:
                    return self._store(messages, await self._first(messages))
                if (hit := self.cached(messages)) is not None:  # the probe's adaptations may have answered it
                    self.cache_hits += 1
                    return hit
        return self._store(messages, await self._fetch(messages))

    async def _first(self, messages: Messages) -> Completion:
        """The run's first request, adapted until the endpoint accepts it (each parameter once)."""
        while True:
            try:
                completion = await self._fetch(messages)
            except TeacherCostCap:
                raise
            except TeacherRequestError as exc:
                if not exc.refusal:
                    raise  # not about the request (a timeout, a 5xx after retries): the next one probes
                note = self.adaptations.adapt(self.body(messages), exc.param, exc.endpoint_message,
                                              self.cfg.reply_format)
                if note is None and endpoint_wide(exc):
                    self._fatal = EndpointRefused.of(exc, self.cfg.model, self.cfg.reply_format)
                    raise self._fatal from None
                if note is None:
                    raise  # about this request alone (e.g. too long for the context): the next one probes
                self._adapted(note)
                continue
            if completion.structured and completion.finish_reason == "stop" and not is_json_object(completion.content):
                if self.cfg.reply_format != AUTO:
                    self._fatal = format_ignored(completion.content)
                    raise self._fatal
                self._adapted(self.adaptations.ignored_format(completion.content))
                continue
            # a structured reply cut at max_tokens cannot tell whether the format is honoured: the next one probes
            self._checked = not (completion.structured and completion.finish_reason != "stop")
            return completion

    def _adapted(self, note: str) -> None:
        log.warning("%s: the endpoint refused a parameter; %s (for the rest of this run)", self.cfg.model, note)
        self.cache.set_meta(self._meta, self.adaptations.to_json())

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
                    hold = self.budget.reserve(prompt_tokens_upper_bound(messages), self.sampling.max_tokens)
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
        self, batch: Sequence[Messages], desc: str = "teacher", sampling: EndpointConfig | None = None
    ) -> list[Completion | TeacherRequestError]:
        """Replies to every message list, in order; a failed request is returned as its error.

        Args:
            sampling: this round's sampling parameters (default the run's; a re-ask passes
                its own seed and temperature, so its replies have their own cache keys).

        Shows a tqdm bar (one tick per reply, cached or not). Other exceptions propagate,
        after every request still in flight is cancelled (its stream closed).
        """
        self.sampling = sampling or self.cfg
        self._window = self._probe = None  # each round runs in an event loop of its own
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
        cache_hits, max_in_flight, the busiest and idlest endpoint's requests, and the
        adaptations (:meth:`~.request.Adaptations.metrics`)."""
        return {
            "requests_sent": self.requests_sent,
            "requests_retried": sum(self.retries.values()),
            "requests_cancelled": self.cancelled,
            **{f"retries_{kind}": self.retries.get(kind, 0) for kind in RETRY_KINDS},
            "cache_hits": self.cache_hits,
            "max_in_flight": self.max_in_flight,
            "endpoints": len(self.cfg.base_urls),  # configured, so a fully cached rerun reports the same
            "requests_per_endpoint_max": max(self.per_endpoint, default=0),
            "requests_per_endpoint_min": min(self.per_endpoint, default=0),
            **self.adaptations.metrics(),
        }
