"""The teacher's request cache: what the key depends on (and what it must not), and a store
that survives its process (``diskcache`` on disk)."""

from __future__ import annotations

import multiprocessing

from shipped import params_config

from reflection_tuning.llm.cache import CACHE_VERSION, Completion, ReplyCache, cache_key
from reflection_tuning.llm.config import EndpointConfig
from reflection_tuning.llm.request import Adaptations

MESSAGES = [{"role": "system", "content": "You are a careful editor."},
            {"role": "user", "content": "Improve: Give three tips for staying healthy."}]


def config(**over) -> EndpointConfig:
    """Every field the key reads set here, so the pinned key below does not move with params.yaml."""
    base = dict(model="models/smollm2-135m-instruct", base_url="embedded", temperature=0.0, top_p=1.0,
                max_tokens=768, seed=0, frequency_penalty=None, cache_dir=None, reply_format="markers",
                embedded_sampling=None)
    return params_config(EndpointConfig, "teacher", **{**base, **over})


def test_the_key_of_a_known_request_is_unchanged():
    """Pinned: a change of the key's recipe silently throws away every shared teacher cache.
    Bump CACHE_VERSION (and this value) only on purpose."""
    assert CACHE_VERSION == 2  # 2: the key is the body as sent (max_completion_tokens, the adaptations)
    assert cache_key(config(), MESSAGES, "t0") == "b4fb2ab75a0cacfefac913734f1935279958f4d0a1cdf35698daf338b274b8e9"


def test_the_key_ignores_where_and_how_a_request_is_sent():
    key = cache_key(config(), MESSAGES, "t0")
    assert (
        cache_key(
            config(
                base_url="https://api.example.com/v1",
                api_key_env="OTHER_KEY",
                mode="batch",
                cache_dir="cache/elsewhere",
                max_concurrency=1,
                timeout=5,
                max_retries=0,
            ),
            MESSAGES,
            "t0",
        )
        == key
    )


def test_the_key_follows_everything_that_shapes_the_reply():
    key = cache_key(config(), MESSAGES, "t0")
    changed = [config(model="gpt-4o-mini"), config(temperature=0.7), config(top_p=0.9), config(max_tokens=16),
               config(seed=1), config(frequency_penalty=0.3)]
    keys = {cache_key(c, MESSAGES, "t0") for c in changed}
    keys |= {cache_key(config(), MESSAGES[1:], "t0"), cache_key(config(), MESSAGES, "t1"),
             cache_key(config(), MESSAGES, "t0", response_format={"type": "json_schema"}),
             cache_key(config(embedded_sampling={"repeat_penalty": 1.1}), MESSAGES, "t0"),
             cache_key(config(), MESSAGES, "t0", adaptations=Adaptations(dropped=["temperature"]))}
    assert key not in keys and len(keys) == 11


def _write(directory: str) -> None:
    cache = ReplyCache(directory)
    cache.set("k", Completion("[Better Answer] Sleep. [End]", "stop", 11, 7))
    cache.close()


def test_a_reply_stored_by_another_process_is_read_back_as_cached(tmp_path):
    proc = multiprocessing.get_context("spawn").Process(target=_write, args=(str(tmp_path / "c"),))
    proc.start()
    proc.join(60)
    assert proc.exitcode == 0
    cache = ReplyCache(tmp_path / "c")
    assert cache.get("k") == Completion("[Better Answer] Sleep. [End]", "stop", 11, 7, cached=True)
    assert cache.get("other") is None
    cache.close()
    cache.close()  # idempotent
    assert cache.get("k") is not None  # reopens on use


def test_no_directory_keeps_nothing():
    cache = ReplyCache(None)
    cache.set("k", Completion("x", "stop", 1, 1))
    assert cache.get("k") is None
    cache.close()
