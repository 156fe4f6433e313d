"""The shipped params.yaml is complete: every section a command reads loads from it with no
missing and no unknown key (configs have no defaults of their own), and it holds nothing
that no command reads."""

from __future__ import annotations

import dataclasses

import pytest
import yaml
from shipped import PARAMS

from reflection_tuning.infra.command import COMMANDS, declaration
from reflection_tuning.infra.config import load_config, read_params
from reflection_tuning.infra.preset import (
    PIPELINE_PRESET_KEY,
    available_pipeline_presets,
    pipeline_preset_values,
    preset_values,
)


def declarations():
    return [declaration(c) for c in COMMANDS]


def sections(params: dict) -> list[tuple[type, str]]:
    """(dataclass, section name) for every section read, one per dataset for ``datasets.{dataset}``."""
    out = []
    for decl in declarations():
        for s in decl.sections:
            names = [s.name.format(dataset=k) for k in params["datasets"]] if "{dataset}" in s.name else [s.name]
            out += [(s.cls, n) for n in names]
    return out


PARAMS_DICT = read_params(PARAMS)


def section_values(params: dict, name: str) -> dict:
    node = params
    for part in name.split("."):
        node = node[part]
    return node


def loaded(cfg) -> dict:
    """A config's values as params.yaml writes them (a nested config as its mapping)."""
    return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}


@pytest.mark.parametrize("cls,name", sections(PARAMS_DICT), ids=lambda v: v if isinstance(v, str) else "")
def test_every_section_loads_with_no_missing_or_unknown_key(cls, name):
    """Each key of the section is a field and each field is a key, and the value loaded is the
    file's, or the section preset's where the file names one (``finetune.preset: paper``)."""
    cfg = load_config(cls, PARAMS_DICT, name)  # raises ConfigError naming the keys
    written = section_values(PARAMS_DICT, name)
    preset = written.get("preset")
    expected = {**written, **(preset_values(name.split(".")[0], preset) if preset else {})}
    assert isinstance(cfg, cls) and loaded(cfg) == expected


@pytest.mark.parametrize("preset", available_pipeline_presets())
def test_every_section_loads_under_each_pipeline_preset(preset):
    """Every key a pipeline preset sets is the value loaded (or, for a section preset the
    pipeline preset names, that preset's value); every other key is params.yaml's."""
    params = {**PARAMS_DICT, PIPELINE_PRESET_KEY: preset}
    changed = 0
    for cls, name in sections(params):
        cfg = loaded(load_config(cls, params, name))
        top = name.split(".")[0]
        layered = {**section_values(PARAMS_DICT, name), **pipeline_preset_values(preset, top)}
        if layered.get("preset"):
            layered.update(preset_values(top, layered["preset"]))
        assert cfg == layered, name
        changed += cfg != section_values(PARAMS_DICT, name)
    assert changed, f"pipeline preset {preset} changes no section"


def test_no_top_level_key_is_left_unread():
    read = {name.split(".")[0] for _, name in sections(PARAMS_DICT)} | {PIPELINE_PRESET_KEY}
    assert set(PARAMS_DICT) == read


def test_a_missing_key_and_an_unknown_key_fail(tmp_path):
    from reflection_tuning.infra.config import ConfigError

    cls, name = next((c, n) for c, n in sections(PARAMS_DICT) if n == "select")
    broken = yaml.safe_load(PARAMS.read_text())
    broken["select"].pop("seed")
    with pytest.raises(ConfigError, match=r"missing keys \['seed'\]"):
        load_config(cls, broken, name)
    broken["select"].update(seed=0, sead=1)
    with pytest.raises(ConfigError, match="unknown keys"):
        load_config(cls, broken, name)
