"""The loop both reflection stages share: send requests (cache first, then the endpoint),
and turn each reply into exactly one teacher row with an explicit status.

Statuses: ``ok``; ``parse_error`` (the reply has no usable marked segment); ``truncated``
(the reply hit ``max_tokens``: never parsed as complete); ``request_error`` (the request
failed after retries); ``cost_cap`` (not sent: it could have taken the spend over
``teacher.max_cost``); ``upstream_unusable`` (``both`` rows whose instruction variant is
not ok). A row that is not ok has ``instruction``, ``input`` and ``output`` set to
``null``: an unparsable reply is never replaced by the original.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

from reflection_tuning.errors import UserError
from reflection_tuning.rows import STATUS_OK
from reflection_tuning.teacher import EMBEDDED, TeacherConfig
from reflection_tuning.llm.client import Completion, Messages, Teacher, TeacherCostCap, TeacherRequestError
from reflection_tuning.llm.cost import Budget, Price
from reflection_tuning.teacher.parse import ParseResult

log = logging.getLogger(__name__)

STATUS_PARSE_ERROR = "parse_error"
STATUS_TRUNCATED = "truncated"
STATUS_REQUEST_ERROR = "request_error"
STATUS_COST_CAP = "cost_cap"
STATUS_UPSTREAM_UNUSABLE = "upstream_unusable"
STATUSES = (STATUS_OK, STATUS_PARSE_ERROR, STATUS_TRUNCATED, STATUS_REQUEST_ERROR, STATUS_COST_CAP,
            STATUS_UPSTREAM_UNUSABLE)

Result = Completion | TeacherRequestError


def send_all(
    cfg: TeacherConfig,
    batch: Sequence[Messages],
    *,
    template_hash: str,
    api_key: str | None = None,
    desc: str = "teacher",
    response_format: dict | None = None,
) -> tuple[list[Result], dict[str, int | float]]:
    """Replies to every message list in ``batch``, in order, and the request counters.

    Cached replies are used first; the endpoint (with ``base_url: embedded``, a
    ``transformers serve`` started here) is only contacted when something is missing,
    so a fully cached rerun sends nothing and starts nothing. With ``teacher.max_cost``
    the requests that would pass the cap are not sent (:class:`TeacherCostCap` results).
    ``response_format`` (an OpenAI structured-output format, see
    :func:`reflection_tuning.llm.stream.json_schema_format`) goes with every request.

    Raises:
        FileNotFoundError, RuntimeError, TimeoutError: the embedded server cannot start.
        openai.OpenAIError: the Batch API could not be reached (``mode: batch``).
        ReplyFormatUnsupported: the endpoint rejects or ignores ``response_format`` (a UserError).
    """
    budget = Budget(cfg.price_usd(), cfg.max_cost)
    teacher = Teacher(cfg, template_hash=template_hash, api_key=api_key, budget=budget,
                      response_format=response_format)

    async def go() -> list[Result]:
        try:
            return await teacher.complete_all(batch, desc=desc)
        finally:
            await teacher.aclose()

    try:
        misses = sum(1 for m in batch if teacher.cached(m) is None)
        log.info("%s: %d requests, %d cached, %d to send", desc, len(batch), len(batch) - misses, misses)
        if misses and cfg.mode == "batch":
            results = _send_batch(cfg, teacher, batch, api_key, budget)
        elif misses and cfg.base_url == EMBEDDED:
            from reflection_tuning.llm.server import embedded_server

            tokens = kv_cache_tokens(cfg, batch, misses)
            with embedded_server(cfg.model, seed=cfg.seed, kv_cache_tokens=tokens) as url:
                teacher.connect(url)
                results = asyncio.run(go())
        else:
            if misses:
                teacher.connect(cfg.base_urls)
            results = asyncio.run(go())
    finally:
        teacher.close_cache()  # also when the server cannot start
    stats: dict[str, int | float] = {**teacher.stats(), "cost_cap_reached": int(budget.reached)}
    if budget.reached:
        log.error("%s: teacher.max_cost $%.4f reached; %d requests were not sent and have status %r. The replies "
                  "that came back are cached: raise teacher.max_cost and rerun to pay only for the rest.",
                  desc, cfg.max_cost, budget.refused, STATUS_COST_CAP)
    return results, stats


def _send_batch(cfg: TeacherConfig, teacher: Teacher, batch: Sequence[Messages], api_key: str | None,
                budget: Budget) -> list[Result]:
    import openai

    from reflection_tuning.llm.batch import send_batch

    base_url = cfg.base_urls[0]
    api = openai.OpenAI(base_url=base_url, api_key=api_key or "no-key", timeout=cfg.timeout,
                        max_retries=cfg.max_retries)
    try:
        results = send_batch(cfg, api, batch, teacher.cache, [teacher.key(m) for m in batch], budget=budget)
    finally:
        api.close()
    teacher.cache_hits = sum(1 for r in results if isinstance(r, Completion) and r.cached)
    teacher.requests_sent = sum(1 for r in results if isinstance(r, Completion) and not r.cached)
    return results


def kv_cache_tokens(cfg: TeacherConfig, batch: Sequence[Messages], misses: int) -> int:
    """KV cache tokens for the embedded server: 2 x the requests in flight x the longest
    request (prompt estimated at 3 characters a token, plus 64 for the chat template, plus
    ``max_tokens``). The headroom keeps continuous batching from swapping requests out."""
    longest = max((sum(len(m["content"]) for m in msgs) for msgs in batch), default=0)
    per_request = longest // 3 + 64 + cfg.max_tokens
    return 2 * max(1, min(cfg.max_concurrency, misses)) * per_request


def teacher_row(
    source: dict[str, Any],
    variant: str,
    *,
    status: str,
    teacher_model: str,
    template_hash: str,
    fields: dict[str, str] | None = None,
    completion: Completion | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    """One teacher row in the CONTRIBUTING.md schema; ``fields`` are used only when ok.

    Raises:
        ValueError: an unknown status, or an ok row without instruction/input/output.
    """
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}")
    ok = status == STATUS_OK
    fields = fields or {}
    if ok and any(fields.get(k) is None for k in ("instruction", "input", "output")):
        raise ValueError(f"an ok {variant} row needs instruction, input and output")
    return {
        "id": source["id"],
        "variant": variant,
        "instruction": fields["instruction"] if ok else None,
        "input": fields["input"] if ok else None,
        "output": fields["output"] if ok else None,
        "source": source.get("source"),
        "status": status,
        "teacher_model": teacher_model,
        "template_hash": template_hash,
        "raw_reply": completion.content if completion else None,
        "finish_reason": completion.finish_reason if completion else None,
        "prompt_tokens": completion.prompt_tokens if completion else None,
        "completion_tokens": completion.completion_tokens if completion else None,
        "error": None if ok else error,
    }


def outcome_row(
    source: dict[str, Any],
    variant: str,
    result: Result,
    parse: Callable[[str], ParseResult],
    make_fields: Callable[[dict[str, str]], dict[str, str]],
    *,
    teacher_model: str,
    template_hash: str,
    max_tokens: int,
) -> tuple[dict[str, Any], ParseResult | None]:
    """The row for one reply: request error, truncated, parse error or ok.

    ``make_fields`` maps the parsed fields to the row's instruction/input/output (e.g. the
    ``response`` variant keeps the original instruction and input). Returns the row and
    the parse result (``None`` when the reply was not parsed).
    """
    common = {"teacher_model": teacher_model, "template_hash": template_hash}
    if isinstance(result, TeacherCostCap):
        return teacher_row(source, variant, status=STATUS_COST_CAP, error=str(result), **common), None
    if isinstance(result, TeacherRequestError):
        return teacher_row(source, variant, status=STATUS_REQUEST_ERROR, error=str(result), **common), None
    if result.finish_reason == "length":
        error = f"reply reached max_tokens ({max_tokens}) and was cut off"
        return teacher_row(source, variant, status=STATUS_TRUNCATED, completion=result, error=error, **common), None
    parsed = parse(result.content)
    if not parsed.ok:
        row = teacher_row(source, variant, status=STATUS_PARSE_ERROR, completion=result, error=parsed.reason, **common)
        return row, parsed
    row = teacher_row(source, variant, status=STATUS_OK, fields=make_fields(parsed.fields), completion=result, **common)
    return row, parsed


def status_metrics(rows: Sequence[dict[str, Any]], parsed: Sequence[ParseResult | None], prefix: str = "") -> dict[str, int]:
    """``rows_out``, ``rows_<status>`` for every status, and ``rows_multi_candidate``."""
    out = {f"{prefix}rows_out": len(rows)}
    for status in STATUSES:
        out[f"{prefix}rows_{status}"] = sum(1 for r in rows if r["status"] == status)
    out[f"{prefix}rows_multi_candidate"] = sum(1 for p in parsed if p is not None and p.ok and p.candidates > 1)
    return out


def token_metrics(results: Sequence[Result], price: Price | None = None) -> dict[str, int | float | None]:
    """Tokens of every reply used (cached or not) and of the replies fetched in this run,
    and their cost in USD from ``teacher.price`` (``None`` when no price is set)."""
    done = [r for r in results if isinstance(r, Completion)]
    fresh = [r for r in done if not r.cached]
    out: dict[str, int | float | None] = {
        "prompt_tokens": sum(r.prompt_tokens for r in done),
        "completion_tokens": sum(r.completion_tokens for r in done),
        "prompt_tokens_sent": sum(r.prompt_tokens for r in fresh),
        "completion_tokens_sent": sum(r.completion_tokens for r in fresh),
    }
    for suffix, group in (("", done), ("_sent", fresh)):
        out[f"cost_usd{suffix}"] = (
            round(sum(price.cost(r.prompt_tokens, r.completion_tokens) for r in group), 6) if price else None
        )
    return out


# -- what both stages' ``main`` share --------------------------------------------------------
def api_key_from_env(cfg: TeacherConfig, environ: dict[str, str], section: str = "teacher") -> str | None:
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


def require_files(stage: str, **paths: Any) -> None:
    """Check that every input file exists.

    Raises:
        UserError: the missing files, by role, with the stage to run first.
    """
    from pathlib import Path

    missing = [f"{role} {path}" for role, path in paths.items() if not Path(path).is_file()]
    if missing:
        raise UserError(f"{stage}: missing {', '.join(missing)}; run the earlier stages (fetch, reflect_instruction) "
                        "or check the paths")


def check_rows(rows: Sequence[dict[str, Any]], where: str) -> None:
    """Check that every row has an ``id`` and string ``instruction`` / ``output``.

    Raises:
        ValueError: the first bad row, named by its position in ``where``.
    """
    for n, row in enumerate(rows, start=1):
        missing = [k for k in ("id", "instruction", "output") if not isinstance(row.get(k), str)]
        if missing:
            raise ValueError(f"{where}: row {n} (id {row.get('id')}) has no string {missing}")
