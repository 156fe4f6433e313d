"""Streamed chat completions: the chunks of one request assembled into one reply, with an
idle timeout, and structured-output helpers (``response_format``).

Why streaming: a server can only stop generating a reply nobody waits for if it notices
that the client went away, and the servers we target notice that only on a stream
(llama.cpp's server cancels the task and frees its slot, ``transformers serve``'s
``cli/serving/chat_completion.py`` cancels the generation, when
the SSE generator is closed; its non-streaming path has no cancel). Closing the stream
(:func:`read_stream` always does, also on a timeout or a cancelled task) closes the HTTP
connection, which is that signal.
"""

from __future__ import annotations

import asyncio
from typing import Any

from reflection_tuning.llm.cache import Completion


class IncompleteStream(Exception):
    """The stream ended (the connection closed) before a chunk with a ``finish_reason``."""


async def read_stream(stream: Any, idle_timeout: float) -> Completion:
    """Assemble an ``openai.AsyncStream`` of ``ChatCompletionChunk`` into one reply.

    ``content`` is the concatenation of ``choices[0].delta.content``; ``finish_reason`` the
    last one seen; token counts come from the chunk that carries ``usage`` (the last one
    with ``stream_options: {include_usage: true}``; ``transformers serve`` puts it on the
    finish chunk unasked), else 0. The stream is closed in every case, so an abandoned
    reply stops being generated.

    Args:
        stream: what ``chat.completions.create(..., stream=True)`` returned.
        idle_timeout: seconds allowed between two chunks (and before the first one).

    Raises:
        asyncio.TimeoutError: no chunk for ``idle_timeout`` seconds.
        IncompleteStream: the stream ended without a ``finish_reason``.
        openai.APIError: the server sent an error event, or the connection failed.
    """
    parts: list[str] = []
    finish_reason: str | None = None
    usage = None
    try:
        while True:
            try:
                chunk = await _next_chunk(stream, idle_timeout)
            except StopAsyncIteration:
                break
            if getattr(chunk, "usage", None) is not None:
                usage = chunk.usage
            for choice in chunk.choices or ():
                if choice.index != 0:
                    continue
                if choice.delta is not None and choice.delta.content:
                    parts.append(choice.delta.content)
                if choice.finish_reason is not None:
                    finish_reason = choice.finish_reason
    finally:
        await stream.close()
    if finish_reason is None:
        raise IncompleteStream(f"the reply stream ended after {len(parts)} content chunks without a finish_reason")
    return Completion(
        content="".join(parts),
        finish_reason=finish_reason,
        prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
        completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
    )


async def _next_chunk(stream: Any, idle_timeout: float) -> Any:
    """The stream's next chunk, waiting at most ``idle_timeout`` seconds.

    Not ``asyncio.wait_for``: before Python 3.12, a ``wait_for`` whose task is cancelled the
    moment its awaitable completes returns the result and drops the cancellation (CPython
    gh-86296), and a chunk arrives every few milliseconds, so a ``total_timeout`` or a
    shutdown that cancels a reading task was often lost and the whole reply was read.
    ``asyncio.wait`` never swallows a cancellation.

    Raises:
        asyncio.TimeoutError: no chunk within ``idle_timeout``.
        StopAsyncIteration: the stream ended.
    """
    pending = asyncio.ensure_future(stream.__anext__())
    try:
        done, _ = await asyncio.wait({pending}, timeout=idle_timeout)
    finally:
        if not pending.done():  # a timeout, or this task cancelled: stop waiting for the chunk
            pending.cancel()
            await asyncio.gather(pending, return_exceptions=True)
    if not done:
        raise asyncio.TimeoutError
    return pending.result()


def json_schema_format(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    """The OpenAI ``response_format`` for structured outputs: ``{type: json_schema,
    json_schema: {name, schema, strict: true}}`` (OpenAI API reference, Chat Completions,
    ``response_format``; vLLM and SGLang accept the same shape).

    Raises:
        ValueError: ``name`` is not 1-64 of ``[A-Za-z0-9_-]`` (OpenAI's rule), or ``schema``
            is not an object schema.
    """
    if not (0 < len(name) <= 64 and all(c.isalnum() or c in "_-" for c in name)):
        raise ValueError(f"response_format name {name!r}: 1-64 letters, digits, '_' or '-'")
    if not isinstance(schema, dict) or schema.get("type") != "object":
        raise ValueError("response_format schema must be a JSON schema of type object")
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}
