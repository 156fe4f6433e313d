"""Params sections as frozen dataclasses, and the CLI options generated from them.

A command declares the sections it reads (:class:`Section`); :func:`parse` adds their
options, parses the command line and loads every section, in one call. A stage's ``run``
only ever sees the dataclasses. Unknown keys are an error, so a typo in ``params.yaml``
never passes silently.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

from reflection_tuning.errors import UserError
from reflection_tuning.options import add_config_options, cli_overrides, literal_choices

T = TypeVar("T")


class ConfigError(UserError, ValueError):
    """A params section does not match its dataclass."""


def read_params(path: str | Path) -> dict[str, Any] | None:
    """Read ``params.yaml``; ``None`` when the file is missing (then every key must come from options).

    Raises:
        ConfigError: the file is not a YAML mapping.
    """
    path = Path(path)
    if not path.exists():
        return None
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
    where = where or cls.__name__
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"params section {where!r}: unknown keys {unknown}; allowed: {sorted(fields)}")
    missing = [n for n, f in fields.items() if n not in data and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ConfigError(f"params section {where!r}: missing keys {missing}")
    hints = typing.get_type_hints(cls)
    for name, value in data.items():
        choices = literal_choices(hints[name])
        if choices and value not in choices:
            raise ConfigError(f"params section {where!r}: {name} is {value!r}; expected one of {list(choices)}")
    try:
        return cls(**data)
    except TypeError as e:
        raise ConfigError(f"params section {where!r}: {e}") from e
    except ConfigError as e:  # a value check of the dataclass: name the section when it does not
        if str(e).startswith(where.split(".")[0]):
            raise
        raise ConfigError(f"{where}: {e}") from e


PRESETS_DIR = Path(__file__).resolve().parent / "presets"
# The top-level params key naming a pipeline preset: ``presets/<name>.yaml``, one mapping per section.
PIPELINE_PRESET_KEY = "preset"


def available_presets(section: str) -> list[str]:
    """The preset names of params section ``section`` (``presets/<section>/<name>.yaml``)."""
    return sorted(p.stem for p in (PRESETS_DIR / section).glob("*.yaml"))


def available_pipeline_presets() -> list[str]:
    """The pipeline preset names (``presets/<name>.yaml``), for the top-level ``preset`` key."""
    return sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))


def _read_mapping(path: Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        values = yaml.safe_load(f) or {}
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: a preset is a mapping")
    return values


def preset_values(section: str, name: str) -> dict[str, Any]:
    """The keys preset ``name`` sets in section ``section``.

    Raises:
        ConfigError: an unknown preset, or a preset file that is not a mapping (or sets ``preset``).
    """
    path = PRESETS_DIR / section / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"{section}.preset: unknown preset {name!r}; available: {available_presets(section)}")
    values = _read_mapping(path)
    if "preset" in values:
        raise ConfigError(f"{path}: a preset is a mapping of {section} keys (and cannot name another preset)")
    return values


def pipeline_preset_values(name: str, section: str) -> dict[str, Any]:
    """The keys pipeline preset ``name`` (``presets/<name>.yaml``) sets in section ``section``.

    A pipeline preset may set a section's own ``preset`` key (``finetune: {preset: paper}``),
    which :func:`load_config` then applies: one file per set of values, no copies.

    Returns:
        The section's mapping, ``{}`` when the preset leaves the section alone.
    Raises:
        ConfigError: an unknown preset, or a file (or a section of it) that is not a mapping.
    """
    path = PRESETS_DIR / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"{PIPELINE_PRESET_KEY}: unknown pipeline preset {name!r}; "
                          f"available: {available_pipeline_presets()}")
    values = _read_mapping(path).get(section) or {}
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: section {section!r} must be a mapping of its keys")
    return values


def _apply(merged: dict[str, Any], values: dict[str, Any], overrides: dict[str, Any], what: str) -> None:
    replaced = sorted(k for k, v in values.items() if k in merged and merged[k] != v and k not in overrides)
    if replaced:
        logging.getLogger(__name__).warning("%s replaces the params values of %s", what, ", ".join(replaced))
    merged.update(values)


def load_config(
    cls: type[T], params: dict[str, Any], section: str, overrides: dict[str, Any] | None = None
) -> T:
    """Section ``section`` of ``params`` (a dotted path), with CLI ``overrides`` on top.

    Layers, each over the one before: the params values; the pipeline preset named by the
    top-level ``preset`` key (``preset: reference`` reads this section's mapping in
    ``presets/reference.yaml``); the section preset named by the section's ``preset`` key
    (``finetune.preset: paper`` reads ``presets/finetune/paper.yaml``; the pipeline preset
    may set it); the CLI options. A preset wins over params.yaml because params.yaml lists
    every key, so a preset that gave way to it would never apply. A params value a preset
    replaces is logged as a warning.

    Raises:
        ConfigError: an unknown preset or key (see :func:`from_dict`).
    """
    node: Any = params
    for part in section.split("."):
        node = (node or {}).get(part) if isinstance(node, dict) else None
    merged = dict(node or {})
    overrides = overrides or {}
    top = section.split(".")[0]
    pipeline = params.get(PIPELINE_PRESET_KEY) if isinstance(params, dict) else None
    if pipeline:
        _apply(merged, pipeline_preset_values(pipeline, top), overrides, f"{PIPELINE_PRESET_KEY}={pipeline}")
    preset = overrides.get("preset", merged.get("preset"))
    if preset:
        _apply(merged, preset_values(top, preset), overrides, f"{section}.preset={preset}")
    merged.update(overrides)
    return from_dict(cls, merged, where=section)


def section_config(cls: type[T], section: str, params_file: str | Path = "params.yaml", **overrides: Any) -> T:
    """Section ``section`` of ``params_file`` as ``cls``, with ``overrides`` on top: a stage's
    config outside its command (a notebook, a test, a benchmark), with the shipped values.

    Raises:
        ConfigError: the file is missing, or the section does not match ``cls``.
    """
    params = read_params(params_file)
    if params is None:
        raise ConfigError(f"params file {params_file} not found")
    return load_config(cls, params, section, overrides)


@dataclass(frozen=True)
class Section:
    """One params section a command reads: its dataclass, its dotted name, and its CLI option prefix.

    ``{dataset}`` in ``name`` is the ``--dataset`` value. With ``standalone``, a run without
    ``--dataset`` takes the section from the command line alone (``fetch --source …``).
    """

    cls: type
    name: str
    prefix: str = ""
    standalone: bool = False


@dataclass(frozen=True)
class Parsed:
    """A parsed command line: the options, the params file's contents (``{}`` when there is
    none), one config per section, and per section the keys the options set."""

    args: argparse.Namespace
    params: dict[str, Any]
    configs: tuple[Any, ...]
    overrides: tuple[dict[str, Any], ...]


def parse(parser: argparse.ArgumentParser, sections: Sequence[Section], argv: list[str] | None,
          on_args: Callable[[argparse.Namespace], None] | None = None) -> Parsed:
    """Add one option per key of every section to ``parser``, parse ``argv``, read the params
    file (``--params``) and load every section (:func:`load_config`) with its options on top.

    ``parser`` has ``--params`` and ``--dataset``; ``on_args`` is called with the options
    before any section is loaded (a command sets up logging there, so the preset warnings
    come formatted).

    Raises:
        SystemExit: bad options, or a section named after ``{dataset}`` without ``--dataset``.
        ConfigError: the params file is missing and the options do not give every key, or a
            section does not match its dataclass.
    """
    for s in sections:
        add_config_options(parser, s.cls, s.prefix, s.name)
    args = parser.parse_args(argv)
    if on_args is not None:
        on_args(args)
    params = read_params(args.params)
    overrides = tuple(cli_overrides(args, s.cls, s.prefix) for s in sections)
    configs = tuple(_load(parser, args, s, params, o) for s, o in zip(sections, overrides))
    return Parsed(args, params or {}, configs, overrides)


def _load(parser: argparse.ArgumentParser, args: argparse.Namespace, s: Section, params: dict[str, Any] | None,
          overrides: dict[str, Any]) -> Any:
    name = s.name
    if "{dataset}" in name:
        if args.dataset:
            name = name.format(dataset=args.dataset)
        elif s.standalone:
            try:
                return load_config(s.cls, {}, "command line", overrides)
            except ConfigError as e:
                opt = s.prefix + "-" if s.prefix else ""
                missing = [f"--{opt}{f.name.replace('_', '-')}" for f in dataclasses.fields(s.cls)
                           if f.name not in overrides]
                if not missing:
                    raise
                raise ConfigError(f"without --dataset, every key of a {s.name.split('.')[0]} entry is an "
                                  f"option: missing keys {missing} (or pass --dataset K)") from e
        else:
            parser.error("--dataset is required for this command")
    if params is None:
        try:
            return load_config(s.cls, {}, name, overrides)
        except ConfigError as e:
            raise ConfigError(f"params file {args.params} not found and the options do not give every "
                              f"key ({e}); run in the project directory or pass --params") from None
    return load_config(s.cls, params, name, overrides)
