"""The layers of the package, read from CONTRIBUTING.md's picture, hold against its imports.

CONTRIBUTING.md draws the layers (``## The layout``), highest first: a line per layer, its name
then its folders (``stages/``) and root modules (``cli.py``); ``*`` is every other module of the
package root. Every ``import`` and ``from … import`` in ``src/reflection_tuning`` (at any depth
of the file, so a lazy import inside a function counts too) is read with :mod:`ast`; a module may
import only from its own layer or a lower one. Within the top layer (the commands), no stage or
command imports another stage: what two of them share lives below them.

The same page has a table of modules per folder, one line each: every module of every folder is
in its folder's table, and every entry is a module.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from reflection_tuning.infra.command import COMMANDS as REGISTRY

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "src" / "reflection_tuning"
CONTRIBUTING = REPO / "CONTRIBUTING.md"
NAME = "reflection_tuning"
SHARED = {NAME, f"{NAME}.stages"}  # the package and the stages package themselves: no stage
# Stage-to-stage imports not yet moved down, each with why; the test fails when one is gone (drop it here).
PENDING: dict[tuple[str, str], str] = {}


def read_layers(text: str) -> list[tuple[str, list[str]]]:
    """The layer picture of ``text`` (the fenced block after ``<!-- layers``): (name, members),
    highest first; the lines of arrows between them are skipped."""
    block = re.search(r"<!-- layers[^>]*-->\s*```text\n(.*?)```", text, re.DOTALL)
    assert block, "CONTRIBUTING.md has no layer picture (<!-- layers … --> and a ```text block)"
    return [(line.split()[0], line.split()[1:]) for line in block.group(1).splitlines()
            if line.strip() and not set(line.strip()) <= set("↓│|v ")]


LAYERS = read_layers(CONTRIBUTING.read_text(encoding="utf-8"))
TOP = LAYERS[0][0]


def layer_of(module: str, layers: list[tuple[str, list[str]]] = LAYERS) -> tuple[int, str]:
    """(rank, name) of the layer of a dotted module of the package (higher runs higher): its folder's
    or root module's layer, the ``*`` layer for another root module; the package itself is lowest."""
    parts = module.split(".")[1:]
    if not parts:
        return 0, layers[-1][0]
    for i, (name, members) in enumerate(layers):
        if f"{parts[0]}/" in members or (len(parts) == 1 and f"{parts[0]}.py" in members):
            return len(layers) - 1 - i, name
    i, name = next((i, n) for i, (n, members) in enumerate(layers) if "*" in members)
    return len(layers) - 1 - i, name


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = list(path.relative_to(package).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([NAME, *parts])


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


def upward_imports(package: Path = PACKAGE, layers: list[tuple[str, list[str]]] = LAYERS) -> list[str]:
    """Every import that runs upward, as ``file:line: importer (layer) -> imported (layer)``."""
    bad = []
    for path in sorted(package.rglob("*.py")):
        me = module_name(path, package)
        for line, target in imported(path, package):
            if layer_of(target, layers)[0] > layer_of(me, layers)[0]:
                bad.append(f"{path.relative_to(package)}:{line}: {me} ({layer_of(me, layers)[1]}) -> "
                           f"{target} ({layer_of(target, layers)[1]})")
    return bad


def is_stage(module: str) -> bool:
    """A stage module (``reflection_tuning.stages.<name>``), the shared infrastructure excepted."""
    return module.startswith(f"{NAME}.stages.") and module not in SHARED


def stage_imports(package: Path = PACKAGE, layers: list[tuple[str, list[str]]] = LAYERS) -> list[tuple[str, str, str]]:
    """Every import of a stage by another stage or command: (``file:line``, importer, imported)."""
    found = []
    for path in sorted(package.rglob("*.py")):
        me = module_name(path, package)
        if layer_of(me, layers)[1] != layers[0][0]:
            continue  # a lower layer importing a stage is an upward import
        found += [(f"{path.relative_to(package)}:{line}", me, target)
                  for line, target in imported(path, package) if is_stage(target) and target != me]
    return found


def test_imports_run_downward_only():
    bad = upward_imports()
    order = " -> ".join(name for name, _ in LAYERS)
    assert not bad, f"imports that run upward ({order}; CONTRIBUTING.md's layer picture):\n" + "\n".join(bad)


# A picture as CONTRIBUTING.md draws one, for the checks of the checks.
PICTURE = """<!-- layers: highest first -->
```text
commands  cli.py  hub.py  stages/
    ↓
steps     steps/
    ↓
llm       llm/
    ↓
domain    select/  *
    ↓
infra     infra/
```
"""


def test_the_picture_is_read_line_by_line():
    assert read_layers(PICTURE) == [("commands", ["cli.py", "hub.py", "stages/"]), ("steps", ["steps/"]),
                                    ("llm", ["llm/"]), ("domain", ["select/", "*"]), ("infra", ["infra/"])]
    layers = read_layers(PICTURE)
    assert layer_of(f"{NAME}.hub", layers) == (4, "commands")
    assert layer_of(f"{NAME}.rows", layers) == layer_of(f"{NAME}.select.rules", layers) == (1, "domain")
    assert layer_of(f"{NAME}.infra.io", layers) == layer_of(NAME, layers) == (0, "infra")


def test_the_picture_names_every_folder_and_command_and_nothing_else():
    named = [m for _, members in LAYERS for m in members]
    folders = {f"{p.parent.name}/" for p in PACKAGE.glob("*/__init__.py")}
    assert len(named) == len(set(named)), "a folder or module is in two layers"
    assert [m for m in named if m != "*" and m not in folders and not (PACKAGE / m).is_file()] == [], \
        "the picture names what the package does not hold"
    assert sorted(folders - set(named)) == [], "folders missing from the layer picture"
    assert "*" in named, "no layer holds the rest of the package root (*)"
    commands = {"cli"} | {m.split(".")[1] for m in REGISTRY.values()}
    assert sorted(c for c in commands if layer_of(f"{NAME}.{c}")[1] != TOP) == [], \
        f"commands of the registry that are not on the top layer ({TOP})"


def write_package(pkg, files: dict[str, str]) -> None:
    """A synthetic package under ``pkg``: ``{relative path: source}``."""
    for rel, text in files.items():
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / rel).write_text(text)


def test_the_check_sees_an_upward_import(tmp_path):
    """The check itself, on a copy of the rule's cases: a lazy import inside a function, a
    relative import and ``from reflection_tuning import stages`` are all seen, and the ``*`` layer
    (a root module) sits between its neighbours."""
    pkg = tmp_path / NAME
    files = {
        "llm/runner.py": "def f():\n    from reflection_tuning.steps.judge import SCHEMA\n",
        "steps/judge.py": "from ..stages import common\n",
        "infra/io.py": "from reflection_tuning import rows\n",
        "rows.py": "from reflection_tuning.llm import runner\nfrom reflection_tuning.infra import io\n",
        "stages/judge.py": "from reflection_tuning.steps import judge\nfrom reflection_tuning.llm import runner\n",
        "steps/prompt.py": "import reflection_tuning.infra.config\n",
    }
    write_package(pkg, files)
    assert [b.split(": ")[1] for b in upward_imports(pkg, read_layers(PICTURE))] == [
        "reflection_tuning.infra.io (infra) -> reflection_tuning.rows (domain)",
        "reflection_tuning.llm.runner (llm) -> reflection_tuning.steps.judge (steps)",
        "reflection_tuning.rows (domain) -> reflection_tuning.llm.runner (llm)",
        "reflection_tuning.steps.judge (steps) -> reflection_tuning.stages (commands)",
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
    write_package(pkg, files)
    short = [f"{where}: {me.split('.', 1)[1]} -> {target.split('.', 1)[1]}"
             for where, me, target in stage_imports(pkg, read_layers(PICTURE))]
    assert short == [
        "hub.py:1: hub -> stages.export",
        "stages/compress.py:2: stages.compress -> stages.fetch",
        "stages/export.py:1: stages.export -> stages.select",
        "stages/export.py:2: stages.export -> stages.fetch",
    ]


def folder_tables(text: str) -> dict[str, set[str]]:
    """The module tables of ``## The layout``: folder (``""`` for the package root) -> the modules
    its table names (the first column's ``name.py``)."""
    tables: dict[str, set[str]] = {}
    for heading, body in re.findall(r"^### `(?:src/reflection_tuning/|)([\w/]*)`[^\n]*\n((?:\|[^\n]*\n)+)",
                                    text, re.MULTILINE):
        tables[heading.rstrip("/")] = set(re.findall(r"^\| `([\w.]+\.py)` \|", body, re.MULTILINE))
    return tables


def package_modules(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Folder (``""`` for the package root) -> its modules, the ``__init__``s aside."""
    found: dict[str, set[str]] = {}
    for path in package.rglob("*.py"):
        folder = path.parent.relative_to(package).as_posix()
        if path.name != "__init__.py":
            found.setdefault("" if folder == "." else folder, set()).add(path.name)
    return found


def test_every_module_is_in_its_folders_table():
    tables, modules = folder_tables(CONTRIBUTING.read_text(encoding="utf-8")), package_modules()
    assert sorted(set(modules) - set(tables)) == [], "folders without a table of their modules in CONTRIBUTING.md"
    missing = sorted(f"{folder}/{m}".lstrip("/") for folder, ms in modules.items() for m in ms - tables[folder])
    assert missing == [], "modules missing from their folder's table in CONTRIBUTING.md (## The layout)"
    stale = sorted(f"{folder}/{m}".lstrip("/") for folder, ms in tables.items()
                   for m in ms - modules.get(folder, set()))
    assert stale == [], "CONTRIBUTING.md's tables name modules that are not there"


def test_the_tables_are_read_by_folder():
    text = ("### `src/reflection_tuning/` (the package root)\n| module | what |\n|---|---|\n| `cli.py` | x |\n\n"
            "### `llm/`\n| module | what |\n|---|---|\n| `cache.py` | the cache |\n| `cost.py` | USD |\n\n"
            "### `Other` heading\ntext\n")
    assert folder_tables(text) == {"": {"cli.py"}, "llm": {"cache.py", "cost.py"}}
