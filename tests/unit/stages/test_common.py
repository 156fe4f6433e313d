"""stages.common.resolve_paths: sidecars beside --output, defaults only with --dataset."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from reflection_tuning.stages.common import beside, resolve_paths

DEFAULTS = {
    "input": "data/{dataset}/original.jsonl",
    "output": "data/{dataset}/instruction.jsonl",
    "rejects": "data/{dataset}/rejects.jsonl",
    "metrics": "metrics/{dataset}/reflect_instruction.json",
    "plot": "metrics/{dataset}/plot.csv",
}


def _resolve(**given):
    parser = argparse.ArgumentParser()
    args = argparse.Namespace(**{k: None for k in DEFAULTS}, dataset=None)
    for k, v in given.items():
        setattr(args, k, v)
    return resolve_paths(parser, args, DEFAULTS)


def test_sidecars_go_beside_the_output():
    paths = _resolve(input=Path("in.jsonl"), output=Path("runs/out.jsonl"))
    assert paths["rejects"] == Path("runs/out.rejects.jsonl")
    assert paths["metrics"] == Path("runs/out.metrics.json")
    assert paths["plot"] == Path("runs/out.plot.csv")
    assert not any("cli" in p.parts or p.parts[0] in ("data", "metrics") for p in paths.values())


def test_an_explicit_sidecar_wins_and_the_dataset_fills_the_rest():
    paths = _resolve(output=Path("o.jsonl"), metrics=Path("m.json"), dataset="alpaca")
    assert paths["metrics"] == Path("m.json")
    assert paths["rejects"] == Path("o.rejects.jsonl")
    assert paths["input"] == Path("data/alpaca/original.jsonl")  # an input is never a sidecar
    assert _resolve(dataset="alpaca")["metrics"] == Path("metrics/alpaca/reflect_instruction.json")


def test_without_dataset_an_input_is_required():
    with pytest.raises(SystemExit):
        _resolve(output=Path("o.jsonl"))


def test_beside_names():
    assert beside(Path("a/out.jsonl"), "metrics", "metrics/x/fetch.json") == Path("a/out.metrics.json")
    assert beside(Path("models/sft"), "loss_plot", "m/x.csv") == Path("models/sft.loss_plot.csv")
    assert beside(Path("answers.jsonl"), "alpaca_eval_dir", "data/x/alpaca_eval") == Path("answers.alpaca_eval")
