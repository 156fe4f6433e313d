"""Imports run downward only: stages -> steps -> llm -> the rest of the package.

Every ``import`` and ``from … import`` in ``src/reflection_tuning`` (at any depth of the file,
so a lazy import inside a function counts too) is read with :mod:`ast`; a module may import
only from its own layer or a lower one. The layers, highest first:

- 3, the commands: ``stages/`` and the commands outside it (:data:`COMMANDS`);
- 2, ``steps/``: one module per LLM step;
- 1, ``llm/``: the endpoint, its config, the runner;
- 0, everything else (``config``, ``io``, ``rows``, ``score/``, …), which imports none of the above.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "reflection_tuning"
NAME = "reflection_tuning"
LAYERS = {"stages": 3, "steps": 2, "llm": 1}
COMMANDS = {"cli", "estimate", "hub"}  # top-level modules that run a command (they import stages)


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
            # ``from reflection_tuning import stages`` imports the subpackage: count each name
            out += [(node.lineno, f"{module}.{a.name}" if module == NAME else module) for a in node.names]
    return [(line, m) for line, m in out if m == NAME or m.startswith(NAME + ".")]


def upward_imports(package: Path = PACKAGE) -> list[str]:
    """Every import that runs upward, as ``file:line: importer (layer) -> imported (layer)``."""
    bad = []
    for path in sorted(package.rglob("*.py")):
        me = module_name(path, package)
        for line, target in imported(path, package):
            if layer(target) > layer(me):
                bad.append(f"{path.relative_to(package)}:{line}: {me} ({layer(me)}) -> {target} ({layer(target)})")
    return bad


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
        "io.py": "from reflection_tuning import llm\n",
        "stages/judge.py": "from reflection_tuning.steps import judge\nfrom reflection_tuning.llm import runner\n",
        "steps/prompt.py": "import reflection_tuning.config\n",
    }
    for rel, text in files.items():
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / rel).write_text(text)
    assert [b.split(": ")[1] for b in upward_imports(pkg)] == [
        "reflection_tuning.io (0) -> reflection_tuning.llm (1)",
        "reflection_tuning.llm.runner (1) -> reflection_tuning.steps.judge (2)",
        "reflection_tuning.steps.judge (2) -> reflection_tuning.stages (3)",
    ]
