"""rows.py: ids, the input merge, and the one schema."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from reflection_tuning import status as st
from reflection_tuning.infra.errors import UserError
from reflection_tuning.rows import INPUT_SEPARATOR, canonical, check_rows, merge_input, row_id


def test_id_is_a_stable_content_hash():
    assert row_id("a", "", "b") == row_id("a", "", "b")
    assert row_id("a", "", "b") != row_id("a", "b", "")  # fields are not concatenated
    assert len(row_id("a", "", "b")) == 16
    assert canonical("a", "", "b", "s")["id"] == row_id("a", "", "b")


def test_merge_input_folds_the_input_after_a_blank_line():
    assert merge_input("Design a wellness plan for the given audience", "Expectant Mothers") == (
        "Design a wellness plan for the given audience\n\nExpectant Mothers")
    assert merge_input("Say hi.", "") == "Say hi."
    assert merge_input("Say hi.", "  \n ") == "Say hi."  # a blank input adds nothing
    assert merge_input("Sum: ", " 1 2 \n") == "Sum:" + INPUT_SEPARATOR + "1 2"
    assert merge_input("a", "b") == merge_input("a", "b")  # pure: same text every time


def test_canonical_merge_keeps_the_id_of_the_triple_as_read():
    kept = canonical("Translate.", "Bonjour", "Hello", "s", input_mode="keep")
    merged = canonical("Translate.", "Bonjour", "Hello", "s", input_mode="merge")
    assert merged["id"] == kept["id"] == row_id("Translate.", "Bonjour", "Hello")
    assert (merged["instruction"], merged["input"]) == ("Translate.\n\nBonjour", "")
    assert (kept["instruction"], kept["input"]) == ("Translate.", "Bonjour")
    no_input = canonical("Say hi.", "", "Hi.", "s", input_mode="merge")
    assert no_input == canonical("Say hi.", "", "Hi.", "s")
    with pytest.raises(ValueError, match="unknown input mode"):
        canonical("a", "", "b", "s", input_mode="drop")


# -- one row schema: no status value is written as a literal outside rows.py ------------------

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "reflection_tuning"


def _says_status(node: ast.AST) -> bool:
    """``node`` names a status: a name, attribute or string key with ``status`` in it."""
    for n in ast.walk(node):
        text = n.id if isinstance(n, ast.Name) else n.attr if isinstance(n, ast.Attribute) else (
            n.value if isinstance(n, ast.Constant) and isinstance(n.value, str) else "")
        if "status" in text.lower():
            return True
    return False


def _target_names(targets: list[ast.expr]) -> str:
    return " ".join(ast.unparse(t) for t in targets)


def status_literals(source: str) -> list[tuple[int, str]]:
    """``(line, value)`` of every string constant equal to a status value that is used as a
    status: compared (``==``, ``!=``, ``in (…)``), the value of a ``*status`` key, the default
    of ``.get("status", …)``, a ``*status`` keyword or parameter default, assigned to a
    ``*status*`` name or to a constant (``PARSE_ERROR = "parse_error"``), returned by a
    ``*status*`` function, or the other branch of a conditional whose first branch is a status.
    Docstrings, field names (``row["truncated"]``)
    and other words that happen to equal a status (a select branch ``unusable``, a table
    header ``ok``) are not."""
    tree = ast.parse(source)
    found: set[tuple[int, str]] = set()

    def hit(node: ast.AST) -> None:
        for n in ast.walk(node):  # the constant, or the constants of a literal tuple/list/set
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value in st.ALL:
                found.add((n.lineno, n.value))

    def literal(node: ast.AST) -> bool:
        return isinstance(node, (ast.Constant, ast.Tuple, ast.List, ast.Set)) or (
            isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("frozenset", "set"))

    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            for op, right in zip(node.ops, node.comparators):
                if isinstance(op, (ast.Eq, ast.NotEq, ast.Is, ast.IsNot)):
                    for x in operands:
                        if isinstance(x, ast.Constant):
                            hit(x)
                elif isinstance(op, (ast.In, ast.NotIn)) and literal(right) and not isinstance(right, ast.Constant):
                    hit(right)
        elif isinstance(node, ast.Dict):
            for k, v in zip(node.keys, node.values):
                if k is not None and isinstance(k, ast.Constant) and _says_status(k) and literal(v):
                    hit(v)
        elif isinstance(node, ast.Call):
            if (isinstance(node.func, ast.Attribute) and node.func.attr == "get" and len(node.args) == 2
                    and _says_status(node.args[0]) and literal(node.args[1])):
                hit(node.args[1])
            for kw in node.keywords:
                if kw.arg and "status" in kw.arg.lower() and literal(kw.value):
                    hit(kw.value)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = _target_names(targets)
            constant = all(isinstance(t, ast.Name) and t.id.isupper() for t in targets)  # OK = "ok"
            if node.value is not None and ("status" in names.lower() or constant) and literal(node.value):
                hit(node.value)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args
            positional = args.posonlyargs + args.args
            pairs = list(zip(positional[len(positional) - len(args.defaults):], args.defaults))
            pairs += [(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None]
            for arg, default in pairs:
                if "status" in arg.arg.lower() and literal(default):
                    hit(default)
            if "status" in node.name.lower():
                for n in ast.walk(node):
                    if isinstance(n, ast.Return) and n.value is not None and literal(n.value):
                        hit(n.value)
        elif isinstance(node, ast.IfExp):
            for branch, other in ((node.body, node.orelse), (node.orelse, node.body)):
                if isinstance(branch, ast.Constant) and _says_status(other) and not isinstance(other, ast.Constant):
                    hit(branch)
    return sorted(found)


def test_the_detector_sees_status_uses_and_nothing_else():
    uses = '''
if row["status"] == "ok": pass
if s not in ("parse_error", "truncated"): pass
out = {"status": "missing", "ifd_status": "nan"}
st = row.get("status", "ok")
make(status="cost_cap")
STATUS_X = "empty"
PARSE_ERROR = "parse_error"
def f(x, status="request_error"): pass
def ratio_status(r): return "unusable"
label = "upstream_unusable" if r is None else r.get("status")
'''
    assert [v for _, v in status_literals(uses)] == [
        "ok", "parse_error", "truncated", "missing", "nan", "ok", "cost_cap", "empty", "parse_error", "request_error",
        "unusable", "upstream_unusable"]
    others = '''
"""A docstring that says ok, truncated and nan."""
def f(r):
    """Returns ``ok``."""
    return r["truncated"], float("nan"), r.get("missing")
BRANCHES = {"v1": ("both", "unusable")}
header = ("variant", "rows", "ok")
state = "ok" if data else "no data"
if "truncated" in row: pass
'''
    assert status_literals(others) == []


def test_no_status_value_is_written_outside_status_py():
    """Each status is written once, in status.py; every other module uses its one name (``st.OK``)."""
    offenders = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel == "status.py":
            continue
        if found := status_literals(path.read_text(encoding="utf-8")):
            offenders[rel] = found
    assert not offenders, f"status literals outside status.py (use its names: st.OK, …): {offenders}"


def test_the_statuses_are_distinct_and_ok_is_in_every_set():
    assert len(set(st.STEP)) == len(st.STEP) and len(set(st.SCORE)) == len(st.SCORE)
    assert set(st.STEP) & set(st.SCORE) == {st.OK}


def test_check_rows_names_the_bad_row_and_what_to_do(alpaca_rows):
    check_rows(alpaca_rows[:3], "in.jsonl")
    bad = [*alpaca_rows[:2], {"id": "x", "instruction": "Q", "output": None}]
    with pytest.raises(UserError, match=r"in.jsonl: row 3 \(id x\) has no string \['output'\]; give the rows fetch"):
        check_rows(bad, "in.jsonl")
