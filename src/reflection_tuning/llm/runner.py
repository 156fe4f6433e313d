"""The one runner of every LLM step: send, classify, re-ask, count.

For each input row, in order, :func:`run_step` yields exactly one :class:`Outcome` with a
status of :mod:`reflection_tuning.status`:

1. the step's request (:meth:`Step.format_input`) goes through the run's :class:`~.session.Session`
   (cache, adaptations, window, retries, endpoints, embedded server, Batch API, cost cap);
2. a request that failed is ``request_error`` (``cost_cap`` when the cap kept it back); a
   reply cut at ``max_tokens`` is ``truncated`` (unless the step reads cut replies); any
   other reply goes to :meth:`Step.parse`;
3. a ``parse_error``, ``truncated``, ``repetitive`` or ``copy`` reply is asked again up to ``reask`` times with another
   seed (``seed + k``) and ``reask_temperature``, so each re-ask has its own cache key; with
   ``reask_feedback`` the re-ask also carries the failed reply and why it failed. The
   reference re-asks a reply that does not parse (Reflection_Tuning,
   ``reflection_code/reflect_instruction_postprocess.py``, the ``retry_flag`` branch).

The rows are consumed as an iterable and the outcomes come back in input order, streamed:
:func:`iter_step` holds at most :data:`CHUNK_ROWS` rows (their requests, replies and
outcomes) at a time, so a stage that writes its rows as they come and counts them in a
:class:`~.outcome.Tally` runs in memory flat in the number of rows. Two cases take every row as
one chunk: the embedded server (sized once from every request; a CPU model is never
given 200k rows) and ``mode: batch`` (one Batch API job, not one per chunk).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from itertools import islice
from typing import Any

from reflection_tuning import status as st
from reflection_tuning.llm.cache import Messages
from reflection_tuning.llm.config import EMBEDDED, EndpointConfig
from reflection_tuning.llm.errors import TeacherCostCap, TeacherRequestError
from reflection_tuning.llm.outcome import Outcome
from reflection_tuning.llm.session import Result, Session
from reflection_tuning.llm.step import Failure, Parsed, Step, decode_json_reply, request_format

log = logging.getLogger(__name__)

# Rows in flight through one chunk: their requests (~2 KB each), replies and outcomes, some
# 50 MB; large enough that the drain at a chunk's end (the last of max_concurrency requests)
# costs little. Only memory depends on it: the outputs are the same for every value.
CHUNK_ROWS = 8192


@dataclass
class StepRun:
    """The outcomes of one :func:`run_step`, in input order, and its request counters."""

    outcomes: list[Outcome]
    stats: dict[str, int]


def classify(step: Step, row: Mapping[str, Any], result: Result, max_tokens: int) -> Outcome:
    """The outcome of one reply (or request error) to ``step``'s request for ``row``.

    A reply to a request that carried the step's JSON schema (``Completion.structured``) is
    decoded and validated as JSON and given to :meth:`Step.parse_json`; a cut JSON reply is
    never valid, so it is ``truncated`` whatever the step reads. Any other reply goes to
    :meth:`Step.parse`."""
    if isinstance(result, TeacherCostCap):
        return Outcome(row, st.COST_CAP, reason=str(result))
    if isinstance(result, TeacherRequestError):
        return Outcome(row, st.REQUEST_ERROR, reason=str(result))
    if result.finish_reason == "length" and (result.structured or not step.reads_truncated):
        return Outcome(row, st.TRUNCATED, reason=f"reply reached max_tokens ({max_tokens}) and was cut off",
                       completion=result, replies=[result])
    if result.structured:
        obj = decode_json_reply(result.content, step.schema)
        parsed = obj if isinstance(obj, Failure) else step.parse_json(obj, row)
    else:
        parsed = step.parse(result, row)
    if isinstance(parsed, Failure):
        if parsed.status not in st.STEP:
            raise ValueError(f"step {step.name}: unknown status {parsed.status!r}")
        return Outcome(row, parsed.status, reason=parsed.reason, completion=result, replies=[result],
                       repetition=parsed.repetition)
    assert isinstance(parsed, Parsed)
    return Outcome(row, st.OK, fields=parsed.fields, reason=parsed.note, completion=result,
                   candidates=parsed.candidates, replies=[result], repetition=parsed.repetition)


def reask_config(cfg: EndpointConfig, k: int) -> EndpointConfig:
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


def iter_step(step: Step, cfg: EndpointConfig, rows: Iterable[Mapping[str, Any]], *, api_key: str | None = None,
              desc: str | None = None, stats: dict[str, int] | None = None) -> Iterator[Outcome]:
    """Run ``step`` on every row: yield one :class:`Outcome` per row, in input order, a chunk of
    :data:`CHUNK_ROWS` rows at a time (every row at once for the embedded server and ``mode: batch``).

    Args:
        stats: filled with the request counters (``Session.stats`` and ``requests_reasked``)
            once the generator is exhausted.

    Raises:
        FileNotFoundError, RuntimeError, TimeoutError: the embedded server cannot start.
        openai.OpenAIError: the Batch API could not be reached (``mode: batch``).
    """
    desc = desc or step.name
    source = iter(rows)
    whole = cfg.base_url == EMBEDDED or cfg.mode == "batch"
    chunk = list(source) if whole else list(islice(source, CHUNK_ROWS))
    response_format = request_format(step, cfg)
    reasked = capped = 0
    batch = [step.format_input(r) for r in chunk]
    # sizing: the embedded server is started once, from every request (re-asks of cached first tries too)
    with Session(cfg, template_hash=step.template_hash, api_key=api_key, sizing=batch if whole else (),
                 response_format=response_format) as session:
        while chunk:
            for outcome in _run_chunk(step, cfg, session, chunk, batch, desc):
                reasked += outcome.attempts - 1
                capped += outcome.status == st.COST_CAP
                yield outcome
            chunk = list(islice(source, CHUNK_ROWS))
            batch = [step.format_input(r) for r in chunk]
        counters = {**session.stats(), "requests_reasked": reasked}
    if stats is not None:
        stats.update(counters)
    if counters["cost_cap_reached"]:
        log.error("%s: max_cost $%.4f reached; %d requests were not sent and have status %r. The replies that "
                  "came back are cached: raise max_cost and rerun to pay only for the rest.",
                  desc, cfg.max_cost, capped, st.COST_CAP)


def _run_chunk(step: Step, cfg: EndpointConfig, session: Session, rows: list[Mapping[str, Any]],
               batch: list[Messages], desc: str) -> list[Outcome]:
    """The outcomes of one chunk of rows (``batch``: their requests), round by round: the first
    asks, then up to ``cfg.reask`` re-asks of the rows whose reply could not be used."""
    outcomes: list[Outcome] = []
    todo, asks = range(len(rows)), batch
    for k in range(cfg.reask + 1):
        sampling = reask_config(cfg, k) if k else None
        replies = session.send(asks, cfg=sampling, desc=f"{desc} re-ask {k}" if k else desc)
        for n, res in zip(todo, replies):
            new = classify(step, rows[n], res, cfg.max_tokens)
            if not k:
                outcomes.append(new)
                continue
            new.attempts = outcomes[n].attempts + 1
            new.replies = outcomes[n].replies + new.replies
            if new.status in (st.REQUEST_ERROR, st.COST_CAP):  # keep the reply we have and its reason
                outcomes[n].attempts = new.attempts
                outcomes[n].reason = f"{outcomes[n].reason}; re-ask {k}: {new.reason}"
                continue
            outcomes[n] = new
        todo = [n for n, o in enumerate(outcomes) if o.status in st.REASKABLE]
        if not todo or k == cfg.reask:
            break
        log.info("%s: re-asking %d rows (re-ask %d of %d)", desc, len(todo), k + 1, cfg.reask)
        asks = [reask_messages(batch[n], outcomes[n], cfg.reask_feedback) for n in todo]
    return outcomes


def run_step(step: Step, cfg: EndpointConfig, rows: Iterable[Mapping[str, Any]], *, api_key: str | None = None,
             desc: str | None = None) -> StepRun:
    """:func:`iter_step` gathered: every outcome in a list, and the counters (for the small
    stages that need all outcomes at once: the judge, ``compress``).

    Raises:
        FileNotFoundError, RuntimeError, TimeoutError: the embedded server cannot start.
        openai.OpenAIError: the Batch API could not be reached (``mode: batch``).
    """
    stats: dict[str, int] = {}
    outcomes = list(iter_step(step, cfg, rows, api_key=api_key, desc=desc, stats=stats))
    return StepRun(outcomes, stats)
