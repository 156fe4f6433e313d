"""dvc.yaml agrees with the stage declarations (``STAGE`` in each ``stages/<name>.py``).

The paths of a stage are declared once, in its module; ``dvc.yaml`` repeats them because
DVC needs them there. This test is what keeps the two from drifting apart:

- the stages of ``dvc.yaml`` are :data:`reflection_tuning.infra.command.STAGES`;
- a stage's outs, metrics and plots are exactly its declared outputs (``${key}`` = ``{dataset}``),
  where a declared directory that DVC reads in parts (a DVCLive directory: its ``metrics.json``
  a metric, its ``plots/metrics`` a plot) is covered by the entries under it;
- its deps hold every declared input, every ``*_file``/``*_dir`` key of the sections it reads
  (``${section.key}``; ``cache_dir`` is outside the outs on purpose), and every module of the
  package that it imports, directly or not (an AST walk of its import closure);
- its params hold every section it reads, and ``preset`` when a preset can set one of them.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import re
from pathlib import Path

import pytest
import yaml

from reflection_tuning.infra.command import STAGES
from reflection_tuning.infra.preset import PRESETS_DIR

REPO = Path(__file__).resolve().parents[3]
PKG = REPO / "src" / "reflection_tuning"
DVC = yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))
VARS = {k: v for d in DVC.get("vars", []) for k, v in d.items()}
# Files a stage reads as data, not code, whose dep is a directory: they hold no module.
NOT_MODULES = {"presets", "tasks"}
# The --help text (generated from params.yaml's comments, which are not params values either):
# package data outside infra/, so that regenerating it reruns no stage.
HELP_TEXT = PKG / "paramdoc.json"


def _entries(items) -> list[str]:
    """Paths of a dvc.yaml list (``- path`` or ``- path: {options}``)."""
    return [next(iter(i)) if isinstance(i, dict) else i for i in items or []]


def _template(path: str) -> str:
    """A dvc.yaml path as a declaration template: vars filled in, ``${key}`` -> ``{dataset}``."""
    path = path.replace("${key}", "{dataset}")
    return re.sub(r"\$\{(\w+)\}", lambda m: str(VARS.get(m.group(1), m.group(0))), path)


def _stage(name: str) -> dict:
    stage = DVC["stages"][name]
    return stage.get("do", stage)


def _module_file(name: str) -> Path | None:
    rel = name.split(".")[1:]
    for cand in (PKG.joinpath(*rel).with_suffix(".py"), PKG.joinpath(*rel, "__init__.py")):
        if cand.is_file():
            return cand
    return None


def import_closure(module: str) -> set[Path]:
    """Every file of the package that importing ``module`` may run: its imports, theirs, and
    the ``__init__.py`` of each package on the way (imports inside functions count too)."""
    seen: set[Path] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        parts = name.split(".")
        for i in range(2, len(parts) + 1):  # the packages on the way, then the module
            path = _module_file(".".join(parts[:i]))
            if path is None or path in seen:
                continue
            seen.add(path)
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    todo += [a.name for a in node.names if a.name.startswith("reflection_tuning.")]
                elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("reflection_tuning"):
                    todo.append(node.module)
                    todo += [f"{node.module}.{a.name}" for a in node.names if _module_file(f"{node.module}.{a.name}")]
    return seen


def _covered(path: Path, deps: list[str]) -> bool:
    rel = path.relative_to(REPO).as_posix()
    return any(rel == d or rel.startswith(d.rstrip("/") + "/") for d in deps)


def _runs_code(path: Path) -> bool:
    """False for a package ``__init__`` that only holds a docstring and constants."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return path.name != "__init__.py" or any(
        isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom)) for n in tree.body)


def _declaration(name: str):
    return importlib.import_module(f"reflection_tuning.stages.{name}").STAGE


def test_the_stages_of_dvc_yaml_are_the_declared_stages():
    assert list(DVC["stages"]) == list(STAGES)
    for name in STAGES:
        assert _declaration(name).name == name
        assert ("foreach" in DVC["stages"][name]) == _declaration(name).dataset, name


@pytest.mark.parametrize("name", STAGES)
def test_outs_are_the_declared_outputs(name):
    stage = _stage(name)
    outs = {_template(p) for key in ("outs", "metrics", "plots") for p in _entries(stage.get(key))}
    declared = {spec.template for key, spec in _declaration(name).paths().items() if key in _declaration(name).outputs}

    def under(path: str, directory: str) -> bool:
        return path.startswith(directory + "/")

    assert {o for o in outs if o not in declared and not any(under(o, d) for d in declared)} == set(), \
        "dvc.yaml outs that the stage does not declare"
    assert {d for d in declared if d not in outs and not any(under(o, d) for o in outs)} == set(), \
        "declared outputs missing from dvc.yaml"


@pytest.mark.parametrize("name", STAGES)
def test_deps_cover_inputs_config_files_and_imported_modules(name):
    stage, decl = _stage(name), _declaration(name)
    deps = [_template(d) for d in _entries(stage.get("deps"))]
    inputs = {spec.template for key, spec in decl.paths().items() if key in decl.inputs}
    # an input directory (report's metrics/{dataset}) is covered by the files under it that the stage reads
    missing_inputs = sorted(i for i in inputs if i not in deps and not any(d.startswith(i + "/") for d in deps))
    assert not missing_inputs, f"declared inputs missing from the deps: {missing_inputs}"
    for section in decl.sections:
        for f in dataclasses.fields(section.cls):
            if f.name.endswith(("_file", "_dir")) and f.name != "cache_dir":
                dep = f"${{{section.name}.{f.name}}}"
                assert dep in deps, f"{dep} (a file the stage reads) is not a dep"
    modules = {p for p in import_closure(f"reflection_tuning.stages.{name}") if _runs_code(p)}
    missing = sorted(p.relative_to(REPO).as_posix() for p in modules if not _covered(p, deps))
    assert not missing, f"modules the stage imports but dvc.yaml does not list as deps: {missing}"
    imported = {p.relative_to(REPO).as_posix() for p in modules}
    extra = sorted(d for d in deps if d.startswith("src/") and d.endswith(".py") and d not in imported)
    assert not extra, f"modules listed as deps that the stage does not import (an edit would rerun it): {extra}"
    assert len(deps) == len(set(deps)), "a dep is listed twice"
    assert not _covered(HELP_TEXT, deps), "the --help text is a dep: a new params.yaml comment would rerun the stage"


@pytest.mark.parametrize("name", STAGES)
def test_params_name_every_section_read(name):
    stage, decl = _stage(name), _declaration(name)
    params = [p for p in stage.get("params", [])]
    assert len(params) == len(set(params)), "a params entry is listed twice"
    for section in decl.sections:
        top = section.name.replace("{dataset}", "${key}")
        assert any(p == top or top.startswith(p + ".") for p in params), f"section {top} is not in params"
    presettable = set(yaml.safe_load((PRESETS_DIR / "reference.yaml").read_text())) | {
        p.name for p in PRESETS_DIR.iterdir() if p.is_dir()}
    if any(s.name.split(".")[0] in presettable for s in decl.sections):
        assert "preset" in params and "${pkg}/presets" in _entries(stage.get("deps")), \
            "a preset can set this stage's sections: params need `preset` and deps `${pkg}/presets`"
