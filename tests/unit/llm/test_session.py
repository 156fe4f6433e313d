"""The session of a stage run, against the scripted loopback server: rounds through one cache, counters
over every round, and a fully cached round that starts no embedded server."""

from __future__ import annotations

import dataclasses

from reflection_tuning.llm.cache import Completion
from reflection_tuning.llm.errors import TeacherRequestError
from reflection_tuning.llm.session import Session

from ..conftest import Failure, cfg_for

BATCH = [[{"role": "user", "content": f"Improve answer {n}."}] for n in range(3)]


def test_rounds_share_the_cache_and_the_counters(tmp_path, fake_openai):
    cfg = cfg_for(tmp_path, base_url=fake_openai.url, max_retries=0)
    fake_openai.failures = [Failure(400)]  # a final error: returned in place, not raised
    with Session(cfg, template_hash="h") as session:
        first = session.send(BATCH)
        again = session.send(BATCH)
        reask = session.send(BATCH[:1], cfg=dataclasses.replace(cfg, seed=1))
    assert sum(isinstance(r, TeacherRequestError) for r in first) == 1
    assert all(isinstance(r, Completion) for r in again + reask) and reask[0].cached is False
    assert sum(r.cached for r in again) == 2  # the failed one was not stored, so it is sent again
    stats = session.stats()
    assert stats["requests_sent"] == len(fake_openai.requests) == 3 + 1 + 1 and stats["cache_hits"] == 2
    assert stats["endpoints"] == 1 and stats["cost_cap_reached"] == 0
    assert fake_openai.requests[-1]["seed"] == 1


def test_a_fully_cached_round_starts_no_embedded_server(tmp_path, fake_openai):
    cfg = cfg_for(tmp_path, base_url=fake_openai.url, embedded_sampling=None)  # the same request both ways
    with Session(cfg, template_hash="h") as session:
        session.send(BATCH)
    embedded = dataclasses.replace(cfg, base_url="embedded")  # the model "m" is no GGUF file: a start would fail
    with Session(embedded, template_hash="h") as session:
        assert all(r.cached for r in session.send(BATCH))
    assert len(fake_openai.requests) == 3

