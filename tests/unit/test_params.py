"""The shipped params.yaml is complete: every section a command reads loads from it with no
missing and no unknown key (configs have no defaults of their own), and it holds nothing
that no command reads."""

from __future__ import annotations

import importlib

import pytest
import yaml

from reflection_tuning.config import PIPELINE_PRESET_KEY, available_pipeline_presets, load_config, read_params
from reflection_tuning.stages import COMMANDS
from shipped import PARAMS

# Commands outside stages/ that read params sections through a Stage declaration.
TOOL_MODULES = ("reflection_tuning.teacher.compress", "reflection_tuning.estimate", "reflection_tuning.hub")


def declarations():
    modules = [f"reflection_tuning.stages.{c}" for c in COMMANDS] + list(TOOL_MODULES)
    return [importlib.import_module(m).STAGE for m in modules]


def sections(params: dict) -> list[tuple[type, str]]:
    """(dataclass, section name) for every section read, one per dataset for ``datasets.{dataset}``."""
    out = []
    for decl in declarations():
        for s in decl.sections:
            names = [s.name.format(dataset=k) for k in params["datasets"]] if "{dataset}" in s.name else [s.name]
            out += [(s.cls, n) for n in names]
    return out


PARAMS_DICT = read_params(PARAMS)


@pytest.mark.parametrize("cls,name", sections(PARAMS_DICT), ids=lambda v: v if isinstance(v, str) else "")
def test_every_section_loads_with_no_missing_or_unknown_key(cls, name):
    load_config(cls, PARAMS_DICT, name)  # raises ConfigError naming the keys


@pytest.mark.parametrize("preset", available_pipeline_presets())
def test_every_section_loads_under_each_pipeline_preset(preset):
    params = {**PARAMS_DICT, PIPELINE_PRESET_KEY: preset}
    for cls, name in sections(params):
        load_config(cls, params, name)


def test_no_top_level_key_is_left_unread():
    read = {name.split(".")[0] for _, name in sections(PARAMS_DICT)} | {PIPELINE_PRESET_KEY}
    assert set(PARAMS_DICT) == read


def test_a_missing_key_and_an_unknown_key_fail(tmp_path):
    from reflection_tuning.config import ConfigError

    cls, name = next((c, n) for c, n in sections(PARAMS_DICT) if n == "select")
    broken = yaml.safe_load(PARAMS.read_text())
    broken["select"].pop("seed")
    with pytest.raises(ConfigError, match=r"missing keys \['seed'\]"):
        load_config(cls, broken, name)
    broken["select"].update(seed=0, sead=1)
    with pytest.raises(ConfigError, match="unknown keys"):
        load_config(cls, broken, name)
