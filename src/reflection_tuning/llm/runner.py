"""The one runner of every LLM step: send, classify, re-ask, count.

For each input row, in order, :func:`run_step` yields exactly one :class:`Outcome` with a
status of :mod:`reflection_tuning.llm.status`:

1. the step's request (:meth:`Step.format_input`) goes through :class:`~.send.Sender`
   (cache, window, retries, endpoints, embedded server, Batch API, cost cap);
2. a request that failed is ``request_error`` (``cost_cap`` when the cap kept it back); a
   reply cut at ``max_tokens`` is ``truncated`` (unless the step reads cut replies); any
   other reply goes to :meth:`Step.parse`;
3. a ``parse_error`` or ``truncated`` reply is asked again up to ``reask`` times with another
   seed (``seed + k``) and ``reask_temperature``, so each re-ask has its own cache key; with
   ``reask_feedback`` the re-ask also carries the failed reply and why it failed. The
   reference re-asks a reply that does not parse (Reflection_Tuning,
   ``reflection_code/reflect_instruction_postprocess.py``, the ``retry_flag`` branch).

The rows are consumed as an iterable and the outcomes come back in input order; today
they are gathered into one round per attempt (bounded streaming is a later change).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reflection_tuning.errors import UserError
from reflection_tuning.llm import status as st
from reflection_tuning.llm.cache import Completion, Messages
from reflection_tuning.llm.client import TeacherCostCap, TeacherRequestError
from reflection_tuning.llm.cost import Price
from reflection_tuning.llm.send import Result, Sender
from reflection_tuning.llm.step import Failure, Parsed, Step, decode_json_reply
from reflection_tuning.llm.stream import json_schema_format
from reflection_tuning.teacher import EMBEDDED, TeacherConfig

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    """What one input row got from a step.

    Attributes:
        row: the input row.
        status: one of :data:`reflection_tuning.llm.status.STATUSES`.
        fields: the parsed output fields (``ok`` only), else ``None``.
        reason: why the row is not ok, or a note on an ok parse (``None`` for a clean ok).
        completion: the last reply (``None`` when no reply came back).
        attempts: how many times the row was asked (1 + the re-asks used; HTTP retries not counted).
        candidates: answers the accepted reply offered (``rows_multi_candidate`` counts > 1).
        replies: every reply the row got, first try first (for the token and cost metrics).
    """

    row: Mapping[str, Any]
    status: str
    fields: dict[str, Any] | None = None
    reason: str | None = None
    completion: Completion | None = None
    attempts: int = 1
    candidates: int = 0
    replies: list[Completion] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == st.OK


@dataclass
class StepRun:
    """The outcomes of one :func:`run_step`, in input order, and its request counters."""

    outcomes: list[Outcome]
    stats: dict[str, int]


def classify(step: Step, row: Mapping[str, Any], result: Result, max_tokens: int, json_replies: bool = False) -> Outcome:
    """The outcome of one reply (or request error) to ``step``'s request for ``row``.

    ``json_replies``: the request carried the step's JSON schema (``reply_format: json_schema``),
    so the reply is decoded and validated as JSON and given to :meth:`Step.parse_json`; a cut
    JSON reply is never valid, so it is ``truncated`` whatever the step reads."""
    if isinstance(result, TeacherCostCap):
        return Outcome(row, st.COST_CAP, reason=str(result))
    if isinstance(result, TeacherRequestError):
        return Outcome(row, st.REQUEST_ERROR, reason=str(result))
    if result.finish_reason == "length" and (json_replies or not step.reads_truncated):
        return Outcome(row, st.TRUNCATED, reason=f"reply reached max_tokens ({max_tokens}) and was cut off",
                       completion=result, replies=[result])
    if json_replies:
        obj = decode_json_reply(result.content, step.schema)
        parsed = obj if isinstance(obj, Failure) else step.parse_json(obj, row)
    else:
        parsed = step.parse(result, row)
    if isinstance(parsed, Failure):
        if parsed.status not in st.STATUSES:
            raise ValueError(f"step {step.name}: unknown status {parsed.status!r}")
        return Outcome(row, parsed.status, reason=parsed.reason, completion=result, replies=[result])
    assert isinstance(parsed, Parsed)
    return Outcome(row, st.OK, fields=parsed.fields, reason=parsed.note, completion=result,
                   candidates=parsed.candidates, replies=[result])


def reask_config(cfg: TeacherConfig, k: int) -> TeacherConfig:
    """The sampling parameters of the ``k``-th re-ask (k >= 1): seed ``seed + k`` and
    ``reask_temperature`` (greedy decoding gives the same reply whatever the seed)."""
    temperature = cfg.temperature if cfg.reask_temperature is None else cfg.reask_temperature
    return dataclasses.replace(cfg, seed=(cfg.seed or 0) + k, temperature=temperature)


def reask_messages(messages: Messages, failed: Outcome, feedback: bool) -> Messages:
    """The messages of a re-ask: the same request, or with ``feedback`` the failed reply as an
    assistant turn and a user turn that says why it could not be used."""
    if not feedback or failed.completion is None:
        return messages
    if failed.status == st.TRUNCATED:
        why = "Your reply was cut off at the length limit before it was complete."
        ask = "Write it again, shorter, with every block the instructions above ask for."
    else:
        why = f"Your reply could not be used: {(failed.reason or 'it is not in the required format')[:200]}."
        ask = "Write it again, in exactly the format the instructions above ask for."
    return [*messages, {"role": "assistant", "content": failed.completion.content},
            {"role": "user", "content": f"{why} {ask}"}]


def run_step(step: Step, cfg: TeacherConfig, rows: Iterable[Mapping[str, Any]], *, api_key: str | None = None,
             desc: str | None = None) -> StepRun:
    """Run ``step`` on every row: one :class:`Outcome` per row, in order, and the counters.

    Raises:
        FileNotFoundError, RuntimeError, TimeoutError: the embedded server cannot start.
        openai.OpenAIError: the Batch API could not be reached (``mode: batch``).
    """
    desc = desc or step.name
    rows = list(rows)
    batch = [step.format_input(r) for r in rows]
    json_replies = cfg.reply_format == "json_schema"
    response_format = json_schema_format(step.name, dict(step.schema)) if json_replies else None
    with Sender(cfg, template_hash=step.template_hash, api_key=api_key, sizing=batch,
                response_format=response_format) as sender:
        results = sender.send(batch, desc=desc)
        outcomes = [classify(step, r, res, cfg.max_tokens, json_replies) for r, res in zip(rows, results)]
        for k in range(1, cfg.reask + 1):
            again = [n for n, o in enumerate(outcomes) if o.status in st.REASKABLE]
            if not again:
                break
            log.info("%s: re-asking %d rows (re-ask %d of %d)", desc, len(again), k, cfg.reask)
            retry = reask_config(cfg, k)
            asks = [reask_messages(batch[n], outcomes[n], cfg.reask_feedback) for n in again]
            replies = sender.send(asks, cfg=retry, desc=f"{desc} re-ask {k}")
            for n, res in zip(again, replies):
                new = classify(step, rows[n], res, cfg.max_tokens, json_replies)
                new.attempts = outcomes[n].attempts + 1
                new.replies = outcomes[n].replies + new.replies
                if new.status in (st.REQUEST_ERROR, st.COST_CAP):  # keep the reply we have and its reason
                    outcomes[n].attempts = new.attempts
                    outcomes[n].reason = f"{outcomes[n].reason}; re-ask {k}: {new.reason}"
                    continue
                outcomes[n] = new
        stats = {**sender.stats(), "requests_reasked": sum(o.attempts - 1 for o in outcomes)}
    if stats["cost_cap_reached"]:
        log.error("%s: max_cost $%.4f reached; %d requests were not sent and have status %r. The replies that "
                  "came back are cached: raise max_cost and rerun to pay only for the rest.",
                  desc, cfg.max_cost, sum(o.status == st.COST_CAP for o in outcomes), st.COST_CAP)
    return StepRun(outcomes, stats)


def status_metrics(outcomes: Sequence[Outcome | None], prefix: str = "rows_", statuses: Sequence[str] = st.STATUSES,
                   statuses_of: Sequence[str] | None = None) -> dict[str, int]:
    """Per-status counts: ``<prefix>out``, ``<prefix><status>`` for every status,
    ``<prefix>ok_first_try`` / ``<prefix>ok_reasked`` and ``<prefix>multi_candidate``.

    Args:
        outcomes: ``None`` for a row that was never sent (counted by ``statuses_of``).
        statuses_of: the status of every row (default: those of ``outcomes``), e.g. with the
            ``upstream_unusable`` rows a stage wrote itself.
    """
    done = [o for o in outcomes if o is not None]
    all_statuses = list(statuses_of) if statuses_of is not None else [o.status for o in done]
    out = {f"{prefix}out": len(all_statuses)}
    out.update({f"{prefix}{s}": sum(x == s for x in all_statuses) for s in statuses})
    out[f"{prefix}ok_first_try"] = sum(o.ok and o.attempts == 1 for o in done)
    out[f"{prefix}ok_reasked"] = sum(o.ok and o.attempts > 1 for o in done)
    out[f"{prefix}multi_candidate"] = sum(o.ok and o.candidates > 1 for o in done)
    return out


def token_metrics(outcomes: Sequence[Outcome], price: Price | None = None) -> dict[str, int | float | None]:
    """Tokens of every reply used (cached or not; re-asks included) and of the replies fetched
    in this run, and their cost in USD from the section's ``price`` (``None`` without one)."""
    done = [c for o in outcomes for c in o.replies]
    fresh = [c for c in done if not c.cached]
    out: dict[str, int | float | None] = {
        "prompt_tokens": sum(c.prompt_tokens for c in done),
        "completion_tokens": sum(c.completion_tokens for c in done),
        "prompt_tokens_sent": sum(c.prompt_tokens for c in fresh),
        "completion_tokens_sent": sum(c.completion_tokens for c in fresh),
    }
    for suffix, group in (("", done), ("_sent", fresh)):
        out[f"cost_usd{suffix}"] = (
            round(sum(price.cost(c.prompt_tokens, c.completion_tokens) for c in group), 6) if price else None
        )
    return out


def provenance(outcome: Outcome, model: str, template_hash: str) -> dict[str, Any]:
    """The provenance fields of an output row: model, template hash, the last raw reply, its
    finish reason and usage (tokens), and the attempts."""
    c = outcome.completion
    return {
        "teacher_model": model,
        "template_hash": template_hash,
        "raw_reply": c.content if c else None,
        "finish_reason": c.finish_reason if c else None,
        "prompt_tokens": c.prompt_tokens if c else None,
        "completion_tokens": c.completion_tokens if c else None,
        "attempts": outcome.attempts,
    }


def api_key_from_env(cfg: TeacherConfig, environ: Mapping[str, str], section: str = "teacher") -> str | None:
    """The API key from the variable NAMED by ``cfg.api_key_env`` (``None`` when none is needed).

    Args:
        section: the params section ``cfg`` came from (``teacher``, ``judge``), for the message.

    Raises:
        UserError: a remote endpoint names a variable that is not set (the message names
            the variable, never a value).
    """
    if cfg.base_url == EMBEDDED or not cfg.api_key_env:
        return None
    key = environ.get(cfg.api_key_env)
    if not key:
        raise UserError(
            f"environment variable {cfg.api_key_env} ({section}.api_key_env) is not set; "
            f"set it, or set {section}.api_key_env to null (or '') for an endpoint that needs no key"
        )
    return key
