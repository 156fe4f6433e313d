"""The command-line options of a params dataclass: one ``--<key>`` per field, parsed from text
by the field's type. :func:`reflection_tuning.config.parse` adds them and reads them back.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from typing import Any

import yaml

from reflection_tuning.paramdoc import describe, section_doc


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
