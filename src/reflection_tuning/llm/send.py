"""Dispatch: send chat requests through the cache, then the endpoint(s), the embedded server or
the Batch API, with one cost cap for the whole stage run.

:class:`Sender` is what :func:`reflection_tuning.llm.runner.run_step` uses; it starts the
embedded llama.cpp server only when a request is not cached (so a fully cached rerun
starts nothing), keeps it for every round of the run (the first asks and the re-asks), and
stops it on exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from reflection_tuning.llm.cache import Completion, Messages
from reflection_tuning.llm.client import Teacher, TeacherRequestError
from reflection_tuning.llm.config import EMBEDDED, EndpointConfig
from reflection_tuning.llm.cost import Budget

log = logging.getLogger(__name__)

Result = Completion | TeacherRequestError


class Sender(contextlib.AbstractContextManager):
    """Sends rounds of requests for one stage run; use it as a context manager.

    Args:
        cfg: the endpoint section (``teacher:`` or ``judge:``).
        template_hash: the step's prompt hash (part of every cache key).
        api_key: the key itself, never stored.
        sizing: every request of the run, to size the embedded server's slots once.
        response_format: the OpenAI ``response_format`` sent with every request (structured
            outputs; see :func:`reflection_tuning.llm.stream.json_schema_format`), or ``None``.
    """

    def __init__(self, cfg: EndpointConfig, *, template_hash: str, api_key: str | None = None,
                 sizing: Sequence[Messages] = (), response_format: dict | None = None) -> None:
        self.cfg = cfg
        self.api_key = api_key
        self.budget = Budget(cfg.price_usd(), cfg.max_cost)
        self.teacher = Teacher(cfg, template_hash=template_hash, api_key=api_key, budget=self.budget,
                               response_format=response_format)
        self._sizing = sizing
        self._stack = contextlib.ExitStack()
        self._stack.callback(self.teacher.close_cache)
        self._url: str | None = None

    def __exit__(self, *exc) -> None:
        self._stack.close()

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
        teacher = self.teacher
        teacher.sampling = cfg or self.cfg
        try:
            misses = sum(1 for m in batch if teacher.cached(m) is None)
            log.info("%s: %d requests, %d cached, %d to send", desc, len(batch), len(batch) - misses, misses)
            if misses and self.cfg.mode == "batch":
                return self._send_batch(teacher, batch)
            if misses:
                teacher.connect(self._endpoints(batch))
            return asyncio.run(self._complete(teacher, batch, desc, teacher.sampling))
        finally:
            teacher.close_cache()  # also when the server cannot start; it reopens on the next use

    def _endpoints(self, batch: Sequence[Messages]) -> str | Sequence[str]:
        if self.cfg.base_url != EMBEDDED:
            return self.cfg.base_urls
        if self._url is None:
            from reflection_tuning.llm.server import embedded_server, slot_context

            # a re-ask with feedback also carries the failed reply in its prompt
            ctx = slot_context(self._sizing or batch, self.cfg.max_tokens,
                               feedback=bool(self.cfg.reask and self.cfg.reask_feedback))
            self._url = self._stack.enter_context(embedded_server(self.cfg.model, parallel=self.cfg.max_concurrency,
                                                                  slot_ctx=ctx))
        return self._url

    @staticmethod
    async def _complete(teacher: Teacher, batch: Sequence[Messages], desc: str,
                        sampling: EndpointConfig) -> list[Result]:
        try:
            return await teacher.complete_all(batch, desc=desc, sampling=sampling)
        finally:
            await teacher.aclose()

    def _send_batch(self, teacher: Teacher, batch: Sequence[Messages]) -> list[Result]:
        import openai

        from reflection_tuning.llm.batch import send_batch

        cfg = teacher.sampling
        api = openai.OpenAI(base_url=cfg.base_urls[0], api_key=self.api_key or "no-key", timeout=cfg.timeout,
                            max_retries=cfg.max_retries)
        try:
            results = send_batch(cfg, api, [teacher.body(m) for m in batch], teacher.cache,
                                 [teacher.key(m) for m in batch], budget=self.budget)
        finally:
            api.close()
        teacher.cache_hits += sum(1 for r in results if isinstance(r, Completion) and r.cached)
        teacher.requests_sent += sum(1 for r in results if isinstance(r, Completion) and not r.cached)
        return [teacher.mark(r, teacher.body(m)) if isinstance(r, Completion) else r for r, m in zip(results, batch)]

    def stats(self) -> dict[str, int]:
        """The request counters of every round together (``Teacher.stats``), and ``cost_cap_reached``."""
        return {**self.teacher.stats(), "cost_cap_reached": int(self.budget.reached)}
