"""The shipped ``params.yaml``, for tests that build a stage's config: configs have no
defaults of their own, so a test starts from the values the pipeline runs with."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from reflection_tuning.config import section_config

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[1]
PARAMS = REPO / "params.yaml"


def params_config(cls: type[T], section: str, **overrides: Any) -> T:
    """Section ``section`` of the shipped ``params.yaml`` as ``cls``, with ``overrides``."""
    return section_config(cls, section, PARAMS, **overrides)
