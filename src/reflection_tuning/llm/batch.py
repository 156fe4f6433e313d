"""``teacher.mode: batch``: the OpenAI Batch API (about half the price, results within 24 h).

The requests that miss the cache go into a JSONL file (one ``/v1/chat/completions`` body per
line, ``custom_id`` = the cache key), which is uploaded and submitted; the stage polls the
batch, then reads the output and error files back into the same request cache the online
mode uses. The run's first request has gone online before, alone
(:class:`~.session.Session`), so the bodies carry its adaptations. The batch ids are saved
under ``<cache_dir>/batches/``, so a stage killed while it waits picks the same batch up
again instead of paying for a second one.

File formats as the OpenAI Batch API guide gives them (platform.openai.com/docs/guides/batch):
input ``{"custom_id", "method": "POST", "url": "/v1/chat/completions", "body": {…}}``; output
``{"id", "custom_id", "response": {"status_code", "request_id", "body": <chat completion>},
"error": null | {"code", "message"}}``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

from reflection_tuning.llm.cache import Completion, ReplyCache
from reflection_tuning.llm.config import EndpointConfig
from reflection_tuning.llm.cost import Budget, CostCapReached, prompt_tokens_upper_bound
from reflection_tuning.llm.errors import TeacherCostCap, TeacherRequestError

log = logging.getLogger(__name__)

ENDPOINT = "/v1/chat/completions"
MAX_REQUESTS_PER_BATCH = 50_000  # the Batch API's limit per input file
TERMINAL = ("completed", "failed", "expired", "cancelled")
Result = Completion | TeacherRequestError


def request_line(key: str, body: dict[str, Any]) -> dict[str, Any]:
    """One input line of a batch file: ``body`` is the request the online mode sends
    (:func:`~.request.request_body`: ``response_format`` included, so a batch gets structured
    replies too)."""
    return {"custom_id": key, "method": "POST", "url": ENDPOINT, "body": body}


def read_result_line(line: dict[str, Any]) -> tuple[str, Result]:
    """The cache key and the reply (or the error) of one output- or error-file line.

    Raises:
        ValueError: the line has no ``custom_id``.
    """
    key = line.get("custom_id")
    if not key:
        raise ValueError(f"batch result line without custom_id: {str(line)[:200]}")
    if line.get("error"):
        err = line["error"]
        return key, TeacherRequestError(f"batch error {err.get('code')}: {err.get('message')}")
    response = line.get("response") or {}
    body = response.get("body") or {}
    status = response.get("status_code")
    if status != 200 or not body.get("choices"):
        message = (body.get("error") or {}).get("message", "no choices") if isinstance(body, dict) else str(body)
        return key, TeacherRequestError(f"batch request failed with HTTP {status}: {message}")
    choice = body["choices"][0]
    usage = body.get("usage") or {}
    return key, Completion(
        content=(choice.get("message") or {}).get("content") or "",
        finish_reason=choice.get("finish_reason"),
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
    )


def read_results(lines: Iterable[str]) -> dict[str, Result]:
    """Parse the JSONL text lines of output and error files into replies by cache key."""
    out: dict[str, Result] = {}
    for text in lines:
        if text.strip():
            key, result = read_result_line(json.loads(text))
            out[key] = result
    return out


class BatchAPI(Protocol):
    """The slice of the OpenAI client the batch mode uses (``openai.OpenAI`` fits it)."""

    files: Any
    batches: Any


def _state_path(cache_dir: str | Path, keys: Sequence[str]) -> Path:
    digest = hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()[:24]
    return Path(cache_dir) / "batches" / f"{digest}.json"


def _submit(api: BatchAPI, lines: list[dict[str, Any]], work_dir: Path) -> str:
    work_dir.mkdir(parents=True, exist_ok=True)
    path = work_dir / "input.jsonl"
    path.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines), encoding="utf-8")
    with open(path, "rb") as f:
        uploaded = api.files.create(file=f, purpose="batch")
    batch = api.batches.create(input_file_id=uploaded.id, endpoint=ENDPOINT, completion_window="24h",
                               metadata={"source": "reflection-tuning"})
    log.info("submitted batch %s with %d requests", batch.id, len(lines))
    return str(batch.id)


def _wait(api: BatchAPI, batch_id: str, poll_interval: float, sleep=time.sleep) -> Any:
    while True:
        batch = api.batches.retrieve(batch_id)
        counts = getattr(batch, "request_counts", None)
        log.info("batch %s: %s (%s)", batch_id, batch.status, counts)
        if batch.status in TERMINAL:
            return batch
        sleep(poll_interval)


def _download(api: BatchAPI, file_id: str | None) -> list[str]:
    if not file_id:
        return []
    return api.files.content(file_id).text.splitlines()


def run_batch(cfg: EndpointConfig, api_key: str | None, batch: Sequence[dict[str, Any]], cache: ReplyCache,
              keys: Sequence[str], budget: Budget | None = None) -> list[Result]:
    """:func:`send_batch` through an OpenAI client of ``cfg``'s first URL (``api_key``: the key
    itself, ``None``: a dummy), closed afterwards.

    Raises:
        openai.OpenAIError: the Batch API could not be reached.
    """
    import openai

    api = openai.OpenAI(base_url=cfg.base_urls[0], api_key=api_key or "no-key", timeout=cfg.timeout,
                        max_retries=cfg.max_retries)
    try:
        return send_batch(cfg, api, batch, cache, keys, budget=budget)
    finally:
        api.close()


def send_batch(
    cfg: EndpointConfig,
    api: BatchAPI,
    batch: Sequence[dict[str, Any]],
    cache: ReplyCache,
    keys: Sequence[str],
    *,
    budget: Budget | None = None,
    sleep=time.sleep,
) -> list[Result]:
    """Replies to every request body in ``batch``: cached ones first, the rest by the Batch API.

    Args:
        batch: the request bodies (:func:`~.request.request_body`).
        keys: the cache key of each body (the ``custom_id`` of its request).
        budget: the cost cap; requests whose worst-case cost does not fit are not submitted
            and come back as :class:`TeacherCostCap`.
        sleep: how to wait between polls (tests pass a no-op).

    Returns the replies in order; a request that failed, or that an expired or failed batch
    never ran, is a :class:`TeacherRequestError` (explicit, never dropped).

    Raises:
        openai.OpenAIError: uploading, submitting or polling failed (the saved state lets a
            rerun resume).
    """
    results: dict[str, Result] = {}
    todo: dict[str, dict[str, Any]] = {}
    for key, body in zip(keys, batch):
        if (hit := cache.get(key)) is not None:
            results[key] = hit
        elif key not in todo:
            todo[key] = body
    for key in list(todo):
        if budget is None:
            break
        try:
            budget.reserve(prompt_tokens_upper_bound(todo[key]["messages"]), cfg.max_tokens)
        except CostCapReached as exc:
            results[key] = TeacherCostCap(str(exc))
            del todo[key]
    pending = list(todo)
    for start in range(0, len(pending), MAX_REQUESTS_PER_BATCH):
        chunk = pending[start : start + MAX_REQUESTS_PER_BATCH]
        results.update(_run_chunk(cfg, api, {k: todo[k] for k in chunk}, cache, sleep))
    return [results[key] for key in keys]


def _run_chunk(
    cfg: EndpointConfig, api: BatchAPI, todo: dict[str, dict[str, Any]], cache: ReplyCache, sleep
) -> dict[str, Result]:
    assert cfg.cache_dir  # EndpointConfig refuses batch mode without one
    state_path = _state_path(cfg.cache_dir, list(todo))
    state = json.loads(state_path.read_text()) if state_path.exists() else {}
    if state.get("batch_id"):
        log.info("resuming batch %s (%s)", state["batch_id"], state_path)
    else:
        lines = [request_line(key, body) for key, body in todo.items()]
        state = {"batch_id": _submit(api, lines, state_path.with_suffix(""))}
        state_path.write_text(json.dumps(state))
    done = _wait(api, state["batch_id"], cfg.batch_poll_interval, sleep)
    got = read_results(_download(api, done.output_file_id) + _download(api, getattr(done, "error_file_id", None)))
    missing = TeacherRequestError(f"not returned by batch {state['batch_id']} (status {done.status})")
    out = {key: got.get(key, missing) for key in todo}
    for key, result in out.items():  # store now: a crash below must not lose what was paid for
        if isinstance(result, Completion):
            cache.set(key, result)
    state_path.unlink(missing_ok=True)
    return out
