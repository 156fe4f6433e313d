"""The test layout: every module of the package that defines a function has a test file in the
mirrored place, and every test file is in a tier directory."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
PACKAGE = TESTS.parent / "src" / "reflection_tuning"
TIERS = ("unit", "integration")  # e2e tests run the pipeline, not one module


def defines_a_function(path: Path) -> bool:
    """Whether the module has a function or method: one of constants or bare classes (``status.py``,
    ``infra/errors.py``) has no behaviour of its own to test; the tests of its users cover it."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) for n in ast.walk(tree))


def modules(package: Path = PACKAGE) -> list[Path]:
    """The package's modules that define a function, relative to it; package ``__init__``s and
    vendored assets excepted."""
    return sorted(p.relative_to(package) for p in package.rglob("*.py")
                  if p.name != "__init__.py" and "vendor" not in p.relative_to(package).parts[:-1]
                  and defines_a_function(p))


def mirrored(module: Path) -> list[Path]:
    """Where the tests of ``module`` (``a/b.py``) live: ``tests/<tier>/a/test_b.py``."""
    return [TESTS / tier / module.parent / f"test_{module.name}" for tier in TIERS]


def untested(package: Path = PACKAGE) -> list[str]:
    return [str(m) for m in modules(package) if not any(t.exists() for t in mirrored(m))]


def test_every_module_has_a_mirrored_test_file():
    missing = untested()
    assert not missing, ("modules without a test file in tests/unit/ or tests/integration/ at the same path "
                         f"(a/b.py -> tests/unit/a/test_b.py): {missing}")


def test_the_walk_finds_modules_and_knows_the_exceptions(tmp_path):
    """The check itself: it sees nested modules and methods, and skips ``__init__``, vendored code
    and a module that defines no function."""
    found = modules()
    assert Path("cli.py") in found and Path("llm/cache.py") in found and Path("stages/score.py") in found
    assert not any(p.name == "__init__.py" for p in found) and Path("status.py") not in found
    files = {"a.py": "def f():\n    pass\n", "sub/__init__.py": "def g():\n    pass\n",
             "sub/b.py": "class B:\n    async def m(self):\n        pass\n",
             "sub/vendor/lib.py": "def h():\n    pass\n",
             "consts.py": "OK = 'ok'\n\n\nclass Failed(Exception):\n    pass\n"}
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    assert modules(tmp_path) == [Path("a.py"), Path("sub/b.py")]
    assert untested(tmp_path) == ["a.py", "sub/b.py"]  # no tests/unit/test_a.py for this fake package


def test_every_test_file_is_in_a_tier_directory():
    """tests/conftest.py marks a test with its directory's tier; a test file elsewhere has none
    (`make test-fast` would skip it silently if the hook did not refuse it)."""
    stray = sorted(str(p.relative_to(TESTS)) for p in TESTS.rglob("test_*.py")
                   if p.relative_to(TESTS).parts[0] not in ("unit", "integration", "e2e"))
    assert not stray, f"test files outside tests/unit, tests/integration and tests/e2e: {stray}"
