"""reflect_instruction and reflect_response on 4 real Alpaca rows, against the REAL embedded
teacher (llama.cpp's server with the SmolLM2-135M-Instruct GGUF on CPU).

The 135M model rarely follows the reply format, so no status is expected in particular:
what is checked is the contract (one row per input row, an explicit status, provenance,
no original text in a row that is not ok, the cache, and the key never written).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from shipped import PARAMS, params_config

from reflection_tuning.infra.io import read_jsonl, write_jsonl
from reflection_tuning.stages import reflect_instruction, reflect_response

REPO = Path(__file__).resolve().parents[3]
SECRET = "sk-fake-never-written-9f8e7d"
STATUSES = {"ok", "parse_error", "truncated", "repetitive", "copy", "request_error", "cost_cap", "upstream_unusable"}
FIELDS = ["id", "variant", "instruction", "input", "output", "source", "critique", "status", "repetition",
          "teacher_model", "template_hash", "raw_reply", "finish_reason", "prompt_tokens", "completion_tokens",
          "attempts", "reply_format", "adaptations", "error"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, teacher_url, embedded_gguf, alpaca_rows):
    """Both stages via their CLI, then both again with ``--base-url embedded`` (all cached)."""
    tmp = tmp_path_factory.mktemp("reflect")
    rows = alpaca_rows[:4]
    write_jsonl(tmp / "original.jsonl", rows)
    mp = pytest.MonkeyPatch()
    mp.setenv("RT_FAKE_TEACHER_KEY", SECRET)

    def argv(stage: str, base_url: str) -> list[str]:
        return [
            "--params",
            str(PARAMS),
            "--base-url",
            base_url,
            "--model",
            str(embedded_gguf),
            "--api-key-env",
            "RT_FAKE_TEACHER_KEY",
            "--max-tokens",
            "128",
            "--timeout",
            "240",
            # no re-ask: these tests count requests, cache hits and prompt tokens of the
            # first asks (the re-ask has its own tests in tests/unit/llm/test_runner.py)
            "--reask",
            "0",
            # the same requests whether the server is named by its URL or as `embedded` (where the
            # bounds and llama.cpp's sampling fields are sent by default): the rerun below hits the cache
            "--length-bounds",
            "always",
            "--embedded-sampling",
            "null",
            "--cache-dir",
            str(tmp / "cache"),
            "--prompt-file",
            str(REPO / f"src/reflection_tuning/steps/{stage}.j2"),
            "--system-file",
            str(REPO / f"src/reflection_tuning/steps/{stage}.system.txt"),
        ]

    def both_stages(base_url: str, tag: str, response_base_url: str = "embedded") -> tuple[dict, dict]:
        assert reflect_instruction.main([
            *argv("reflect_instruction", base_url), "--input", str(tmp / "original.jsonl"),
            "--output", str(tmp / "instruction.jsonl"), "--metrics", str(tmp / f"mi_{tag}.json"),
        ]) == 0
        assert reflect_response.main([
            *argv("reflect_response", response_base_url), "--input", str(tmp / "original.jsonl"),
            "--instruction", str(tmp / "instruction.jsonl"), "--output-response", str(tmp / "response.jsonl"),
            "--output-both", str(tmp / "both.jsonl"), "--metrics", str(tmp / f"mr_{tag}.json"),
        ]) == 0
        return (json.loads((tmp / f"mi_{tag}.json").read_text()), json.loads((tmp / f"mr_{tag}.json").read_text()))

    try:
        # reflect_instruction talks to the module's server; reflect_response starts its own (base_url embedded)
        first = both_stages(teacher_url, "first")
        outputs = {name: read_jsonl(tmp / f"{name}.jsonl") for name in ("instruction", "response", "both")}
        # the rerun: the cache key has no base URL, so nothing is sent and no server is started
        second = both_stages("embedded", "second")
    finally:
        mp.undo()
    return {"dir": tmp, "rows": rows, "first": first, "second": second, "outputs": outputs}


def test_one_row_per_input_row_with_explicit_status(runs):
    ids = sorted(r["id"] for r in runs["rows"])
    for variant, out in runs["outputs"].items():
        assert sorted(r["id"] for r in out) == ids, variant
        for r in out:
            assert list(r) == FIELDS
            assert r["variant"] == variant and r["status"] in STATUSES
            assert r["teacher_model"] and len(r["template_hash"]) == 12 and r["source"] == "cherry_alpaca"
            if r["status"] == "ok":
                assert r["instruction"] and r["output"] and r["error"] is None and isinstance(r["critique"], str)
            else:
                assert r["instruction"] is None and r["input"] is None and r["output"] is None and r["error"]
            if r["status"] in {"ok", "parse_error", "truncated"}:
                assert r["raw_reply"] is not None and r["finish_reason"] and r["completion_tokens"] > 0
            if r["status"] == "truncated":
                assert r["finish_reason"] == "length" and r["completion_tokens"] == 128
    instruction = {r["id"]: r for r in runs["outputs"]["instruction"]}
    for r in runs["outputs"]["both"]:
        upstream_ok = instruction[r["id"]]["status"] == "ok"
        assert (r["status"] == "upstream_unusable") == (not upstream_ok)
    for r in runs["outputs"]["instruction"]:
        assert r["input"] in ("", None)


def test_metrics_count_every_row(runs):
    mi, mr = runs["first"]
    assert mi["rows_in"] == mi["rows_out"] == 4
    assert sum(mi[f"rows_{s}"] for s in STATUSES) == 4
    assert mi["requests_sent"] >= 4 and mi["completion_tokens"] > 0
    assert mr["rows_in"] == mr["response_rows_out"] == mr["both_rows_out"] == 4
    for prefix in ("response_", "both_"):
        assert sum(mr[f"{prefix}rows_{s}"] for s in STATUSES) == 4
    assert mr["both_rows_upstream_unusable"] == 4 - mi["rows_ok"]


def test_rerun_is_served_from_the_cache(runs):
    (mi1, mr1), (mi2, mr2) = runs["first"], runs["second"]
    assert (mi2["requests_sent"], mi2["cache_hits"]) == (0, 4)
    assert mr2["requests_sent"] == 0 and mr2["cache_hits"] == 4 + mi1["rows_ok"]
    assert mi2["completion_tokens"] == mi1["completion_tokens"] and mi2["completion_tokens_sent"] == 0
    assert {k: v for k, v in mr2.items() if "rows" in k} == {k: v for k, v in mr1.items() if "rows" in k}


def test_key_is_never_written(runs):
    files = [f for f in runs["dir"].rglob("*") if f.is_file()]
    assert any(f.suffix == ".jsonl" for f in files)
    for f in files:
        assert SECRET.encode() not in f.read_bytes(), f


def test_estimate_counts_what_the_server_counted(runs, embedded_gguf):
    """``reflection-tuning estimate`` with the teacher's tokenizer predicts the prompt tokens
    the real server reported, and prices only what the cache cannot answer."""
    import dataclasses

    from reflection_tuning.estimate import run as estimate
    from reflection_tuning.llm.config import EndpointConfig

    tmp = runs["dir"]
    prompts = [
        params_config(
            cls.Config, name,
            prompt_file=str(REPO / f"src/reflection_tuning/steps/{name}.j2"),
            system_file=str(REPO / f"src/reflection_tuning/steps/{name}.system.txt"),
        )
        for cls, name in ((reflect_instruction, "reflect_instruction"), (reflect_response, "reflect_response"))
    ]
    cfg = params_config(
        EndpointConfig,
        "teacher",
        model=str(embedded_gguf),
        max_tokens=128,
        reask=0,
        length_bounds="always",
        embedded_sampling=None,
        cache_dir=str(tmp / "cache"),
        price={"input": 0.15, "output": 0.60},
    )
    cached = estimate(cfg, *prompts, tmp / "original.jsonl", tmp / "instruction.jsonl")
    assert cached["token_count_method"] == "tokenizer" and not cached["both_assumed"]
    assert cached["total_to_send"] == 0 and cached["total_cost_usd_expected"] == 0.0

    fresh = estimate(dataclasses.replace(cfg, cache_dir=None), *prompts, tmp / "original.jsonl", None)
    reported = [r["prompt_tokens"] for r in runs["outputs"]["instruction"]]
    # the student's tokenizer and chat template against llama.cpp's own rendering of the GGUF's
    # template: a token or two a request apart (4 requests: 1957 against 1952)
    assert None not in reported and abs(fresh["reflect_instruction_prompt_tokens"] - sum(reported)) <= 2 * len(reported)
    assert fresh["both_assumed"] and fresh["reflect_response_requests"] == 8
    assert fresh["reflect_instruction_completion_tokens_expected"] == 4 * 128  # no cached replies: max_tokens
    assert fresh["total_cost_usd_max"] >= fresh["total_cost_usd_expected"] > 0
