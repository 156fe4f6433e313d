"""The papers' teachers, as their providers document them (tests/providers.py), run the LLM
commands with only ``base_url`` and ``model`` changed: every row ``ok`` at the first request of
the run, whatever each endpoint refuses, and long answers stored whole. An endpoint that refuses
every request stops the command with one line; ``mode: batch`` learns the same from its first
request, sent online, and submits adapted bodies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from providers import provider
from shipped import write_params

from reflection_tuning import cli
from reflection_tuning.infra.io import read_jsonl, write_jsonl
from reflection_tuning.rows import canonical
from reflection_tuning.steps import judge as judge_step
from reflection_tuning.steps.compress import Compress
from reflection_tuning.steps.reflect_instruction import ReflectInstruction
from reflection_tuning.steps.reflect_response import ReflectResponse

REPO = Path(__file__).resolve().parents[3]
SAMPLES = REPO / "data" / "samples" / "alpaca.jsonl"  # real Alpaca rows, shipped (NOTICE)
MODELS = ("gpt-5-mini", "gpt-4o-mini", "gpt-4", "long-teacher")


def _files(cls) -> dict[str, str]:
    return dict(zip(("prompt_file", "system_file"), map(str, cls.template_files())))


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A dataset directory with 4 real rows, 4 more with an input for ``compress``, and answers to
    judge; the shipped params (their prompt paths made absolute: the test runs in ``tmp_path``)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-key")
    records = [json.loads(line) for line in SAMPLES.read_text(encoding="utf-8").splitlines()]
    rows = [canonical(r["instruction"], r["input"], r["output"], "alpaca", "merge") for r in records[:4]]
    write_jsonl(tmp_path / "data/alpaca/original.jsonl", rows)
    with_input = [r for r in records if r["input"].strip()][:4]
    (tmp_path / "with_input.json").write_text(json.dumps(with_input), encoding="utf-8")
    answers = [{"id": f"vicuna-{n:04d}", "set": "vicuna", "prompt": r["instruction"], "role": role,
                "answer": r["output"] if role == "sft" else r["output"][: len(r["output"]) // 2]}
               for n, r in enumerate(records[:2]) for role in ("sft", "baseline")]
    write_jsonl(tmp_path / "data/alpaca/answers.jsonl", answers)
    params = write_params(tmp_path / "params.yaml", reflect_instruction=_files(ReflectInstruction),
                          reflect_response=_files(ReflectResponse), compress=_files(Compress),
                          judge_step=_files(judge_step.JudgeStep))
    return tmp_path, rows, params


def run(command: str, params: Path, url: str, model: str, *extra: str) -> int:
    return cli.main([command, "--params", str(params), "--base-url", url, "--model", model, *extra])


@pytest.mark.parametrize("model", MODELS)
def test_every_llm_command_finishes_ok_with_only_base_url_and_model_changed(workdir, fake_openai, model):
    tmp, rows, params = workdir
    chars = 3200 if model == "long-teacher" else 400
    fake_openai.reply = provider(model, chars=chars)
    fake_openai.chunk_chars = 256  # a long reply in a few stream chunks (4 characters a chunk: 800 of them)
    for command in ("reflect_instruction", "reflect_response", "judge"):
        assert run(command, params, fake_openai.url, model, "--dataset", "alpaca") == 0, command
    assert run("compress", params, fake_openai.url, model, "--input", "with_input.json", "--output", "merged.jsonl",
               "--metrics", "compress.json") == 0
    reflected = [r for name in ("instruction", "response", "both")
                 for r in read_jsonl(tmp / f"data/alpaca/{name}.jsonl")]
    assert len(reflected) == 3 * len(rows) and {r["status"] for r in reflected} == {"ok"}
    merged = read_jsonl(tmp / "merged.jsonl")
    assert len(merged) == 4 and {r["status"] for r in merged} == {"ok"}
    judged = read_jsonl(tmp / "data/alpaca/judgements.jsonl")
    assert {j["status"] for r in judged for j in r["judgements"]} == {"ok"} and len(judged) == 2

    metrics = json.loads((tmp / "metrics/alpaca/reflect_instruction.json").read_text())
    formats = {r["reply_format"] for r in reflected}
    if model == "gpt-5-mini":  # temperature 0 and top_p refused by name, then dropped for the run
        assert (metrics["adapted_temperature"], metrics["adapted_top_p"], metrics["adaptations"]) == (1, 1, 2)
        assert all("temperature dropped" in " ".join(r["adaptations"]) for r in reflected)
        assert all("max_tokens" not in b for b in fake_openai.requests)
    if model == "gpt-4":  # no json_schema: markers, decided by the first request
        assert formats == {"markers"} and metrics["reply_format_markers"] == 1
    else:
        assert formats == {"json_schema"} and metrics["reply_format_markers"] == 0
    schemas = [b["response_format"]["json_schema"]["schema"] for b in fake_openai.requests if "response_format" in b]
    assert not any({"minLength", "maxLength"} & set(p) for s in schemas for p in s["properties"].values())
    if model == "long-teacher":  # answers past the old 1,500-character bound, stored whole
        assert all(len(r["output"]) > 3000 for r in reflected)
    # each command pays at most one refusal per adapted parameter, then every request goes through
    assert len(fake_openai.requests) <= 3 * len(rows) + 4 + 2 * 2 + 4 * 3


def errors(capsys) -> list[str]:
    """The ERROR lines the command printed (the CLI logs to stderr)."""
    return [line for line in capsys.readouterr().err.splitlines() if " ERROR " in line]


def test_an_endpoint_that_refuses_every_request_stops_the_command_with_one_line(workdir, fake_openai, capsys):
    tmp, _, params = workdir
    fake_openai.reply = provider("gpt-4o-mini")  # serves gpt-4o-mini only: any other model is unknown
    code = run("reflect_instruction", params, fake_openai.url, "gpt-4o", "--dataset", "alpaca")
    assert code != 0 and len(fake_openai.requests) == 1
    [line] = errors(capsys)
    assert "HTTP 404" in line and "does not exist" in line and "gpt-4o" in line
    assert not (tmp / "data/alpaca/instruction.jsonl").exists()  # nothing written: dvc records no success


def test_mostly_failed_requests_write_their_rows_then_fail(workdir, fake_openai, capsys):
    from unit.conftest import Failure

    tmp, rows, params = workdir
    good = provider("gpt-4o-mini")
    first = []

    def flaky(body):  # the first request passes, every later one is refused without naming a parameter
        first.append(1)
        return good(body) if len(first) == 1 else Failure(400, body={"error": {"message": "context too long"}})

    fake_openai.reply = flaky
    code = run("reflect_instruction", params, fake_openai.url, "gpt-4o-mini", "--dataset", "alpaca")
    assert code != 0
    out = read_jsonl(tmp / "data/alpaca/instruction.jsonl")
    assert len(out) == len(rows) and [r["status"] for r in out].count("request_error") == len(rows) - 1
    [line] = errors(capsys)
    assert "3 of 4 requests ended as request_error" in line and "context too long" in line


def batch_api(monkeypatch, answer):
    """The paid Batch API, in memory (``FakeBatchAPI``), answering as ``answer`` does."""
    import openai

    from unit.llm.test_batch import FakeBatchAPI

    api = FakeBatchAPI(answer=answer)
    api.close = lambda: None
    monkeypatch.setattr(openai, "OpenAI", lambda **kw: api)
    return api


@pytest.mark.parametrize("model", MODELS)
def test_batch_mode_learns_from_one_online_request_then_submits_adapted_bodies(workdir, fake_openai, monkeypatch,
                                                                               model):
    """``mode: batch`` with the default ``reply_format``: the run's first request goes alone and
    online (``fake_openai``), so what the model refuses is adapted before the batch (the Batch
    API fake, answering as the same provider) is submitted; every row comes back ``ok``."""
    tmp, rows, params = workdir
    answer = provider(model, chars=3200 if model == "long-teacher" else 400)
    fake_openai.reply, fake_openai.chunk_chars = answer, 256
    api = batch_api(monkeypatch, answer)
    assert run("reflect_instruction", params, fake_openai.url, model, "--dataset", "alpaca", "--mode", "batch",
               "--batch-poll-interval", "0") == 0
    [submitted] = [api.store[f] for f in api.created]
    bodies = [json.loads(line)["body"] for line in submitted.splitlines()]
    assert len(bodies) == len(rows) - 1  # the first row's reply came online and is cached
    out = read_jsonl(tmp / "data/alpaca/instruction.jsonl")
    assert len(out) == len(rows) and {r["status"] for r in out} == {"ok"}
    refusals = {"gpt-5-mini": 2, "gpt-4": 1}.get(model, 0)  # temperature and top_p; json_schema
    assert len(fake_openai.requests) == 1 + refusals
    metrics = json.loads((tmp / "metrics/alpaca/reflect_instruction.json").read_text())
    assert metrics["requests_sent"] == 1 + refusals + len(bodies) and metrics["cache_hits"] == 0
    if model == "gpt-5-mini":
        assert not any({"temperature", "top_p", "max_tokens"} & set(b) for b in bodies)
        assert all("temperature dropped" in " ".join(r["adaptations"]) for r in out)
    if model == "gpt-4":  # markers in every body and row, decided online
        assert not any("response_format" in b for b in bodies) and {r["reply_format"] for r in out} == {"markers"}
    else:
        assert all(b["response_format"]["type"] == "json_schema" for b in bodies)
        assert {r["reply_format"] for r in out} == {"json_schema"}


def test_batch_mode_with_a_refused_first_request_submits_no_batch(workdir, fake_openai, monkeypatch, capsys):
    tmp, rows, params = workdir
    fake_openai.reply = provider("gpt-4o-mini")  # gpt-4o is unknown here: 404
    api = batch_api(monkeypatch, fake_openai.reply)
    code = run("reflect_instruction", params, fake_openai.url, "gpt-4o", "--dataset", "alpaca", "--mode", "batch",
               "--batch-poll-interval", "0")
    assert code != 0 and len(fake_openai.requests) == 1 and api.created == []
    [line] = errors(capsys)
    assert "HTTP 404" in line and "does not exist" in line
    assert not (tmp / "data/alpaca/instruction.jsonl").exists()


def test_batch_mode_sends_a_first_request_that_failed_online_in_the_batch(workdir, fake_openai, monkeypatch):
    """A first request that fails online for good (a 500, not a refusal) is not cached: the batch
    carries it with the rest, and both of its sends are counted."""
    from unit.conftest import Failure

    tmp, rows, params = workdir
    fake_openai.failures = [Failure(500)]
    api = batch_api(monkeypatch, provider("gpt-4o-mini"))
    assert run("reflect_instruction", params, fake_openai.url, "gpt-4o-mini", "--dataset", "alpaca", "--mode", "batch",
               "--batch-poll-interval", "0", "--max-retries", "0") == 0
    [submitted] = [api.store[f] for f in api.created]
    assert len(submitted.splitlines()) == len(rows) and len(fake_openai.requests) == 1
    assert {r["status"] for r in read_jsonl(tmp / "data/alpaca/instruction.jsonl")} == {"ok"}
    metrics = json.loads((tmp / "metrics/alpaca/reflect_instruction.json").read_text())
    assert metrics["requests_sent"] == 1 + len(rows) and metrics["cache_hits"] == 0
