"""What one input row got from an LLM step (:class:`Outcome`), the counts of many
(:class:`Tally`: per status, tokens, cost) and the provenance fields of the row written for it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reflection_tuning import status as st
from reflection_tuning.infra.errors import UserError
from reflection_tuning.llm.cache import Completion
from reflection_tuning.llm.cost import Price
from reflection_tuning.llm.request import JSON_SCHEMA, MARKERS


@dataclass
class Outcome:
    """What one input row got from a step.

    Attributes:
        row: the input row.
        status: one of :data:`reflection_tuning.status.STEP`.
        fields: the parsed output fields (``ok`` only), else ``None``.
        reason: why the row is not ok, or a note on an ok parse (``None`` for a clean ok).
        completion: the last reply (``None`` when no reply came back).
        attempts: how many times the row was asked (1 + the re-asks used; HTTP retries not counted).
        candidates: answers the accepted reply offered (``rows_multi_candidate`` counts > 1).
        replies: every reply the row got, first try first (for the token and cost metrics).
        repetition: the highest word n-gram repetition ratio of the reply's new fields (``None``:
            not measured).
    """

    row: Mapping[str, Any]
    status: str
    fields: dict[str, Any] | None = None
    reason: str | None = None
    completion: Completion | None = None
    attempts: int = 1
    candidates: int = 0
    replies: list[Completion] = field(default_factory=list)
    repetition: float | None = None

    @property
    def ok(self) -> bool:
        return self.status == st.OK


class Tally:
    """The per-status and token counters of a stream of outcomes, in constant memory: what
    :func:`status_metrics` and :func:`token_metrics` give for a list of them."""

    def __init__(self) -> None:
        self.statuses: Counter[str] = Counter()
        self.counts: Counter[str] = Counter()
        self.error_reasons: Counter[str] = Counter()  # why requests failed, for the stage's one line

    def add(self, outcome: Outcome) -> Outcome:
        """Count ``outcome`` (a row the stage wrote itself, e.g. ``upstream_unusable``, too); return it."""
        self.statuses[outcome.status] += 1
        if outcome.status == st.REQUEST_ERROR:
            self.error_reasons[(outcome.reason or "")[:300]] += 1
        self.counts["ok_first_try"] += outcome.ok and outcome.attempts == 1
        self.counts["ok_reasked"] += outcome.ok and outcome.attempts > 1
        self.counts["multi_candidate"] += outcome.ok and outcome.candidates > 1
        for c in outcome.replies:
            for suffix in ("", "_sent") if not c.cached else ("",):
                self.counts[f"prompt_tokens{suffix}"] += c.prompt_tokens
                self.counts[f"completion_tokens{suffix}"] += c.completion_tokens
        return outcome

    def status_metrics(self, prefix: str = "rows_", statuses: Sequence[str] = st.STEP) -> dict[str, int]:
        """Per-status counts: ``<prefix>out``, ``<prefix><status>`` for every status,
        ``<prefix>ok_first_try`` / ``<prefix>ok_reasked`` and ``<prefix>multi_candidate``."""
        out = {f"{prefix}out": sum(self.statuses.values())}
        out.update({f"{prefix}{s}": self.statuses[s] for s in statuses})
        out.update({f"{prefix}{k}": self.counts[k] for k in ("ok_first_try", "ok_reasked", "multi_candidate")})
        return out

    def token_metrics(self, price: Price | None = None) -> dict[str, int | float | None]:
        """Tokens of every reply used (cached or not; re-asks included) and of the replies
        fetched in this run, and their cost in USD from ``price`` (``None`` without one)."""
        out: dict[str, int | float | None] = {
            k: self.counts[k] for k in ("prompt_tokens", "completion_tokens", "prompt_tokens_sent",
                                        "completion_tokens_sent")}
        for suffix in ("", "_sent"):
            tokens = (self.counts[f"prompt_tokens{suffix}"], self.counts[f"completion_tokens{suffix}"])
            out[f"cost_usd{suffix}"] = round(price.cost(*tokens), 6) if price else None
        return out


    def check_request_errors(self, max_share: float, what: str) -> None:
        """Fail a stage whose requests mostly failed, once its rows are written.

        Raises:
            TooManyRequestErrors: more than ``max_share`` of the rows sent (every row but the
                ``upstream_unusable`` ones) are ``request_error``; the message names the most
                common cause.
        """
        sent = sum(self.statuses.values()) - self.statuses[st.UPSTREAM_UNUSABLE]
        failed = self.statuses[st.REQUEST_ERROR]
        if sent and failed / sent > max_share:
            cause = self.error_reasons.most_common(1)[0][0]
            raise TooManyRequestErrors(f"{what}: {failed} of {sent} requests ended as request_error (more than "
                                       f"max_request_errors {max_share:g}; the rows and metrics are written, and "
                                       f"the replies that came back are cached): {cause}")


class TooManyRequestErrors(UserError):
    """A stage whose rows are mostly ``request_error``: it wrote them, then fails."""


def status_metrics(outcomes: Iterable[Outcome], prefix: str = "rows_",
                   statuses: Sequence[str] = st.STEP) -> dict[str, int]:
    """:meth:`Tally.status_metrics` of ``outcomes``."""
    tally = Tally()
    for o in outcomes:
        tally.add(o)
    return tally.status_metrics(prefix, statuses)


def token_metrics(outcomes: Iterable[Outcome], price: Price | None = None) -> dict[str, int | float | None]:
    """:meth:`Tally.token_metrics` of ``outcomes``."""
    tally = Tally()
    for o in outcomes:
        tally.add(o)
    return tally.token_metrics(price)


def provenance(outcome: Outcome, model: str, template_hash: str) -> dict[str, Any]:
    """The provenance fields of an output row: model, template hash, the last raw reply, its
    finish reason and usage (tokens), the attempts, the reply format (``json_schema`` or
    ``markers``) and the adaptations the endpoint's refusals made to the request."""
    c = outcome.completion
    return {
        "teacher_model": model,
        "template_hash": template_hash,
        "raw_reply": c.content if c else None,
        "finish_reason": c.finish_reason if c else None,
        "prompt_tokens": c.prompt_tokens if c else None,
        "completion_tokens": c.completion_tokens if c else None,
        "attempts": outcome.attempts,
        "reply_format": (JSON_SCHEMA if c.structured else MARKERS) if c else None,
        "adaptations": list(c.adaptations) if c else [],
    }
