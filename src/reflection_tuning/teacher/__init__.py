"""The teacher LLM: prompts, an OpenAI-compatible client with a request cache, reply parsing.

``TeacherConfig`` is the ``teacher:`` section of ``params.yaml``. It lives here, free of
heavy imports, so that ``from reflection_tuning.teacher import TeacherConfig`` is cheap;
the client (openai, tenacity, diskcache) is in :mod:`reflection_tuning.teacher.client`.
"""

from __future__ import annotations

from dataclasses import dataclass

from reflection_tuning.config import ConfigError

EMBEDDED = "embedded"


@dataclass(frozen=True)
class TeacherConfig:
    """The ``teacher:`` params section.

    Attributes:
        model: model name sent to the endpoint; with ``base_url: embedded`` the local
            transformers directory that ``transformers serve`` loads.
        base_url: OpenAI-compatible base URL (``…/v1``), or ``embedded``.
        api_key_env: the NAME of the environment variable holding the key (null: no key).
        temperature, top_p, max_tokens, seed: sampling parameters (max_tokens: completion tokens).
        max_concurrency: requests in flight at once (sliding window).
        timeout: seconds per HTTP request.
        max_retries: retries after the first attempt (so at most ``max_retries + 1`` attempts).
        cache_dir: directory of the on-disk request cache (null: no cache).
    """

    model: str = "models/smollm2-135m-instruct"
    base_url: str = EMBEDDED
    api_key_env: str | None = "OPENAI_API_KEY"
    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 384
    seed: int | None = 0
    max_concurrency: int = 8
    timeout: float = 300.0
    max_retries: int = 4
    cache_dir: str | None = "cache/teacher"

    def __post_init__(self) -> None:
        """Raises ConfigError (a UserError) for values out of range."""
        if self.max_concurrency < 1:
            raise ConfigError(f"teacher.max_concurrency must be >= 1, got {self.max_concurrency}")
        if self.max_retries < 0:
            raise ConfigError(f"teacher.max_retries must be >= 0, got {self.max_retries}")
        if self.max_tokens < 1:
            raise ConfigError(f"teacher.max_tokens must be >= 1, got {self.max_tokens}")
        if self.timeout <= 0:
            raise ConfigError(f"teacher.timeout must be > 0 seconds, got {self.timeout}")


__all__ = ["EMBEDDED", "TeacherConfig"]
