"""``reflection-tuning estimate``: its declared paths and its user error, and the tokens and USD of
the requests the cache cannot answer, counted with the teacher's own tokenizer and chat template
when it is local (the tiny one here). The counts against a real server:
tests/integration/stages/test_reflect.py."""

from __future__ import annotations

import json

import pytest
from shipped import PARAMS, link_prompt_files, params_config

from reflection_tuning import cli
from reflection_tuning.estimate import estimate_requests, token_counter
from reflection_tuning.infra.io import write_jsonl
from reflection_tuning.llm.cache import Completion, ReplyCache, cache_key
from reflection_tuning.llm.config import EndpointConfig

BATCH = [[{"role": "system", "content": "You are a careful editor."},
          {"role": "user", "content": f"Improve the answer to question {n}."}] for n in range(3)]


def test_a_local_tokenizer_counts_the_chat_template(tiny_tokenizer):
    from transformers import AutoTokenizer

    method, count = token_counter(str(tiny_tokenizer))
    tok = AutoTokenizer.from_pretrained(tiny_tokenizer)
    text = tok.apply_chat_template(BATCH[0], tokenize=False, add_generation_prompt=True)
    assert method == "tokenizer" and count(BATCH[0]) == len(tok(text).input_ids)
    assert count(BATCH[0]) > sum(len(tok(m["content"]).input_ids) for m in BATCH[0])  # the template's tokens


def test_cached_requests_are_free_and_set_the_expected_reply_length(tmp_path):
    cfg = params_config(EndpointConfig, "teacher", model="m", base_url="embedded", max_tokens=100, reask=1,
                        cache_dir=str(tmp_path), price={"input": 1.0, "output": 2.0})
    cache = ReplyCache(tmp_path)
    cache.set(cache_key(cfg, BATCH[0], "h"), Completion("reply", "stop", 30, 40))
    try:
        got = estimate_requests(cfg, BATCH, "h", cache, count=lambda messages: 10)
    finally:
        cache.close()
    assert got == {"requests": 3, "cached": 1, "to_send": 2, "prompt_tokens": 20,
                   "completion_tokens_expected": 80,  # the cached reply's 40 tokens, twice
                   "completion_tokens_max": 100 * 2 * 2,  # max_tokens, every request re-asked once
                   "cost_usd_expected": pytest.approx((20 * 1.0 + 80 * 2.0) / 1e6),
                   "cost_usd_max": pytest.approx((40 * 1.0 + 400 * 2.0) / 1e6)}


def test_without_a_cache_or_a_price(tmp_path):
    cfg = params_config(EndpointConfig, "teacher", model="m", base_url="embedded", max_tokens=50, reask=0,
                        cache_dir=None, price=None)
    got = estimate_requests(cfg, BATCH, "h", ReplyCache(None), count=lambda messages: 7)
    assert (got["to_send"], got["completion_tokens_expected"], got["completion_tokens_max"]) == (3, 150, 150)
    assert got["cost_usd_expected"] is None and got["cost_usd_max"] is None


@pytest.mark.parametrize("dataset", [["--dataset=alpaca"], ["--dataset", "alpaca"]])
def test_no_fetched_rows_is_one_line_and_exit_2(dataset, tmp_path, monkeypatch, capfd):
    monkeypatch.chdir(tmp_path)
    link_prompt_files(tmp_path)
    assert cli.main(["estimate", *dataset, "--params", str(PARAMS)]) == 2
    err = capfd.readouterr().err
    assert "estimate: missing input data/alpaca/original.jsonl (--input); run fetch first (dvc repro" in err
    assert "Traceback" not in err


def test_explicit_input_without_dataset(alpaca_rows, tmp_path, monkeypatch, capsys):
    """No model directory and no tiktoken files offline: the bytes/4 count, every `both` assumed."""
    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "in.jsonl", alpaca_rows[:3])
    steps = PARAMS.parent / "src" / "reflection_tuning" / "steps"
    prompts = [f"--{role}-{key}-file={steps / f'reflect_{role}{ext}'}"
               for role in ("instruction", "response") for key, ext in (("prompt", ".j2"), ("system", ".system.txt"))]
    argv = ["estimate", "--params", str(PARAMS), "--input", "in.jsonl", "--output", "e.json", "--cache-dir", "null",
            "--model", "no/such/teacher", *prompts]
    assert cli.main(argv) == 0
    result = json.loads((tmp_path / "e.json").read_text())
    assert result["both_assumed"] and result["reflect_instruction_requests"] == 3
    assert result["reflect_response_requests"] == 6 and result["total_to_send"] == 9
    assert result["total_cost_usd_expected"] is None  # teacher.price is null in params
    assert "total_prompt_tokens" in capsys.readouterr().out


@pytest.mark.parametrize("reply_format", ["json_schema", "markers"])
def test_a_reply_the_stage_cached_is_counted_cached(tmp_path, reply_format):
    """The estimate looks a request up under the stage's own key: its template id and, with
    structured replies, its step's response_format."""
    from reflection_tuning.estimate import run
    from reflection_tuning.infra.io import write_jsonl
    from reflection_tuning.llm.step import request_format
    from reflection_tuning.rows import row_id
    from reflection_tuning.stages import reflect_instruction, reflect_response
    from reflection_tuning.steps.reflect_instruction import ReflectInstruction
    from reflection_tuning.steps.reflect_response import ReflectResponse

    cfg = params_config(EndpointConfig, "teacher", model="m", base_url="embedded", reply_format=reply_format,
                        cache_dir=str(tmp_path / "cache"))
    row = {"id": row_id("Name a colour.", "", "Red."), "instruction": "Name a colour.", "input": "", "output": "Red."}
    write_jsonl(tmp_path / "original.jsonl", [row])
    configs = [params_config(module.Config, module.__name__.rsplit(".", 1)[1],
                             **dict(zip(("prompt_file", "system_file"), map(str, cls.template_files()))))
               for module, cls in ((reflect_instruction, ReflectInstruction), (reflect_response, ReflectResponse))]
    step = ReflectInstruction.shipped(configs[0].checks(cfg.bounded))  # embedded: the prompt states the bounds
    cache = ReplyCache(cfg.cache_dir)
    cache.set(cache_key(cfg, step.format_input(row), step.template_hash, request_format(step, cfg)),
              Completion("{}", "stop", 30, 40))
    cache.close()
    assert (request_format(step, cfg) is None) == (reply_format == "markers")
    got = run(cfg, *configs, tmp_path / "original.jsonl", None)
    assert (got["reflect_instruction_cached"], got["reflect_instruction_to_send"]) == (1, 0)
