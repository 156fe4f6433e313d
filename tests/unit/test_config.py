from __future__ import annotations

import argparse
from dataclasses import FrozenInstanceError, dataclass

import pytest

from reflection_tuning.config import ConfigError, add_config_options, cli_overrides, from_dict, load_config


@dataclass(frozen=True)
class Cfg:
    name: str
    limit: int | None = None
    rate: float = 1.0
    flag: bool = False
    tasks: tuple | list = ()


def test_unknown_and_missing_keys_are_errors():
    with pytest.raises(ConfigError, match=r"unknown keys \['limt'\]"):
        from_dict(Cfg, {"name": "a", "limt": 3}, "datasets.alpaca")
    with pytest.raises(ConfigError, match="name"):
        from_dict(Cfg, {}, "x")


def test_config_is_frozen():
    cfg = from_dict(Cfg, {"name": "a"})
    with pytest.raises(FrozenInstanceError):
        cfg.name = "b"  # type: ignore[misc]


def test_dotted_section_with_cli_overrides_on_top():
    params = {"datasets": {"alpaca": {"name": "a", "limit": 16}}}
    parser = argparse.ArgumentParser()
    add_config_options(parser, Cfg)
    args = parser.parse_args(["--limit", "null", "--rate", "0.5", "--flag", "true", "--tasks", "[a, b]"])
    cfg = load_config(Cfg, params, "datasets.alpaca", cli_overrides(args, Cfg))
    assert cfg == Cfg(name="a", limit=None, rate=0.5, flag=True, tasks=["a", "b"])
    assert cli_overrides(parser.parse_args([]), Cfg) == {}
