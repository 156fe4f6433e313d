"""Params sections as frozen dataclasses, and the CLI options generated from them.

A stage's ``main`` calls :func:`load_config`; its ``run`` only ever sees the dataclass.
Unknown keys are an error, so a typo in ``params.yaml`` never passes silently.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from reflection_tuning.errors import UserError

T = TypeVar("T")


class ConfigError(UserError, ValueError):
    """A params section does not match its dataclass."""


def read_params(path: str | Path) -> dict[str, Any]:
    """Read ``params.yaml``; a missing file reads as empty (a CLI run outside DVC)."""
    path = Path(path)
    if not path.exists():
        return {}
    with open(path, encoding="utf-8") as f:
        data = yaml.safe_load(f) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    return data


def from_dict(cls: type[T], data: dict[str, Any] | None, where: str = "") -> T:
    """Build dataclass ``cls`` from ``data``.

    Raises:
        ConfigError: an unknown key, or a missing required key. The message names the section.
    """
    data = dict(data or {})
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"params section {where or cls.__name__!r}: unknown keys {unknown}; allowed: {sorted(names)}")
    try:
        return cls(**data)
    except TypeError as e:
        raise ConfigError(f"params section {where or cls.__name__!r}: {e}") from e


def _base_type(tp: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [_base_type(a) for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
        # e.g. ``tuple | list``: parse the option as YAML; a plain string union stays a string
        return next((a for a in args if a in (list, tuple, dict)), str)
    if origin in (list, tuple, dict):
        return origin
    return tp


def _parse_value(tp: Any, text: str) -> Any:
    base = _base_type(tp)
    if text.lower() in ("null", "none") and (base is not str or type(None) in typing.get_args(tp)):
        return None
    if base is bool:
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise argparse.ArgumentTypeError(f"not a boolean: {text!r}")
    if base in (int, float, str):
        return base(text)
    # lists and mappings are given as JSON (or YAML flow style) on the command line
    return yaml.safe_load(text)


def add_config_options(parser: argparse.ArgumentParser, cls: type, prefix: str = "") -> None:
    """Add one ``--<field>`` option per dataclass field (``_`` becomes ``-``), default unset."""
    hints = typing.get_type_hints(cls)
    group = parser.add_argument_group(f"{prefix or cls.__name__} params (override params.yaml)")
    for f in dataclasses.fields(cls):
        flag = "--" + (prefix + "-" if prefix else "") + f.name.replace("_", "-")
        tp = hints[f.name]
        group.add_argument(
            flag,
            dest=f"{prefix}__{f.name}" if prefix else f.name,
            type=lambda s, tp=tp: _parse_value(tp, s),
            default=argparse.SUPPRESS,
            help=f"{_type_name(tp)}",
        )


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp).replace("typing.", ""))


def cli_overrides(args: argparse.Namespace, cls: type, prefix: str = "") -> dict[str, Any]:
    """The options the user actually gave on the command line for ``cls``."""
    out = {}
    for f in dataclasses.fields(cls):
        key = f"{prefix}__{f.name}" if prefix else f.name
        if hasattr(args, key):
            out[f.name] = getattr(args, key)
    return out


PRESETS_DIR = Path(__file__).resolve().parent / "presets"


def available_presets(section: str) -> list[str]:
    """The preset names of params section ``section`` (``presets/<section>/<name>.yaml``)."""
    return sorted(p.stem for p in (PRESETS_DIR / section).glob("*.yaml"))


def preset_values(section: str, name: str) -> dict[str, Any]:
    """The keys preset ``name`` sets in section ``section``.

    Raises:
        ConfigError: an unknown preset, or a preset file that is not a mapping (or sets ``preset``).
    """
    path = PRESETS_DIR / section / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"{section}.preset: unknown preset {name!r}; available: {available_presets(section)}")
    with open(path, encoding="utf-8") as f:
        values = yaml.safe_load(f) or {}
    if not isinstance(values, dict) or "preset" in values:
        raise ConfigError(f"{path}: a preset is a mapping of {section} keys (and cannot name another preset)")
    return values


def load_config(
    cls: type[T], params: dict[str, Any], section: str, overrides: dict[str, Any] | None = None
) -> T:
    """Section ``section`` of ``params`` (a dotted path), with CLI ``overrides`` on top.

    A section with a ``preset`` key (``finetune.preset: paper``) takes the preset's values
    over those in ``params``, and the CLI options over both: params.yaml lists every key,
    so a preset that gave way to it would never apply. A params value the preset replaces
    is logged as a warning.
    """
    node: Any = params
    for part in section.split("."):
        node = (node or {}).get(part) if isinstance(node, dict) else None
    merged = dict(node or {})
    overrides = overrides or {}
    preset = overrides.get("preset", merged.get("preset"))
    if preset:
        values = preset_values(section.split(".")[0], preset)
        replaced = sorted(k for k, v in values.items() if k in merged and merged[k] != v and k not in overrides)
        if replaced:
            logging.getLogger(__name__).warning(
                "%s.preset=%s replaces the params values of %s", section, preset, ", ".join(replaced))
        merged.update(values)
    merged.update(overrides)
    return from_dict(cls, merged, where=section)


def config_hash(cfg: Any) -> str:
    """A short stable hash of a config dataclass, for provenance fields."""
    import hashlib

    blob = json.dumps(dataclasses.asdict(cfg), sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]
