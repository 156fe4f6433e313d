"""The command-line options of a params dataclass: parsed by type, and only those given override."""

from __future__ import annotations

import argparse

from reflection_tuning.config import load_config
from reflection_tuning.options import add_config_options, cli_overrides, literal_choices

from .test_config import Cfg


def test_options_are_parsed_by_type_and_only_given_ones_override():
    params = {"datasets": {"alpaca": {"name": "a", "limit": 16}}}
    parser = argparse.ArgumentParser()
    add_config_options(parser, Cfg)
    args = parser.parse_args(["--limit", "null", "--rate", "0.5", "--flag", "true", "--tasks", "[a, b]"])
    cfg = load_config(Cfg, params, "datasets.alpaca", cli_overrides(args, Cfg))
    assert cfg == Cfg(name="a", limit=None, rate=0.5, flag=True, tasks=["a", "b"])
    assert cli_overrides(parser.parse_args([]), Cfg) == {}


def test_literal_choices():
    from typing import Literal

    assert literal_choices(Literal["a", "b"] | None) == ("a", "b", None) and literal_choices(int) == ()
