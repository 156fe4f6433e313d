"""Streamed requests against the REAL embedded teacher (llama.cpp's server).

A streamed reply equals the plain one. Requests the client gives up on (a timeout, a
cancelled run) close their stream, and the server stops generating them: seen from the
server's side as its slots (``GET /slots``: none processing) and its CPU time (flat once the
abandoned generations are cancelled) and, through a transparent proxy, as the requests still
open at the server. The slow test runs a stage under a CPU hog with a small
``teacher.timeout``: a plain (non-streaming) client against the streaming one.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path
from unittest import mock

import openai
import psutil
import pytest
from shipped import params_config

from reflection_tuning.infra.io import write_jsonl
from reflection_tuning.llm.cache import Completion
from reflection_tuning.llm.client import Transport
from reflection_tuning.llm.config import EndpointConfig
from reflection_tuning.llm.errors import TeacherRequestError
from reflection_tuning.llm.server import serve_embedded
from reflection_tuning.llm.session import Session
from reflection_tuning.rows import FIELDS
from reflection_tuning.stages import reflect_instruction
from reflection_tuning.steps.reflect_instruction import ReflectInstruction

from .conftest import FaultProxy

REPO = Path(__file__).resolve().parents[3]
TIMEOUT = 8  # seconds: more than a gap between two chunks under the hog, less than a whole reply
LONG = [{"role": "user", "content": "Write a very long story about a dragon and a knight, in many chapters."}]


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def busy_seconds(pid: int, window: float = 3.0) -> float:
    """CPU seconds the server process uses during the next ``window`` seconds."""
    start = cpu_seconds(pid)
    time.sleep(window)
    return cpu_seconds(pid) - start


def quiet_after(pid: int, limit: float) -> float:
    """Seconds until the server uses under 0.1 CPU second in 2 s (``limit`` if never)."""
    start = time.monotonic()
    while busy_seconds(pid, 2.0) >= 0.1 and time.monotonic() - start < limit:
        pass
    return time.monotonic() - start


def busy_slots(served) -> int:
    """Server slots generating right now (llama.cpp's ``GET /slots``)."""
    with urllib.request.urlopen(f"{served.root}/slots", timeout=10) as r:
        return sum(1 for slot in json.loads(r.read()) if slot["is_processing"])


def slots_free_after(served, limit: float) -> float:
    """Seconds until no slot of the server is processing (``limit`` if never)."""
    start = time.monotonic()
    while busy_slots(served) and time.monotonic() - start < limit:
        time.sleep(0.2)
    return time.monotonic() - start


def settle(proxy: FaultProxy, limit: float) -> float:
    """Seconds until no request is open at the server any more (``limit`` if never)."""
    start = time.monotonic()
    while proxy.upstream_open and time.monotonic() - start < limit:
        time.sleep(0.2)
    return time.monotonic() - start


class PlainTransport(Transport):
    """The transport with plain (not streamed) requests, as it sent them before streaming: a
    request it gives up on keeps generating on the server. Only these tests send this way."""

    sent = 0  # requests sent this way: the plain arms check that they were

    async def _request(self, n: int, kwargs: dict) -> Completion:
        PlainTransport.sent += 1
        reply = await self.endpoints.clients[n].chat.completions.create(**kwargs)
        usage = reply.usage
        return Completion(
            reply.choices[0].message.content or "",
            reply.choices[0].finish_reason,
            int(getattr(usage, "prompt_tokens", 0) or 0),
            int(getattr(usage, "completion_tokens", 0) or 0),
        )


def run_teacher(cfg: EndpointConfig, batch: list, *, stream: bool = True) -> tuple[list, dict]:
    teacher = Session(cfg, template_hash="streaming-test", base_url=cfg.base_urls)

    async def go():
        try:
            return await teacher.complete_all(batch, desc="test")
        finally:
            await teacher.aclose()

    plain_before = PlainTransport.sent
    with mock.patch("reflection_tuning.llm.session.Transport", Transport if stream else PlainTransport):
        results = asyncio.run(go())
    assert (PlainTransport.sent > plain_before) is (not stream), "the session no longer builds its Transport there"
    return results, teacher.stats()


def test_a_streamed_reply_equals_the_plain_one(embedded_gguf, teacher_url, tmp_path):
    messages = [{"role": "user", "content": "Name three colours."}]
    cfg = params_config(
        EndpointConfig, "teacher", model=str(embedded_gguf), base_url=teacher_url, max_tokens=24, cache_dir=None
    )
    [streamed], stats = run_teacher(cfg, [messages])
    [plain], _ = run_teacher(cfg, [messages], stream=False)
    assert (streamed.content, streamed.finish_reason) == (plain.content, plain.finish_reason)
    assert streamed.prompt_tokens == plain.prompt_tokens > 0  # usage comes on the finish chunk
    assert streamed.completion_tokens == plain.completion_tokens > 0
    assert stats["requests_cancelled"] == 0


def test_timed_out_streams_stop_their_generations_on_the_server(embedded_gguf, teacher_server):
    """4 long generations (up to 2000 tokens), given up after 1 s each (before a story can end,
    also on an idle CPU): nothing stays open at the server, its slots are freed, and its CPU
    goes idle."""
    teacher_url = teacher_server.url
    batch = [[{"role": "user", "content": f"{LONG[0]['content']} Story {i}."}] for i in range(4)]
    with FaultProxy(teacher_url, lambda key, attempt: None) as proxy:
        cfg = params_config(
            EndpointConfig,
            "teacher",
            model=str(embedded_gguf),
            base_url=proxy.urls[0],
            max_tokens=2000,
            timeout=60,
            total_timeout=1,
            max_retries=0,
            cache_dir=None,
        )
        results, stats = run_teacher(cfg, batch)
        assert all(isinstance(r, TeacherRequestError) for r in results)
        assert stats["requests_cancelled"] == 4 and stats["retries_timeout"] == 0
        # the proxy closes its upstream stream when it next writes to the gone client
        assert settle(proxy, 120) < 120 and proxy.upstream_open == 0
        assert proxy.forwarded == Counter()  # no reply went to the end
    # the server cancels at its next decoding step; the 4 x 2000 tokens asked for would take far longer
    assert slots_free_after(teacher_server, 60) < 60
    assert quiet_after(teacher_server.pid, 60) < 60


@pytest.mark.slow
def test_under_a_cpu_hog_streaming_has_no_retry_storm(embedded_gguf, alpaca_rows, tmp_path):
    """reflect_instruction's 8 requests while two busy loops hold both cores, with a timeout
    that a whole reply cannot meet. A plain client piles retries on top of generations the
    server never stops; the streaming stage keeps at most its window open at the server, stays
    within ``max_retries``, and leaves every slot free. ``-s`` prints the figures."""
    rows = alpaca_rows[:8]
    write_jsonl(tmp_path / "original.jsonl", rows)
    stage_cfg = params_config(
        reflect_instruction.Config, "reflect_instruction",
        prompt_file=str(REPO / "src/reflection_tuning/steps/reflect_instruction.j2"),
        system_file=str(REPO / "src/reflection_tuning/steps/reflect_instruction.system.txt"),
    )
    step = ReflectInstruction(stage_cfg.prompt(FIELDS))
    batch = [step.format_input(r) for r in rows]
    hog = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    figures = {}
    try:
        # one decoding thread: llama.cpp's threads wait on each other at every step, and the hog holds
        # both cores, so two threads would only make every arm slower (benchmarks/README.md)
        with serve_embedded(embedded_gguf, parallel=4, slot_ctx=4096, threads=1, startup_timeout=300) as server:
            asyncio.run(_warm(server.url, str(embedded_gguf)))
            # the plain arm last: what it leaves running at the server dies with the server
            for arm, over in [
                ("streaming, idle timeout", {}),
                ("streaming, total timeout", {"timeout": 60, "total_timeout": 4}),
                ("plain, timeout", {}),
            ]:
                with FaultProxy(server.url, lambda key, attempt: None) as proxy:
                    cfg = params_config(
                        EndpointConfig,
                        "teacher",
                        **{
                            "model": str(embedded_gguf),
                            "base_url": proxy.urls[0],
                            # free text from the 135M model runs to max_tokens: every reply is a long
                            # generation, which neither timeout lets finish; no re-ask, so the attempts
                            # per row are the HTTP retries alone
                            "reply_format": "markers",
                            "reask": 0,
                            "max_tokens": 256,
                            "max_concurrency": 4,
                            "timeout": TIMEOUT,
                            "max_retries": 2,
                            "retry_wait_initial": 0.1,
                            "retry_wait_max": 0.5,
                            "cache_dir": None,
                            # most rows may time out here by design: the stage writes them and returns
                            "max_request_errors": 1,
                            **over,
                        },
                    )
                    started = time.monotonic()
                    if arm.startswith("plain"):  # the same requests, without streaming
                        results, stats = run_teacher(cfg, batch, stream=False)
                        errors = sum(1 for r in results if isinstance(r, TeacherRequestError))
                    else:
                        stats = reflect_instruction.run(stage_cfg, cfg, _io(tmp_path)[0], _io(tmp_path)[1])
                        errors = stats["rows_request_error"]
                    seconds = time.monotonic() - started
                    open_after = proxy.upstream_open
                    quiet = quiet_after(server.pid, 15 if arm.startswith("plain") else 60)
                    free = slots_free_after(server, 15 if arm.startswith("plain") else 60)
                    figures[arm] = {
                        "seconds": round(seconds, 1), "rows_request_error": errors,
                        "requests_sent": stats["requests_sent"], "retries_timeout": stats["retries_timeout"],
                        "requests_cancelled": stats["requests_cancelled"],
                        "max_attempts_per_row": max(proxy.attempts.values()),
                        "max_open_at_server": proxy.max_upstream_open,
                        "open_at_server_at_return": open_after,
                        "open_at_server_after_quiet": proxy.upstream_open,
                        "seconds_until_server_quiet": round(quiet, 1),  # 15 (plain) / 60: not quiet by then
                        "seconds_until_slots_free": round(free, 1),
                    }
    finally:
        for p in hog:
            p.kill()
            p.wait()
    print(json.dumps(figures, indent=1))
    idle, total, plain = figures.values()
    for arm in (idle, total):
        assert arm["max_attempts_per_row"] <= 3  # max_retries + 1
        assert arm["max_open_at_server"] <= 4  # never more than the window: no abandoned generation piles up
        assert arm["open_at_server_after_quiet"] == 0 and arm["seconds_until_server_quiet"] < 60
        assert arm["seconds_until_slots_free"] < 60
    assert idle["rows_request_error"] <= plain["rows_request_error"]
    assert total["requests_cancelled"] >= total["retries_timeout"] > 0  # timeouts were forced, and cancelled
    # the same measurement sees the storm the streaming client avoids
    assert plain["max_open_at_server"] > 4 or plain["open_at_server_at_return"] > 0


def _io(tmp: Path) -> tuple[reflect_instruction.Inputs, reflect_instruction.Outputs]:
    return (reflect_instruction.Inputs(original=tmp / "original.jsonl"),
            reflect_instruction.Outputs(instruction=tmp / "instruction.jsonl", metrics=tmp / "metrics.json"))


async def _warm(url: str, model: str) -> None:
    async with openai.AsyncOpenAI(base_url=url, api_key="x", max_retries=0) as client:
        await client.chat.completions.create(model=model, messages=LONG, max_tokens=4)
