"""The presets: the files a ``preset`` key names, and their layering over a section's values."""

from __future__ import annotations

import logging

import pytest

from reflection_tuning.infra.errors import ConfigError
from reflection_tuning.infra.preset import available_presets, layer, pipeline_preset_values, preset_values


def test_unknown_pipeline_preset():
    with pytest.raises(ConfigError, match=r"unknown pipeline preset 'refrence'; available: \[.*'reference'"):
        pipeline_preset_values("refrence", "finetune")
    with pytest.raises(ConfigError, match=r"finetune.preset: unknown preset 'nope'; available: \['paper'"):
        preset_values("finetune", "nope")
    assert "paper" in available_presets("finetune")


def test_layer_applies_the_pipeline_then_the_section_preset_and_warns_on_what_it_replaces(caplog):
    merged = {"epochs": 1, "batch_size": 4, "preset": None}
    with caplog.at_level(logging.WARNING):
        layer(merged, {"preset": "reference"}, "finetune", {})
    assert merged["preset"] == "paper" and merged["epochs"] == preset_values("finetune", "paper")["epochs"]
    assert merged["batch_size"] == 4  # not a preset key: left to params
    assert "finetune.preset=paper replaces the params values of epochs" in caplog.text
    untouched = {"epochs": 1, "preset": None}
    layer(untouched, {}, "finetune", {"preset": None})
    assert untouched == {"epochs": 1, "preset": None}
