from __future__ import annotations

import argparse
from dataclasses import FrozenInstanceError, dataclass

import pytest
from shipped import shipped_params

from reflection_tuning.infra.config import (
    ConfigError,
    Section,
    add_config_options,
    cli_overrides,
    from_dict,
    literal_choices,
    load_config,
    parse,
)


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


def test_one_parse_gives_the_options_the_configs_and_the_overrides(tmp_path):
    """``parse``: the section's options added, the command line read, the params file read and
    the section loaded (``{dataset}`` from ``--dataset``), the keys the options set beside it."""
    import yaml

    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"datasets": {"alpaca": {"name": "a", "limit": 16}}}))
    parser = argparse.ArgumentParser()
    parser.add_argument("--params")
    parser.add_argument("--dataset")
    seen = []
    parsed = parse(parser, [Section(Cfg, "datasets.{dataset}")], ["--params", str(tmp_path / "params.yaml"),
                   "--dataset", "alpaca", "--rate", "0.5", "--tasks", "[a, b]"], on_args=seen.append)
    assert parsed.configs == (Cfg(name="a", limit=16, rate=0.5, tasks=["a", "b"]),)
    assert (
        parsed.overrides == ({"rate": 0.5, "tasks": ["a", "b"]},) and parsed.params["datasets"]["alpaca"]["limit"] == 16
    )
    assert seen == [parsed.args]
    with pytest.raises(SystemExit):  # a {dataset} section without --dataset
        parse(argparse.ArgumentParser(parents=[], add_help=False), [Section(Cfg, "datasets.{dataset}")], [],
              on_args=lambda a: setattr(a, "params", str(tmp_path / "params.yaml")) or setattr(a, "dataset", None))


def _reference_sections() -> dict[str, type]:
    """Every params section the `reference` preset sets, with the dataclass that reads it."""
    from reflection_tuning.llm.config import EndpointConfig
    from reflection_tuning.stages import evaluate, finetune, generate, score

    return {"teacher": EndpointConfig, "score": score.Config, "finetune": finetune.Config,
            "evaluate": evaluate.Config, "generate": generate.Config, "judge": EndpointConfig}


def test_reference_preset_sets_the_reference_choices_in_every_section():
    import yaml

    from reflection_tuning.infra.preset import PRESETS_DIR, available_pipeline_presets

    assert "reference" in available_pipeline_presets()
    sections = _reference_sections()
    written = yaml.safe_load((PRESETS_DIR / "reference.yaml").read_text())
    assert set(written) == set(sections)  # every section it names is read by a stage (a typo would be lost)
    params = shipped_params(teacher={"max_tokens": 384}, score={"max_length": 1024},
                            finetune={"epochs": 1, "batch_size": 4}, generate={"limit": 4, "max_new_tokens": 64},
                            judge={"max_tokens": 128}, evaluate={"limit": 10})
    params["preset"] = "reference"
    cfgs = {name: load_config(cls, params, name) for name, cls in sections.items()}
    assert cfgs["teacher"].max_tokens == 2048 and cfgs["teacher"].temperature == 0.0
    assert cfgs["score"].template == "vicuna" and cfgs["score"].max_length == 2048
    # the finetune section's own `paper` preset, named by the pipeline preset, applies too
    ft = cfgs["finetune"]
    assert (ft.preset, ft.epochs, ft.global_batch_size, ft.max_length, ft.warmup_ratio) == ("paper", 3, 128, 2048, 0.03)
    assert ft.batch_size == 4  # hardware-dependent: left to params
    assert cfgs["evaluate"].limit is None and cfgs["evaluate"].num_fewshot["rt_arc_challenge"] == 25
    assert cfgs["generate"].limit is None and cfgs["generate"].max_new_tokens == 1024
    assert cfgs["judge"].max_tokens == 1024


def test_pipeline_preset_layers(caplog):
    """params < pipeline preset < section preset < CLI; untouched sections stay as they are."""
    from reflection_tuning.stages import finetune

    params = {**shipped_params(finetune={"epochs": 1}), "preset": "reference", "datasets": {"alpaca": {"name": "a"}}}
    assert load_config(Cfg, params, "datasets.alpaca") == Cfg(name="a")
    assert load_config(finetune.Config, params, "finetune", {"epochs": 2}).epochs == 2
    assert "epochs" not in caplog.text  # a value the CLI gives is not replaced, so not warned about
    assert load_config(finetune.Config, params, "finetune").epochs == 3
    assert "finetune.preset=paper replaces the params values of epochs" in caplog.text
    # the CLI can set the section preset back to none under the pipeline preset
    cfg = load_config(finetune.Config, params, "finetune", {"preset": None})
    assert cfg.preset is None and cfg.epochs == 1
    assert load_config(finetune.Config, {**params, "preset": None}, "finetune").epochs == 1


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
