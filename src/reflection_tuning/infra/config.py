"""Params sections as frozen dataclasses: loaded from ``params.yaml`` and the command line.

A command declares the sections it reads (:class:`Section`); :func:`parse` adds their
options (one ``--<key>`` per field, parsed from text by the field's type:
:func:`add_config_options`), parses the command line and loads every section
(:func:`load_config`: params values, presets, options), in one call. A stage's ``run``
only ever sees the dataclasses. Unknown keys are an error, so a typo in ``params.yaml``
never passes silently.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

from reflection_tuning.infra.errors import ConfigError
from reflection_tuning.infra.paramdoc import describe, section_doc
from reflection_tuning.infra.preset import layer

T = TypeVar("T")


def literal_choices(tp: Any) -> tuple[Any, ...]:
    """The values a ``Literal[...]`` field (or ``Literal[...] | None``) accepts; ``()`` for other types."""
    if typing.get_origin(tp) is typing.Literal:
        return typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        found = [c for a in typing.get_args(tp) for c in literal_choices(a)]
        if found and type(None) in typing.get_args(tp):
            found.append(None)
        return tuple(found)
    return ()


def _base_type(tp: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        return type(typing.get_args(tp)[0])
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


def add_config_options(parser: argparse.ArgumentParser, cls: type, prefix: str = "",
                       section: str | None = None) -> None:
    """Add one ``--<field>`` option per dataclass field (``_`` becomes ``-``), default unset.

    ``section``: the params section (``teacher``, ``datasets.{dataset}``). The options go in a
    group titled by it (``teacher:``) under the section's description, and each one's help is
    its key's description (:func:`paramdoc.describe`, the packaged text of ``params.yaml``'s
    comments), then its choices (a ``Literal`` field) or its type, in brackets.
    """
    hints = typing.get_type_hints(cls)
    group = _group(parser, cls, prefix, section)
    for f in dataclasses.fields(cls):
        flag = "--" + (prefix + "-" if prefix else "") + f.name.replace("_", "-")
        tp = hints[f.name]
        kind = " | ".join("null" if c is None else str(c) for c in literal_choices(tp)) or _type_name(tp)
        meaning = describe(section, f.name).replace("%", "%%") if section is not None else ""
        group.add_argument(
            flag,
            dest=f"{prefix}__{f.name}" if prefix else f.name,
            type=lambda s, tp=tp: _parse_value(tp, s),
            default=argparse.SUPPRESS,
            help=f"{meaning} [{kind}]" if meaning else kind,
        )


def _group(parser: argparse.ArgumentParser, cls: type, prefix: str, section: str | None) -> Any:
    """The option group of one section, titled ``teacher:`` (with a prefix: ``reflect_instruction
    (as --instruction-<key>):``) and described by the section's comment."""
    if section is None:
        return parser.add_argument_group(f"{prefix or cls.__name__} params (override params.yaml)")
    title = section.replace("{dataset}", "<dataset>")  # argparse adds the colon
    if prefix:
        title += f" (as --{prefix}-<key>)"
    about = section_doc(section)
    note = "Each option overrides the key in params.yaml."
    return parser.add_argument_group(title, f"{about} {note}" if about else note)


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
    layer(merged, params, section, overrides)
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
    params = read_params(args.params) if sections else None  # a command without sections has no --params
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
