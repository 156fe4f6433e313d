"""The shipped default data (``data/``) and its ``NOTICE``: every file the defaults read is
listed with its source, license and sha256, the hashes hold, ``scripts/default_data.py``
rewrites the same bytes from the sources, and the benchmark subsets load as the rt_* tasks read them."""

from __future__ import annotations

import bz2
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from reflection_tuning.tasks import utils

REPO = Path(__file__).resolve().parents[2]
NOTICE = REPO / "NOTICE"
PARAMS = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
COLUMNS = ["file", "rows", "source repository", "commit", "path in source", "license", "derived", "sha256"]


def notice_rows() -> list[dict[str, str]]:
    """The NOTICE's file table, one dict a row (keys: :data:`COLUMNS`)."""
    lines = [line for line in NOTICE.read_text(encoding="utf-8").splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header == COLUMNS
    return [dict(zip(COLUMNS, (c.strip() for c in line.strip("|").split("|")), strict=True)) for line in lines[2:]]


def default_data_paths() -> list[Path]:
    """What the shipped params read: the Alpaca source and the three data folders."""
    return [REPO / PARAMS["datasets"]["alpaca"]["source"], REPO / PARAMS["select"]["eval_prompts_dir"],
            REPO / PARAMS["evaluate"]["data_dir"], REPO / PARAMS["generate"]["prompts_dir"]]


def test_every_file_the_defaults_read_is_listed_with_its_hash():
    rows = {r["file"]: r for r in notice_rows()}
    read = {p.relative_to(REPO).as_posix() for d in default_data_paths()
            for p in ([d] if d.is_file() else d.rglob("*")) if p.is_file()}
    assert read and read <= set(rows), f"shipped but not in NOTICE: {sorted(read - set(rows))}"
    for rel, row in rows.items():
        assert (REPO / rel).is_file(), f"NOTICE lists {rel}, which is not in the repository"
        assert hashlib.sha256((REPO / rel).read_bytes()).hexdigest() == row["sha256"], f"{rel}: sha256 differs"
        assert len(row["commit"]) == 40 and "/" in row["source repository"] and row["license"], rel
        assert int(row["rows"]) > 0 and row["derived"], rel


def test_the_shipped_data_stays_small():
    total = sum((REPO / r["file"]).stat().st_size for r in notice_rows())
    assert total < 3_000_000, f"{total} bytes of shipped data"


def test_the_code_license_is_the_apache_text_pyproject_declares():
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License\n                           Version 2.0, January 2004" in text
    assert 'license = { text = "Apache-2.0" }' in (REPO / "pyproject.toml").read_text(encoding="utf-8")
    assert "each file keeps its own license" in " ".join(NOTICE.read_text(encoding="utf-8").split()).lower()


def test_the_script_rewrites_the_same_bytes_from_the_sources(shared_data):
    proc = subprocess.run([sys.executable, str(REPO / "scripts/default_data.py"), "--shared", str(shared_data),
                           "--check"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


# -- the benchmark subsets, read the way the rt_* tasks read them (tasks/*.yaml data_files)


@pytest.fixture(scope="module")
def bench() -> Path:
    return REPO / PARAMS["evaluate"]["data_dir"]


def test_arc_subset(bench):
    for split, n in (("Test", 300), ("Dev", 100)):
        lines = (bench / f"arc_challenge/ARC-Challenge-{split}.jsonl").read_text(encoding="utf-8").splitlines()
        docs = [utils.arc_doc(json.loads(line)) for line in lines]
        assert len(docs) == n and len({d["id"] for d in docs}) == n


def test_hellaswag_subset(bench):
    with bz2.open(bench / "hellaswag/hellaswag_val_full.txt.bz2", "rt", encoding="utf-8") as f:
        docs = utils.parse_hellaswag(f.read().split("\n"))
    assert len(docs) == 300 and all(len(d["choices"]) == 4 for d in docs)


def test_mmlu_subset_keeps_every_subject_and_its_five_shots(bench):
    splits = utils.load_mmlu({"test": str(bench / "mmlu/test/*_test.csv"), "dev": str(bench / "mmlu/dev/*_dev.csv")})
    test = splits["test"]
    assert len(set(test["subject"])) == 57 and len(test) == 57 * 5
    assert all(len(dev) == 5 for dev in test["dev"])  # the Open LLM Leaderboard's 5 shots
    assert len(set(test["subject"][:57])) == 57  # interleaved: a small limit still spans the subjects


def test_truthfulqa_subset(bench):
    docs = utils.load_truthfulqa_mc({"validation": str(bench / "truthfulqa/mc_task.json")})["validation"]
    assert len(docs) == 300 and all(1 in d["labels"] for d in docs["mc2_targets"])


def test_the_alpaca_sample_has_the_source_fields():
    rows = [json.loads(line) for line in (REPO / PARAMS["datasets"]["alpaca"]["source"]).read_text().splitlines()]
    assert len(rows) == 300 and all(list(r) == ["instruction", "input", "output"] for r in rows)
    assert PARAMS["datasets"]["alpaca"]["limit"] <= len(rows)
