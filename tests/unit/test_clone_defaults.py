"""A clone runs on its own: ``params.yaml``, ``dvc.yaml`` and the ``Makefile`` name no path
outside the repository, and ``make run`` is offline unless it is given a hub id or URL."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
FILES = ("params.yaml", "dvc.yaml", "Makefile")
# A path that climbs out (../ anywhere), starts at the home folder, or is absolute (a word that
# starts with "/" and a name: "$(BIN)/dvc" and "2>/dev/null" do not).
WORD_SEPARATORS = re.compile(r"[\s'\"=,\[\]]+")
ABSOLUTE = re.compile(r"(~/|/[\w.])")
ALLOWED = ("/dev/null",)


def outside_paths(text: str) -> list[str]:
    """The words of ``text`` that name a path outside the folder it is read from."""
    words = (w.lstrip("(") for w in WORD_SEPARATORS.split(text))
    return [w for w in words if w not in ALLOWED and ("../" in w or ABSOLUTE.match(w))]


def test_the_check_sees_what_leaves_the_clone():
    text = "a: ../shared/data\nb: /work/data # c\nd=~/x\ne: 'data/x' f: https://h/v1 $(BIN)/dvc 2>/dev/null a/../b"
    assert outside_paths(text) == ["../shared/data", "/work/data", "~/x", "a/../b"]


@pytest.mark.parametrize("name", FILES)
def test_no_path_outside_the_clone(name):
    assert outside_paths((REPO / name).read_text(encoding="utf-8")) == [], name


def test_no_params_value_is_a_path_outside_the_clone():
    def strings(node):
        if isinstance(node, dict):
            for value in node.values():
                yield from strings(value)
        elif isinstance(node, list):
            for value in node:
                yield from strings(value)
        elif isinstance(node, str):
            yield node

    for name in ("params.yaml", "dvc.yaml"):
        values = list(strings(yaml.safe_load((REPO / name).read_text(encoding="utf-8"))))
        assert values
        bad = [v for v in values if "://" not in v and (v.startswith(("/", "~")) or ".." in Path(v).parts)]
        assert bad == [], name


@pytest.mark.skipif(shutil.which("make") is None, reason="GNU make is not installed")
@pytest.mark.parametrize(("data", "offline"), [("", True), ("data/samples/alpaca.jsonl", True),
                                               ("tatsu-lab/alpaca", False), ("https://example.org/a.json", False)])
def test_make_run_is_offline_unless_the_data_is_remote(data, offline):
    proc = subprocess.run(["make", "-n", "run", f"DATA={data}"], cwd=REPO,
                          capture_output=True, text=True, check=True)
    (line,) = [line for line in proc.stdout.splitlines() if re.search(r"/dvc (repro|exp run)", line)]
    assert line.startswith("HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 ") == offline, line
    assert ("exp run -S 'datasets.alpaca.source=" + data + "'" in line) == bool(data), line
