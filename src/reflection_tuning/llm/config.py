"""The config of one LLM endpoint: a params section read into :class:`EndpointConfig`.

Two sections of ``params.yaml`` have this type: ``teacher:`` (the reflection stages and
``compress``) and ``judge:`` (the pairwise judge). Everything under ``llm/`` takes one of
them; what a step asks (its prompt, schema and parser) lives in ``reflection_tuning.steps``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from reflection_tuning.infra.config import ConfigError
from reflection_tuning.infra.errors import UserError
from reflection_tuning.llm.cost import Price

if TYPE_CHECKING:
    from reflection_tuning.infra.command import Call

EMBEDDED = "embedded"
MODES = ("online", "batch")
REPLY_FORMATS = ("auto", "json_schema", "markers")
LENGTH_BOUNDS = ("auto", "always", "never")


@dataclass(frozen=True)
class EndpointConfig:
    """An LLM endpoint section (``teacher:``, ``judge:``).

    Attributes:
        model: model name sent to the endpoint; with ``base_url: embedded`` the local
            model that the embedded server loads.
        base_url: OpenAI-compatible base URL (``…/v1``), a list of them (shared round-robin,
            e.g. one vLLM server per GPU), or ``embedded``.
        api_key_env: the NAME of the environment variable holding the key (null: no key).
        temperature, top_p, max_tokens, seed: sampling parameters (max_tokens: completion tokens).
        frequency_penalty: OpenAI's frequency penalty (null: not sent).
        max_concurrency: requests in flight at once (sliding window).
        timeout: idle limit in seconds: the longest wait for the next chunk of a streamed
            reply (and for the connection and the first chunk). A request past it is closed,
            which stops its generation on the server, and retried.
        total_timeout: limit in seconds on one whole attempt (null: none).
        max_retries: retries after the first attempt (so at most ``max_retries + 1`` attempts).
        retry_wait_initial, retry_wait_max: jittered exponential backoff between attempts,
            in seconds (a longer ``Retry-After`` from the server wins).
        cache_dir: directory of the on-disk request cache (null: no cache).
        price: USD per 1M tokens, ``{input: …, output: …}`` (null: cost not computed).
            In ``batch`` mode give the Batch API prices.
        max_cost: hard cap in USD on what one stage run may spend (null: no cap; needs ``price``).
        mode: ``online`` (chat completions) or ``batch`` (the OpenAI Batch API).
        batch_poll_interval: seconds between Batch API status polls.
        reply_format: ``auto`` (a JSON schema where the endpoint accepts ``response_format``,
            markers where its first reply refuses or ignores it), ``json_schema`` (the request
            carries the step's JSON schema as an OpenAI ``response_format``; an endpoint that
            refuses it stops the stage) or ``markers`` (free text with markers, parsed by the step).
        length_bounds: ``auto`` (the step's ``max_chars`` bounds go into its JSON schema and its
            prompt for the embedded server only), ``always`` or ``never``.
        embedded_sampling: extra sampling fields sent only to the embedded llama.cpp server
            (DRY, ``repeat_penalty``; null: none).
        max_request_errors: the share of rows (0..1) that may end as ``request_error`` before the
            stage, having written its rows, exits non-zero.
        reask: how many times a reply that does not parse, or was cut at ``max_tokens``, is
            asked again (each time with seed ``seed + k``, so under its own cache key).
        reask_temperature: the temperature of a re-ask (null: ``temperature``). Greedy
            decoding (temperature 0) gives the same reply whatever the seed, so a re-ask samples.
        reask_feedback: a re-ask also carries the failed reply and a user turn saying why it
            could not be used (as instructor's re-ask does): the only re-ask that changes the
            reply of a server that decodes greedily whatever the temperature.

    Raises (on construction):
        ConfigError: a value out of range, or a combination no endpoint serves.
    """

    model: str
    base_url: str | tuple[str, ...]
    api_key_env: str | None
    temperature: float
    top_p: float
    max_tokens: int
    seed: int | None
    frequency_penalty: float | None
    max_concurrency: int
    timeout: float
    total_timeout: float | None
    max_retries: int
    retry_wait_initial: float
    retry_wait_max: float
    cache_dir: str | None
    price: dict[str, float] | None
    max_cost: float | None
    mode: str
    batch_poll_interval: float
    reply_format: str
    length_bounds: str
    embedded_sampling: dict[str, float] | None = field(hash=False)  # a dict: not part of the hash
    max_request_errors: float
    reask: int
    reask_temperature: float | None
    reask_feedback: bool

    def __post_init__(self) -> None:
        if not isinstance(self.base_url, str):  # a YAML list: keep the dataclass hashable
            object.__setattr__(self, "base_url", tuple(self.base_url))
            if not self.base_url or EMBEDDED in self.base_url:
                raise ConfigError("base_url: a list needs at least one URL and cannot hold 'embedded'")
        if self.mode not in MODES:
            raise ConfigError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.mode == "batch" and (self.base_url == EMBEDDED or not self.cache_dir):
            raise ConfigError("mode batch needs a Batch API endpoint (OpenAI), not the embedded server, "
                              "and a cache_dir (the results are read back into it; the batch ids are kept there)")
        try:
            Price.from_params(self.price)
        except ValueError as e:
            raise ConfigError(str(e)) from e
        if self.max_cost is not None and (self.price is None or self.max_cost < 0):
            raise ConfigError("max_cost needs price, and must be >= 0 USD")
        for name, low in (("max_concurrency", 1), ("max_retries", 0), ("max_tokens", 1), ("reask", 0)):
            if getattr(self, name) < low:
                raise ConfigError(f"{name} must be >= {low}, got {getattr(self, name)}")
        if self.reask_temperature is not None and self.reask_temperature < 0:
            raise ConfigError(f"reask_temperature must be >= 0, got {self.reask_temperature}")
        if self.timeout <= 0:
            raise ConfigError(f"timeout must be > 0 seconds, got {self.timeout}")
        if self.total_timeout is not None and self.total_timeout <= 0:
            raise ConfigError(f"total_timeout must be > 0 seconds or null, got {self.total_timeout}")
        if self.reply_format not in REPLY_FORMATS:
            raise ConfigError(f"reply_format must be one of {REPLY_FORMATS}, got {self.reply_format!r}")
        if self.length_bounds not in LENGTH_BOUNDS:
            raise ConfigError(f"length_bounds must be one of {LENGTH_BOUNDS}, got {self.length_bounds!r}")
        if not 0 <= self.max_request_errors <= 1:
            raise ConfigError(f"max_request_errors is a share of the rows, 0 to 1, got {self.max_request_errors}")

    @property
    def base_urls(self) -> tuple[str, ...]:
        """The endpoints as a tuple (one for a single URL)."""
        return (self.base_url,) if isinstance(self.base_url, str) else tuple(self.base_url)

    @property
    def bounded(self) -> bool:
        """Whether the steps' ``max_chars`` bounds are sent (``length_bounds``; ``auto``: embedded only)."""
        return self.length_bounds == "always" or (self.length_bounds == "auto" and self.base_url == EMBEDDED)

    def price_usd(self) -> Price | None:
        """``price`` as a :class:`~reflection_tuning.llm.cost.Price`, or ``None``."""
        return Price.from_params(self.price)



def api_key_from_env(cfg: EndpointConfig, environ: Mapping[str, str], section: str = "teacher") -> str | None:
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


def api_key(call: Call) -> str | None:
    """The key of the call's endpoint section (``teacher``, ``judge``: the one whose config is an
    :class:`EndpointConfig`), read from the environment variable its ``api_key_env`` names.

    Raises:
        UserError: a remote endpoint names a variable that is not set.
    """
    section, cfg = next((s, c) for s, c in zip(call.stage.sections, call.configs) if isinstance(c, EndpointConfig))
    return api_key_from_env(cfg, dict(os.environ), section=section.name)


__all__ = ["EMBEDDED", "LENGTH_BOUNDS", "MODES", "REPLY_FORMATS", "EndpointConfig", "api_key", "api_key_from_env"]
