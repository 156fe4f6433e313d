"""The teacher's request cache: content-addressed, on disk, shared by every run.

The key is the SHA-256 of the request body as sent (model, messages, token cap, sampling,
``response_format``) and the template hash: never the base URL, the mode (online or batch)
or the API key, so another endpoint of the same model, or the Batch API, reuses the
replies, and no secret ever reaches the disk.
Only replies that came back are stored, each as soon as it arrives, so a stage killed
with SIGKILL pays again only for the requests that were in flight.

The directory (``teacher.cache_dir``) lives outside the stage outs; README.md shows how
to share it through a DVC remote (``dvc add cache/teacher && dvc push``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reflection_tuning.llm.config import EndpointConfig
from reflection_tuning.llm.request import CACHE_VERSION, Adaptations, Messages, body_key, request_body

__all__ = ["CACHE_VERSION", "Completion", "Messages", "ReplyCache", "cache_key"]

_FIELDS = ("content", "finish_reason", "prompt_tokens", "completion_tokens")


@dataclass(frozen=True)
class Completion:
    """One teacher reply. Token counts are as the endpoint reports them (0 when it does not)."""

    content: str
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int
    cached: bool = False
    # How the request was made (not stored: the cache key says it): it carried the step's JSON
    # schema, and the run's adaptations when it was sent.
    structured: bool = False
    adaptations: tuple[str, ...] = ()


def cache_key(cfg: EndpointConfig, messages: Messages, template_hash: str,
              response_format: dict[str, Any] | None = None, adaptations: Adaptations | None = None) -> str:
    """The cache key of the request ``cfg`` sends for ``messages`` (:func:`~.request.request_body`,
    :func:`~.request.body_key`): what is sent determines the reply, so the model, messages,
    token cap, sampling, ``response_format`` and this run's adaptations enter it, with the
    template hash; the base URL and the key never do."""
    return body_key(request_body(cfg, messages, response_format=response_format, adaptations=adaptations),
                    template_hash)


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

    def meta(self, name: str) -> Any:
        """A value kept beside the replies under ``name`` (``None`` when absent or without a cache)."""
        return None if self._store is None else self._store.get(f"meta:{name}")

    def set_meta(self, name: str, value: Any) -> None:
        """Keep ``value`` (JSON-like) beside the replies under ``name``."""
        if self._store is not None:
            self._store.set(f"meta:{name}", value)

    def close(self) -> None:
        """Close the files (idempotent; the cache reopens on the next use)."""
        if self._store is not None:
            self._store.close()
