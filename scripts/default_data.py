"""Write the default data shipped under ``data/`` and the ``NOTICE`` that lists it.

``params.yaml`` reads these files by default (``datasets.alpaca.source``,
``select.eval_prompts_dir``, ``evaluate.data_dir``, ``generate.prompts_dir``), so a fresh
clone runs the whole pipeline offline with nothing beside it. Every file is either a byte
for byte copy of a public source file or a sample of its rows: ``random.Random(SEED)``
draws the row indices, the rows keep their source order and their bytes (the JSON and CSV
sources are checked to re-serialize byte for byte first). The same sources give the same
bytes on every run; ``tests/unit/test_notice.py`` runs ``--check``.

    python scripts/default_data.py --shared ../shared/data           # write data/ and NOTICE
    python scripts/default_data.py --shared ../shared/data --check   # exit 1 on any difference

``--shared`` is a folder holding the source files at the paths ``ITEMS`` names (a copy of
each source repository's file; ``NOTICE`` names the repository, commit and path).
"""

from __future__ import annotations

import argparse
import bz2
import csv
import hashlib
import io
import json
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SEED = 0
SHIPPED_DIRS = ("data/samples", "data/eval_prompts", "data/benchmarks")
EVAL_SETS = ("vicuna", "koala", "wizardlm", "lima", "sinstruct")
MMLU_SUBJECTS_DIR = "benchmarks/mmlu/test"  # one file per subject: the subject list
HELLASWAG_LINES_PER_TASK = 6  # "activity_label: ctx", the gold label, 4 endings

# Rows drawn from each sampled source: a few hundred, well above evaluate.limit's default.
ALPACA_ROWS = 300
ARC_TEST_ROWS = 300
ARC_DEV_ROWS = 100  # the few-shot pool (the Open LLM Leaderboard takes 25 shots)
HELLASWAG_TASKS = 300
MMLU_TEST_ROWS_PER_SUBJECT = 5  # 57 subjects; each subject's 5 dev rows (5-shot) are copied whole
TRUTHFULQA_QUESTIONS = 300


@dataclass(frozen=True)
class Source:
    repo: str  # the GitHub repository the bytes come from
    commit: str
    license: str  # the data's license, as its upstream states it


ALPACA = Source("tianyi-lab/Reflection_Tuning", "5b6cef0fc912ce4616c7b83dcefce1ebeaa77bf1",
                "CC BY-NC 4.0 (Stanford Alpaca data: tatsu-lab/stanford_alpaca DATA_LICENSE)")
CHERRY = Source("tianyi-lab/Cherry_LLM", "01fac8d2febb51dbd1501ec594a20e499b51fe7d", "")
EVAL_LICENSES = {  # Cherry_LLM states none; these are the upstream sets' own
    "vicuna": "Apache-2.0 (Vicuna questions, lm-sys/FastChat)",
    "koala": "none stated (Koala test set, BAIR)",
    "wizardlm": "none stated (WizardLM test set)",
    "lima": "CC BY-NC-SA (LIMA test set)",
    "sinstruct": "Apache-2.0 (Self-Instruct user-oriented set, yizhongw/self-instruct)",
}
ARC = Source("zhouqb/order_dependency_problem", "c78952c019f7b3fe3c2c14a1dfc7eaeed2efee48",
             "CC BY-SA 4.0 (AI2 ARC)")
HELLASWAG = Source("klosax/hellaswag_text_data", "1105d370f8340eac3c63a91fd1fa58e8999f9505",
                   "MIT (rowanz/hellaswag)")
MMLU = Source("HaeChan0305/MLILAB-FedLLM", "d92730e8bacd7b3a61e551e015e40588e10234b4",
              "MIT (hendrycks/test)")
TRUTHFULQA = Source("ictnlp/TruthX", "a41093a6ae3bcbcb523759da782de0f329d03d91",
                    "Apache-2.0 (sylinrl/TruthfulQA, vendored under TruthfulQA/)")


@dataclass(frozen=True)
class Item:
    """One shipped file: where it goes, what it is made from, and how."""

    out: str  # path in the repository
    source: Source
    license: str
    local: str  # the source file under --shared
    remote: str  # the same file's path in source.repo
    derive: Callable[[bytes], tuple[bytes, int, str]]  # source bytes -> (file bytes, rows, how)


def sample(n: int, k: int) -> list[int]:
    """``k`` of the indices ``0..n-1`` (all when ``k >= n``), drawn with seed :data:`SEED`, in order."""
    return sorted(random.Random(SEED).sample(range(n), k)) if k < n else list(range(n))


def drawn(k: int, n: int, unit: str) -> str:
    return f"{k} of {n} {unit} drawn with random.Random({SEED}).sample, in source order"


def copy(raw: bytes) -> tuple[bytes, int, str]:
    """The file as it is; rows are its non-empty lines (JSON Lines)."""
    return raw, sum(1 for line in raw.splitlines() if line.strip()), "copy, byte for byte"


def csv_copy(raw: bytes) -> tuple[bytes, int, str]:
    """The file as it is; rows are its CSV records after the header."""
    return raw, len(list(csv.reader(io.StringIO(raw.decode("utf-8"), newline="")))) - 1, "copy, byte for byte"


def alpaca_jsonl(raw: bytes) -> tuple[bytes, int, str]:
    """JSON array -> JSON Lines of a sample, each row's fields and values unchanged."""
    rows = json.loads(raw)
    idx = sample(len(rows), ALPACA_ROWS)
    out = "".join(json.dumps(rows[i], ensure_ascii=False) + "\n" for i in idx).encode()
    how = drawn(len(idx), len(rows), "rows") + "; the JSON array written as JSON Lines, fields and values unchanged"
    return out, len(idx), how


def jsonl_sample(k: int) -> Callable[[bytes], tuple[bytes, int, str]]:
    def derive(raw: bytes) -> tuple[bytes, int, str]:
        lines = [line for line in raw.splitlines(keepends=True) if line.strip()]
        idx = sample(len(lines), k)
        return b"".join(lines[i] for i in idx), len(idx), drawn(len(idx), len(lines), "lines") + ", bytes unchanged"

    return derive


def hellaswag_sample(raw: bytes) -> tuple[bytes, int, str]:
    """A sample of the 6-line tasks of the bz2 text, compressed again (bz2 level 9)."""
    lines = bz2.decompress(raw).splitlines(keepends=True)
    if len(lines) % HELLASWAG_LINES_PER_TASK:
        raise ValueError(f"HellaSwag: {len(lines)} lines is not a multiple of {HELLASWAG_LINES_PER_TASK}")
    n = len(lines) // HELLASWAG_LINES_PER_TASK
    idx = sample(n, HELLASWAG_TASKS)
    text = b"".join(b"".join(lines[i * HELLASWAG_LINES_PER_TASK:(i + 1) * HELLASWAG_LINES_PER_TASK]) for i in idx)
    return (
        bz2.compress(text, 9),
        len(idx),
        drawn(len(idx), n, "tasks (6 lines each)") + ", bytes unchanged; bz2 level 9",
    )


def mmlu_sample(raw: bytes) -> tuple[bytes, int, str]:
    """The header and a sample of the rows of one subject's CSV, written as the source writes them."""
    text = raw.decode("utf-8")
    terminator = "\r\n" if "\r\n" in text else "\n"
    header, *rows = list(csv.reader(io.StringIO(text, newline="")))

    def write(selected: list[list[str]]) -> bytes:
        buf = io.StringIO()
        csv.writer(buf, lineterminator=terminator).writerows([header, *selected])
        return buf.getvalue().encode("utf-8")

    if write(rows) != raw:
        raise ValueError("MMLU: the CSV does not re-serialize byte for byte; its rows would change")
    idx = sample(len(rows), MMLU_TEST_ROWS_PER_SUBJECT)
    return (
        write([rows[i] for i in idx]),
        len(idx),
        drawn(len(idx), len(rows), "rows") + ", bytes unchanged; header kept",
    )


def truthfulqa_sample(raw: bytes) -> tuple[bytes, int, str]:
    """A sample of the questions of the JSON array, in the source's layout (indent 2, ASCII)."""
    questions = json.loads(raw)
    if json.dumps(questions, indent=2).encode() != raw:
        raise ValueError("TruthfulQA: mc_task.json does not re-serialize byte for byte")
    idx = sample(len(questions), TRUTHFULQA_QUESTIONS)
    out = json.dumps([questions[i] for i in idx], indent=2).encode()
    return out, len(idx), drawn(len(idx), len(questions), "questions") + ", bytes unchanged"


def items(shared: Path) -> list[Item]:
    """Every shipped file, in NOTICE order. ``shared`` only lists the MMLU subjects."""
    out = [Item("data/samples/alpaca.jsonl", ALPACA, ALPACA.license, "alpaca/cherry_alpaca_5_percent.json",
                "data/cherry_alpaca_v1/cherry_alpaca_5_percent.json", alpaca_jsonl)]
    out += [Item(f"data/eval_prompts/{s}_test_set.jsonl", CHERRY, EVAL_LICENSES[s], f"eval_prompts/{s}_test_set.jsonl",
                 f"evaluation/test_data/{s}_test_set.jsonl", copy) for s in EVAL_SETS]
    for split, k in (("Test", ARC_TEST_ROWS), ("Dev", ARC_DEV_ROWS)):
        name = f"arc_challenge/ARC-Challenge-{split}.jsonl"
        out.append(Item(f"data/benchmarks/{name}", ARC, ARC.license, f"benchmarks/{name}",
                        f"data/arc/ARC-Challenge-{split}.jsonl", jsonl_sample(k)))
    out.append(Item("data/benchmarks/hellaswag/hellaswag_val_full.txt.bz2", HELLASWAG, HELLASWAG.license,
                    "benchmarks/hellaswag/hellaswag_val_full.txt.bz2", "hellaswag_val_full.txt.bz2", hellaswag_sample))
    subjects = sorted(p.name.removesuffix("_test.csv") for p in (shared / MMLU_SUBJECTS_DIR).glob("*_test.csv"))
    for split, derive in (("dev", csv_copy), ("test", mmlu_sample)):
        out += [Item(f"data/benchmarks/mmlu/{split}/{s}_{split}.csv", MMLU, MMLU.license,
                     f"benchmarks/mmlu/{split}/{s}_{split}.csv", f"data/mmlu/{split}/{s}_{split}.csv", derive)
                for s in subjects]
    out.append(Item("data/benchmarks/truthfulqa/mc_task.json", TRUTHFULQA, TRUTHFULQA.license,
                    "benchmarks/truthfulqa/mc_task.json", "TruthfulQA/data/mc_task.json", truthfulqa_sample))
    return out


NOTICE_HEAD = """\
reflection-tuning
Copyright the reflection-tuning contributors.

The code of this repository is licensed under the Apache License, Version 2.0 (LICENSE).

The data files listed below are not covered by that license. They are copies or samples of
public datasets that others made, shipped so that the default pipeline (params.yaml) runs on
a fresh clone, offline, with nothing beside it. Each file keeps its own license, named in its
row; several allow non-commercial use only (Alpaca: CC BY-NC 4.0; LIMA: CC BY-NC-SA).

"source repository", "commit" and "path in source" name the file the bytes were taken from
(for some datasets a copy kept in another project; the license column names the upstream).
scripts/default_data.py writes every file below and this NOTICE from those source files: a
sample draws row indices with Python's random.Random({seed}).sample and keeps the rows in
source order, each row's bytes unchanged (the Alpaca rows go from a JSON array to JSON Lines,
their fields and values unchanged). tests/unit/test_notice.py checks every sha256.

| file | rows | source repository | commit | path in source | license | derived | sha256 |
|---|---|---|---|---|---|---|---|
"""


def build(shared: Path) -> dict[str, bytes]:
    """Every shipped file's bytes and the NOTICE's, by path in the repository.

    Raises:
        FileNotFoundError: a source file is missing under ``shared``.
        ValueError: a source would not keep its rows' bytes (see the derive functions).
    """
    files: dict[str, bytes] = {}
    rows = []
    for item in items(shared):
        data, n, how = item.derive((shared / item.local).read_bytes())
        files[item.out] = data
        sha = hashlib.sha256(data).hexdigest()
        rows.append(f"| {item.out} | {n} | {item.source.repo} | {item.source.commit} | {item.remote} "
                    f"| {item.license} | {how} | {sha} |\n")
    files["NOTICE"] = (NOTICE_HEAD.format(seed=SEED) + "".join(rows)).encode()
    return files


def shipped_on_disk(root: Path) -> set[str]:
    """The files now under :data:`SHIPPED_DIRS` (relative paths)."""
    return {p.relative_to(root).as_posix() for d in SHIPPED_DIRS if (root / d).is_dir()
            for p in (root / d).rglob("*") if p.is_file()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data",
                        help="the folder holding the source files (default: ../shared/data)")
    parser.add_argument("--check", action="store_true", help="compare with the files on disk; write nothing")
    args = parser.parse_args(argv)
    files = build(args.shared)
    stale = shipped_on_disk(REPO) - set(files)
    if args.check:
        differ = sorted(p for p, data in files.items() if not (REPO / p).is_file() or (REPO / p).read_bytes() != data)
        for path in differ + sorted(stale):
            print(f"differs: {path}", file=sys.stderr)
        return 1 if differ or stale else 0
    for path in stale:
        (REPO / path).unlink()
    for path, data in files.items():
        (REPO / path).parent.mkdir(parents=True, exist_ok=True)
        (REPO / path).write_bytes(data)
    print(f"wrote {len(files)} files ({sum(map(len, files.values())) / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
