"""The presets: named sets of params values (``presets/``) that a ``preset`` key lays over a section.

A pipeline preset (the top-level ``preset`` key: ``presets/<name>.yaml``, one mapping per
section) and a section preset (a section's ``preset`` key: ``presets/<section>/<name>.yaml``).
:func:`layer` applies both to one section's values; :func:`reflection_tuning.infra.config.load_config`
calls it between the params values and the command-line options.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import yaml

from reflection_tuning.infra.errors import ConfigError

PRESETS_DIR = Path(__file__).resolve().parents[1] / "presets"  # package data, beside infra/
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
    which :func:`layer` then applies: one file per set of values, no copies.

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


def layer(merged: dict[str, Any], params: dict[str, Any], section: str, overrides: dict[str, Any]) -> None:
    """Lay the presets over ``merged``, the values of ``section`` (a dotted path) in ``params``:
    the pipeline preset named by the top-level ``preset`` key, then the section preset named by
    the section's ``preset`` key (which the pipeline preset or ``overrides`` may set). A params
    value a preset replaces is logged as a warning, unless ``overrides`` (the options) sets it.

    Raises:
        ConfigError: an unknown preset, or a preset file that is not a mapping.
    """
    top = section.split(".")[0]
    pipeline = params.get(PIPELINE_PRESET_KEY) if isinstance(params, dict) else None
    if pipeline:
        _apply(merged, pipeline_preset_values(pipeline, top), overrides, f"{PIPELINE_PRESET_KEY}={pipeline}")
    preset = overrides.get("preset", merged.get("preset"))
    if preset:
        _apply(merged, preset_values(top, preset), overrides, f"{section}.preset={preset}")
