"""The teacher's request cache: content-addressed, on disk, shared by every run.

The key is the SHA-256 of (model, messages, temperature, top_p, max_tokens, seed, template
hash): never the base URL, the mode (online or batch) or the API key, so another endpoint
of the same model, or the Batch API, reuses the replies, and no secret ever reaches the disk.
Only replies that came back are stored, each as soon as it arrives, so a stage killed
with SIGKILL pays again only for the requests that were in flight.

The directory (``teacher.cache_dir``) lives outside the stage outs; README.md shows how
to share it through a DVC remote (``dvc add cache/teacher && dvc push``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reflection_tuning.llm.config import EndpointConfig

Messages = list[dict[str, str]]
CACHE_VERSION = 1
_FIELDS = ("content", "finish_reason", "prompt_tokens", "completion_tokens")


@dataclass(frozen=True)
class Completion:
    """One teacher reply. Token counts are as the endpoint reports them (0 when it does not)."""

    content: str
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int
    cached: bool = False


def cache_key(cfg: EndpointConfig, messages: Messages, template_hash: str,
              response_format: dict[str, Any] | None = None) -> str:
    """SHA-256 hex of what determines a reply: model, messages, sampling params, template hash,
    and the ``response_format`` when one is sent. ``frequency_penalty`` and ``response_format``
    enter only when set, so the keys of requests without them are unchanged."""
    key: dict[str, Any] = {
        "v": CACHE_VERSION,
        "model": cfg.model,
        "messages": messages,
        "temperature": cfg.temperature,
        "top_p": cfg.top_p,
        "max_tokens": cfg.max_tokens,
        "seed": cfg.seed,
        "template_hash": template_hash,
    }
    if response_format is not None:
        key["response_format"] = response_format
    if getattr(cfg, "frequency_penalty", None) is not None:
        key["frequency_penalty"] = cfg.frequency_penalty
    blob = json.dumps(
        key,
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class ReplyCache:
    """Completions by cache key, in a ``diskcache`` directory (``None``: a cache that keeps nothing)."""

    def __init__(self, directory: str | Path | None) -> None:
        self._store: Any = None
        if directory:
            import diskcache

            self._store = diskcache.Cache(str(directory))

    def get(self, key: str) -> Completion | None:
        if self._store is None:
            return None
        hit = self._store.get(key)
        return Completion(**hit, cached=True) if hit is not None else None

    def set(self, key: str, completion: Completion) -> None:
        if self._store is not None:
            self._store.set(key, {k: getattr(completion, k) for k in _FIELDS})

    def close(self) -> None:
        """Close the files (idempotent; the cache reopens on the next use)."""
        if self._store is not None:
            self._store.close()
