"""The shipped ``params.yaml``, for tests that build a stage's config: configs have no
defaults of their own, so a test starts from the values the pipeline runs with."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from reflection_tuning.infra.config import section_config

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[1]
PARAMS = REPO / "params.yaml"


def params_config(cls: type[T], section: str, **overrides: Any) -> T:
    """Section ``section`` of the shipped ``params.yaml`` as ``cls``, with ``overrides``."""
    return section_config(cls, section, PARAMS, **overrides)


def shipped_params(**sections: dict[str, Any]) -> dict[str, Any]:
    """The shipped ``params.yaml`` as a dict, each named section updated with the keys given
    (``shipped_params(finetune={"epochs": 2})``): a complete params file for a test to write."""
    import yaml

    params = yaml.safe_load(PARAMS.read_text(encoding="utf-8"))
    for name, values in sections.items():
        params[name] = {**(params.get(name) or {}), **values}
    return params


def write_params(path: Path, **sections: dict[str, Any]) -> Path:
    """:func:`shipped_params` written to ``path`` (YAML); returns ``path``."""
    import yaml

    path.write_text(yaml.safe_dump(shipped_params(**sections)), encoding="utf-8")
    return path


def link_prompt_files(workdir: Path) -> None:
    """The shipped prompt files (``params.yaml`` names them relative to the project, under ``src/``)
    seen from ``workdir``: a command run there finds the ``*_file`` keys it checks."""
    if not (workdir / "src").exists():
        (workdir / "src").symlink_to(REPO / "src", target_is_directory=True)
