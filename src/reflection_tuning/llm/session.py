"""One stage run's requests to its endpoint: the cache, the adaptations, the cost cap and the
counters hold across every round (the first asks and the re-asks).

:class:`Session` is what :func:`reflection_tuning.llm.runner.run_step` sends through. A round
(:meth:`Session.send`) builds its requests' fields once (:class:`~.request.Form`), answers what
the cache (:mod:`.cache`) holds, and sends the rest through the Batch API (:mod:`.batch`) or a
:class:`~.client.Transport` of the round (window, retries, streams), to the endpoints or to the
embedded llama.cpp server (:mod:`.server`), started only when a request is not cached (so a
fully cached rerun starts nothing), kept for every round, and stopped on exit.

The run's first request goes alone (online, also in ``mode: batch``): an endpoint that
refuses one of its parameters by name (HTTP 400/422 with ``error.param``) gets it again
without it, or renamed, or in markers (:class:`~.request.Adaptations`, kept beside the
cache); one that refuses it otherwise (a bad model or key), or ignores an explicit
``json_schema``, stops the stage with one line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence

from tqdm.auto import tqdm

from reflection_tuning.llm.batch import run_batch
from reflection_tuning.llm.cache import Completion, Messages, ReplyCache
from reflection_tuning.llm.client import RequestCounts, Transport
from reflection_tuning.llm.config import EMBEDDED, EndpointConfig
from reflection_tuning.llm.cost import Budget
from reflection_tuning.llm.errors import EndpointRefused, ReplyFormatUnsupported, TeacherCostCap, TeacherRequestError
from reflection_tuning.llm.request import AUTO, Adaptations, Form, adaptations_name

log = logging.getLogger(__name__)

Result = Completion | TeacherRequestError


class Session(contextlib.AbstractContextManager):
    """The requests of one stage run; use it as a context manager (it stops the embedded server).

    Args:
        cfg: the endpoint section (``teacher:`` or ``judge:``).
        template_hash: the step's prompt hash (part of every cache key).
        api_key: the key itself (``None``: a dummy), never stored on disk.
        base_url: the endpoint(s) to send to (default: ``cfg``'s, or the embedded server);
            can be given later with :meth:`connect`.
        sizing: every request of the run, to size the embedded server's slots once.
        response_format: the OpenAI ``response_format`` of the step (structured outputs; see
            :func:`~reflection_tuning.llm.stream.json_schema_format`), or ``None``: free text.
        budget: the cost cap (default: ``cfg.price`` and ``cfg.max_cost``'s).
    """

    def __init__(self, cfg: EndpointConfig, *, template_hash: str, api_key: str | None = None,
                 base_url: str | Sequence[str] | None = None, sizing: Sequence[Messages] = (),
                 response_format: dict | None = None, budget: Budget | None = None) -> None:
        self.cfg = self.sampling = cfg  # sampling: this round's (a re-ask has its own seed)
        self.template_hash, self.response_format = template_hash, response_format
        self._api_key, self._urls, self._sizing = api_key, base_url, sizing
        self.cache = ReplyCache(cfg.cache_dir)
        self._meta = adaptations_name(cfg)
        self.adaptations = Adaptations.held(self.cache.meta(self._meta), cfg.reply_format)
        self.form = Form.of(cfg, template_hash, response_format, self.adaptations)
        if budget is None:
            price = cfg.price_usd()
            budget = Budget(price, cfg.max_cost)
        self.budget = budget
        if self.adaptations.notes:
            log.info("%s: the adaptations of an earlier run hold: %s", cfg.model, "; ".join(self.adaptations.notes))
        self.counts = RequestCounts()
        self._client: Transport | None = None  # this round's
        self._probe: asyncio.Lock | None = None
        self._checked = False  # the first request of the run came back usable
        self._fatal: BaseException | None = None
        self._stack = contextlib.ExitStack()
        self._stack.callback(self.cache.close)

    def __exit__(self, *exc) -> None:
        self._stack.close()

    def key(self, messages: Messages) -> str:
        """The cache key of the request for ``messages`` in this round."""
        return self.form.key(messages)

    def cached(self, messages: Messages) -> Completion | None:
        """The cached reply to ``messages`` in this round, or ``None`` (does not count a hit)."""
        return self.form.mark(self.cache.get(self.form.key(messages)))

    def send(self, batch: Sequence[Messages], cfg: EndpointConfig | None = None, desc: str = "teacher") -> list[Result]:
        """Replies to every message list in ``batch``, in order (a failed request as its error).

        Args:
            cfg: the sampling parameters of this round (default the run's; a re-ask passes its
                own seed, so its replies have their own cache keys).

        Raises:
            FileNotFoundError, RuntimeError, TimeoutError: the embedded server cannot start.
            openai.OpenAIError: the Batch API could not be reached (``mode: batch``).
            EndpointRefused, ReplyFormatUnsupported: the endpoint refused the run's first request.
        """
        self.sampling = cfg or self.cfg
        self.form = form = Form.of(self.sampling, self.template_hash, self.response_format, self.adaptations)
        try:
            missing = [m for m in batch if self.cache.get(form.key(m)) is None]
            misses = len(missing)
            log.info("%s: %d requests, %d cached, %d to send", desc, len(batch), len(batch) - misses, misses)
            if misses and self.cfg.mode == "batch":
                return self._send_batch(batch, missing[0], desc)
            if misses and self._urls is None and self.cfg.base_url == EMBEDDED:
                from reflection_tuning.llm.server import embedded_server, slot_context

                # a re-ask with feedback also carries the failed reply in its prompt
                ctx = slot_context(self._sizing or batch, self.cfg.max_tokens,
                                   feedback=bool(self.cfg.reask and self.cfg.reask_feedback))
                self._urls = self._stack.enter_context(
                    embedded_server(self.cfg.model, parallel=self.cfg.max_concurrency, slot_ctx=ctx))
            elif misses and self._urls is None:
                self._urls = self.cfg.base_urls
            return asyncio.run(self.complete_all(batch, desc, sampling=self.sampling))
        finally:
            self.cache.close()  # also when the server cannot start; it reopens on the next use

    def _send_batch(self, batch: Sequence[Messages], first: Messages, desc: str) -> list[Result]:
        """``send`` through the Batch API. The run's first request goes alone and online, as in
        the online mode, so that a refused parameter is adapted (or stops the stage) in seconds,
        not after a batch that fails line by line within its 24 h window; its reply is cached,
        and the batch carries the adapted bodies of the rest (``first``: the first request the cache
        cannot answer)."""
        form, online = self.form, None
        if not self._checked:
            self._urls = self._urls or self.cfg.base_urls
            [reply] = asyncio.run(self.complete_all([first], f"{desc} (first request, online)", sampling=self.sampling))
            form = self.form  # adapted, if the endpoint refused a parameter
            # a reply is cached and counted; a request that failed (e.g. 5xx after its retries) goes in the batch too
            online = form.key(first) if isinstance(reply, Completion) else None
        keys = [form.key(m) for m in batch]
        results = run_batch(self.sampling, self._api_key, [form.body(m) for m in batch], self.cache, keys,
                            budget=self.budget)
        for key, r in zip(keys, results):  # the online first request is counted as sent already
            if isinstance(r, Completion) and key != online:
                self.counts.cache_hits += r.cached
                self.counts.sent += not r.cached
        return [form.mark(r) if isinstance(r, Completion) else r for r in results]

    async def complete_all(self, batch: Sequence[Messages], desc: str = "teacher",
                           sampling: EndpointConfig | None = None) -> list[Result]:
        """Replies to every message list, in order; a failed request is returned as its error.

        Args:
            sampling: this round's sampling parameters (default the run's).

        Shows a tqdm bar (one tick per reply, cached or not). Other exceptions propagate,
        after every request still in flight is cancelled (its stream closed). The round's
        transport is closed at its end (its connections belong to the round's event loop).
        """
        self.sampling = sampling or self.cfg
        self.form = Form.of(self.sampling, self.template_hash, self.response_format, self.adaptations)
        self._probe = None  # each round runs in an event loop of its own
        bar = tqdm(total=len(batch), desc=desc, unit="req", mininterval=1.0)

        async def one(messages: Messages) -> Result:
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
            client, self._client = self._client, None
            if client is not None:
                await client.aclose()

    @contextlib.asynccontextmanager
    async def _turn(self, messages: Messages) -> AsyncIterator[tuple[Completion | None, bool]]:
        """Yields the cached reply to ``messages`` (``None``: none) and whether this request is the
        probe: until the run's first request came back usable, requests the cache cannot answer go
        one at a time, holding the lock (one that waited for a probe that succeeded looks in the
        cache again: the probe's adaptations may have answered it)."""
        hit = self.cached(messages)
        if hit is not None or self._checked or self._urls is None:
            yield hit, False
            return
        self._probe = self._probe or asyncio.Lock()
        async with self._probe:
            if self._fatal is not None:
                raise self._fatal
            if not self._checked:
                yield None, True
                return
        yield self.cached(messages), False

    async def complete(self, messages: Messages) -> Completion:
        """The reply to ``messages``, from the cache or the endpoint, stored the moment it arrives.

        The round's transport opens on its first request. The probe (:meth:`_turn`) is adapted
        until the endpoint accepts it, each parameter once (see the module).

        Raises:
            TeacherCostCap: sending could take the spend over ``max_cost``.
            TeacherRequestError: the request failed (:meth:`~.client.Transport.send`), or no
                endpoint is set.
            EndpointRefused: the endpoint refused the run's first request and no adaptation helps.
            ReplyFormatUnsupported: ``reply_format: json_schema`` and the endpoint ignored it.
        """
        cfg = self.cfg
        async with self._turn(messages) as (hit, probe):
            if hit is not None:
                self.counts.cache_hits += 1
                return hit
            if self._urls is None:
                raise TeacherRequestError("no teacher endpoint connected")
            if self._client is None:
                self._client = Transport(
                    [self._urls] if isinstance(self._urls, str) else list(self._urls), self._api_key,
                    max_concurrency=cfg.max_concurrency, timeout=cfg.timeout, total_timeout=cfg.total_timeout,
                    max_retries=cfg.max_retries, retry_wait=(cfg.retry_wait_initial, cfg.retry_wait_max),
                    budget=self.budget, max_tokens=cfg.max_tokens, counts=self.counts)
            while True:
                body = self.form.body(messages)
                try:
                    completion = self.form.mark(await self._client.send(body))
                except TeacherCostCap:
                    raise
                except TeacherRequestError as exc:
                    if not probe or not exc.refusal:
                        raise  # not about the request (a timeout, a 5xx after retries): the next one probes
                    note = self.adaptations.adapt(body, exc.param, exc.endpoint_message, cfg.reply_format)
                    if note is None and exc.endpoint_wide:
                        self._fatal = EndpointRefused.of(exc, cfg.model, cfg.reply_format)
                        raise self._fatal from None
                    if note is None:
                        raise  # about this request alone (e.g. too long for the context): the next one probes
                else:
                    if not (probe and self.form.ignored(completion)):
                        # a structured reply cut at max_tokens cannot tell whether the format is honoured: the
                        # next one probes
                        self._checked |= not (completion.structured and completion.finish_reason != "stop")
                        self.cache.set(self.form.key(messages), completion)
                        return completion
                    if cfg.reply_format == AUTO:
                        note = self.adaptations.ignored_format(completion.content)
                    else:  # an explicit json_schema: stop the stage
                        self._fatal = ReplyFormatUnsupported.ignored(completion.content)
                        raise self._fatal
                log.warning("%s: the endpoint refused a parameter; %s (for the rest of this run)", cfg.model, note)
                self.cache.set_meta(self._meta, self.adaptations.to_json())
                self.form = Form.of(self.sampling, self.template_hash, self.response_format, self.adaptations)

    def connect(self, base_url: str | Sequence[str]) -> None:
        """Send to ``base_url`` (one ``…/v1`` URL or several) from the next round on."""
        self._urls = base_url

    async def aclose(self) -> None:
        """Close this round's HTTP clients and the cache (it reopens on the next use)."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        self.cache.close()

    def close_cache(self) -> None:
        """Close the on-disk cache (idempotent; it reopens on the next use)."""
        self.cache.close()

    @property
    def cache_hits(self) -> int:
        return self.counts.cache_hits

    @property
    def requests_sent(self) -> int:
        return self.counts.sent

    @property
    def max_in_flight(self) -> int:
        return self.counts.max_in_flight

    def stats(self) -> dict[str, int]:
        """Counters for the metrics, over every round: the requests (:meth:`~.client.RequestCounts.metrics`),
        the adaptations (:meth:`~.request.Adaptations.metrics`) and ``cost_cap_reached`` (0/1)."""
        return {**self.counts.metrics(len(self.cfg.base_urls)), **self.adaptations.metrics(),
                "cost_cap_reached": int(self.budget.reached)}
