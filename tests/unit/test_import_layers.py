"""Imports run downward only: stages -> steps -> llm -> the rest of the package.

Every ``import`` and ``from … import`` in ``src/reflection_tuning`` (at any depth of the file,
so a lazy import inside a function counts too) is read with :mod:`ast`; a module may import
only from its own layer or a lower one. The layers, highest first:

- 3, the commands: ``stages/`` and the commands outside it (:data:`COMMANDS`);
- 2, ``steps/``: one module per LLM step;
- 1, ``llm/``: the endpoint, its config, the runner;
- 0, everything else (``config``, ``io``, ``rows``, ``score/``, …), which imports none of the above.

Within layer 3, no stage or command imports another stage: what two of them share (a config
section, a rule) lives below them. The stage infrastructure (:data:`SHARED`: the ``stages``
package) is shared by all of them.
"""

from __future__ import annotations

import ast
from pathlib import Path

from reflection_tuning.infra.command import COMMANDS as REGISTRY

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "reflection_tuning"
NAME = "reflection_tuning"
LAYERS = {"stages": 3, "steps": 2, "llm": 1}
# top-level modules that run a command (they import stages): the CLI, and the registry's modules outside stages/
COMMANDS = {"cli"} | {m.split(".")[1] for m in REGISTRY.values() if not m.startswith(f"{NAME}.stages.")}
SHARED = {f"{NAME}.stages"}  # the package itself
# Stage-to-stage imports not yet moved down, each with why; the test fails when one is gone (drop it here).
PENDING: dict[tuple[str, str], str] = {}


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = list(path.relative_to(package).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([NAME, *parts])


def layer(module: str) -> int:
    """The layer of a dotted module of the package (``reflection_tuning.steps.judge`` -> 2)."""
    parts = module.split(".")[1:]
    if not parts:
        return 0
    return 3 if parts[0] in COMMANDS else LAYERS.get(parts[0], 0)


def imported(path: Path, package: Path = PACKAGE) -> list[tuple[int, str]]:
    """(line, dotted module) of every import of the package in the file ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    here = module_name(path, package).split(".")
    if path.name != "__init__.py":
        here = here[:-1]  # the package a relative import starts from
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(here[: len(here) - node.level + 1]) if node.level else ""
            module = ".".join(p for p in (base, node.module or "") if p)
            # ``from reflection_tuning import stages``, ``from reflection_tuning.stages import fetch``
            # import the submodule: count each name that is one
            out += [(node.lineno, f"{module}.{a.name}" if module == NAME or _is_module(f"{module}.{a.name}", package)
                     else module) for a in node.names]
    return [(line, m) for line, m in out if m == NAME or m.startswith(NAME + ".")]


def _is_module(module: str, package: Path) -> bool:
    """Whether the dotted ``module`` is a file of ``package`` (``a/b.py`` or ``a/b/__init__.py``)."""
    if not module.startswith(NAME + "."):
        return False
    rel = package.joinpath(*module.split(".")[1:])
    return rel.with_suffix(".py").is_file() or (rel / "__init__.py").is_file()


def upward_imports(package: Path = PACKAGE) -> list[str]:
    """Every import that runs upward, as ``file:line: importer (layer) -> imported (layer)``."""
    bad = []
    for path in sorted(package.rglob("*.py")):
        me = module_name(path, package)
        for line, target in imported(path, package):
            if layer(target) > layer(me):
                bad.append(f"{path.relative_to(package)}:{line}: {me} ({layer(me)}) -> {target} ({layer(target)})")
    return bad


def is_stage(module: str) -> bool:
    """A stage module (``reflection_tuning.stages.<name>``), the shared infrastructure excepted."""
    return module.startswith(f"{NAME}.stages.") and module not in SHARED


def stage_imports(package: Path = PACKAGE) -> list[tuple[str, str, str]]:
    """Every import of a stage by another stage or command: (``file:line``, importer, imported)."""
    found = []
    for path in sorted(package.rglob("*.py")):
        me = module_name(path, package)
        if layer(me) < 3:
            continue  # a lower layer importing a stage is an upward import
        found += [(f"{path.relative_to(package)}:{line}", me, target)
                  for line, target in imported(path, package) if is_stage(target) and target != me]
    return found


def test_imports_run_downward_only():
    bad = upward_imports()
    assert not bad, "imports that run upward (stages -> steps -> llm -> the rest):\n" + "\n".join(bad)


def test_the_check_sees_an_upward_import(tmp_path):
    """The check itself, on a copy of the rule's cases: a lazy import inside a function, a
    relative import and ``from reflection_tuning import stages`` are all seen."""
    pkg = tmp_path / NAME
    files = {
        "llm/runner.py": "def f():\n    from reflection_tuning.steps.judge import SCHEMA\n",
        "steps/judge.py": "from ..stages import common\n",
        "infra/io.py": "from reflection_tuning import llm\n",
        "stages/judge.py": "from reflection_tuning.steps import judge\nfrom reflection_tuning.llm import runner\n",
        "steps/prompt.py": "import reflection_tuning.infra.config\n",
    }
    for rel, text in files.items():
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / rel).write_text(text)
    assert [b.split(": ")[1] for b in upward_imports(pkg)] == [
        "reflection_tuning.infra.io (0) -> reflection_tuning.llm (1)",
        "reflection_tuning.llm.runner (1) -> reflection_tuning.steps.judge (2)",
        "reflection_tuning.steps.judge (2) -> reflection_tuning.stages (3)",
    ]


def test_no_stage_or_command_imports_another_stage():
    found = stage_imports()
    bad = [f"{where}: {me} -> {target}" for where, me, target in found if (me, target) not in PENDING]
    assert not bad, ("a stage or command imports another stage; move what they share below the stages "
                     "(a config into its domain module, a rule into steps/ or the package root):\n" + "\n".join(bad))
    gone = set(PENDING) - {(me, target) for _, me, target in found}
    assert not gone, f"these imports are gone: drop them from PENDING: {sorted(gone)}"


def test_the_check_sees_a_stage_importing_a_stage(tmp_path):
    """The check itself: absolute, relative, ``from …stages import <stage>`` and lazy imports of a
    stage are seen, from a stage and from a command; the shared infrastructure, the stage list and
    a module's own name are not violations."""
    pkg = tmp_path / NAME
    files = {
        "stages/__init__.py": "STAGES = ('fetch', 'select', 'export')\n",
        "stages/fetch.py": "from reflection_tuning.infra.command import Stage\n",
        "stages/select.py": ("from reflection_tuning import stages\n"
                             "import reflection_tuning.select\n"),
        "stages/export.py": "from reflection_tuning.stages.select import Config\nfrom . import fetch\n",
        "stages/compress.py": "def f():\n    from ..stages.fetch import to_fields\n",
        "hub.py": "from reflection_tuning.stages import export\n",
        "cli.py": "from reflection_tuning import stages\n",
        "select.py": "",
    }
    for rel, text in files.items():
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / rel).write_text(text)
    short = [f"{where}: {me.split('.', 1)[1]} -> {target.split('.', 1)[1]}" for where, me, target in stage_imports(pkg)]
    assert short == [
        "hub.py:1: hub -> stages.export",
        "stages/compress.py:2: stages.compress -> stages.fetch",
        "stages/export.py:1: stages.export -> stages.select",
        "stages/export.py:2: stages.export -> stages.fetch",
    ]
