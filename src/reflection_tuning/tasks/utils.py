"""Loaders, ``process_docs`` and ``process_results`` of the local ``rt_*`` lm-eval tasks.

The YAMLs next to this file name these functions with ``!function utils.<name>``; lm-eval
imports this file by path, so it only imports the standard library, ``datasets``,
``numpy`` and ``lm_eval`` (never relative imports). Every function turns the on-disk benchmark format
(the files under ``evaluate.data_dir``; NOTICE lists the shipped ones) into the document schema
of the matching upstream lm-eval task, so the prompts and metrics are the upstream ones:

- ARC-Challenge (AI2 JSONL) -> ``question``, ``choices.{text,label}``, ``answerKey`` (``arc_challenge``)
- HellaSwag (llama.cpp text, 6 lines a task) -> ``query``, ``choices``, ``label`` (``hellaswag``)
- MMLU (one CSV per subject, answer index) -> ``question``, ``subject``, ``choices``, ``answer`` (``mmlu``)
- TruthfulQA ``mc_task.json`` -> ``question``, ``mc{1,2}_targets.{choices,labels}`` (``truthfulqa_mc2``)
"""

from __future__ import annotations

import csv
import glob
import itertools
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import datasets
import numpy as np
from lm_eval.api import samplers

HELLASWAG_LINES_PER_TASK = 6
MMLU_COLUMNS = ["question", "choice0", "choice1", "choice2", "choice3", "answer"]

DataFiles = Mapping[str, "str | Sequence[str]"]


def expand_files(patterns: str | Sequence[str]) -> list[Path]:
    """The files named by one path/glob or a list of them, each glob sorted by name.

    Raises:
        FileNotFoundError: a path does not exist, or a glob matches nothing.
    """
    out: list[Path] = []
    for pattern in [patterns] if isinstance(patterns, str) else list(patterns):
        matches = sorted(glob.glob(pattern)) if any(c in pattern for c in "*?[") else [pattern]
        if not matches:
            raise FileNotFoundError(f"no benchmark file matches {pattern}")
        for match in matches:
            if not Path(match).is_file():
                raise FileNotFoundError(f"benchmark file not found: {match}")
            out.append(Path(match))
    return out


# ---------------------------------------------------------------- ARC-Challenge


def arc_doc(raw: dict[str, Any]) -> dict[str, Any]:
    """One AI2 ARC row (``question.stem``, ``question.choices``) in the ``allenai/ai2_arc`` schema.

    Raises:
        ValueError: ``answerKey`` is not one of the choice labels.
    """
    choices = raw["question"]["choices"]
    labels = [c["label"] for c in choices]
    if raw["answerKey"] not in labels:
        raise ValueError(f"ARC {raw.get('id')}: answerKey {raw['answerKey']!r} not in labels {labels}")
    return {
        "id": raw["id"],
        "question": raw["question"]["stem"],
        "choices": {"text": [c["text"] for c in choices], "label": labels},
        "answerKey": raw["answerKey"],
    }


def process_docs_arc(dataset: datasets.Dataset) -> datasets.Dataset:
    """ARC rows as read by the ``json`` builder -> upstream ``arc_challenge`` documents."""
    return dataset.map(arc_doc, remove_columns=dataset.column_names)


# ---------------------------------------------------------------- HellaSwag


def preprocess_hellaswag(text: str) -> str:
    """lm-eval's ``hellaswag`` text clean-up (WikiHow ``[title]``/``[step]`` artefacts)."""
    text = text.strip()
    text = text.replace(" [title]", ". ")
    text = re.sub("\\[.*?\\]", "", text)
    return text.replace("  ", " ")


def parse_hellaswag(lines: Sequence[str]) -> list[dict[str, Any]]:
    """Group the llama.cpp HellaSwag text into tasks of 6 lines.

    Each task is ``activity_label: ctx``, the gold label (0-3), then the 4 endings. The
    file's ``ctx`` is ``ctx_a + " " + ctx_b`` as in the HF dataset; lm-eval additionally
    capitalizes ``ctx_b``, which this format cannot recover (the split point is lost), so
    queries can differ from upstream ``hellaswag`` in the case of one letter.

    Returns:
        ``{"ind", "query", "choices", "label", "gold"}`` per task, in file order.
    Raises:
        ValueError: the line count is not a multiple of 6, or a gold label is not 0-3
            (the message gives the 1-based line number).
    """
    lines = [line.rstrip("\r\n") for line in lines]
    while lines and not lines[-1].strip():  # a trailing newline at the end of the file
        lines.pop()
    if len(lines) % HELLASWAG_LINES_PER_TASK:
        raise ValueError(f"HellaSwag text has {len(lines)} lines, not a multiple of {HELLASWAG_LINES_PER_TASK}")
    docs = []
    for start in range(0, len(lines), HELLASWAG_LINES_PER_TASK):
        ctx, label, *endings = lines[start : start + HELLASWAG_LINES_PER_TASK]
        if label.strip() not in ("0", "1", "2", "3"):
            raise ValueError(f"HellaSwag line {start + 2}: gold label {label!r} is not 0-3")
        gold = int(label)
        docs.append(
            {
                "ind": start // HELLASWAG_LINES_PER_TASK,
                "query": preprocess_hellaswag(ctx),
                "choices": [preprocess_hellaswag(e) for e in endings],
                "label": gold,
                "gold": gold,
            }
        )
    return docs


def process_docs_hellaswag(dataset: datasets.Dataset) -> datasets.Dataset:
    """Lines as read by the ``text`` builder (one row a line) -> upstream ``hellaswag`` documents."""
    return datasets.Dataset.from_list(parse_hellaswag(dataset["text"]))


# ---------------------------------------------------------------- MMLU


def mmlu_subject(path: Path) -> str:
    """``abstract_algebra`` from ``abstract_algebra_test.csv`` (the hendrycks file naming)."""
    return re.sub(r"_(test|dev|val)$", "", path.stem)


def read_mmlu_csv(path: Path) -> list[dict[str, Any]]:
    """The rows of one MMLU subject file (header ``question,choice0..3,answer``, answer 0-3).

    Returns:
        ``{"question", "subject", "choices", "answer"}`` per row (the ``cais/mmlu`` schema).
    Raises:
        ValueError: another header, or an answer that is not 0-3 (names file and line).
    """
    subject = mmlu_subject(path)
    rows = []
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames != MMLU_COLUMNS:
            raise ValueError(f"{path}: header {reader.fieldnames} is not {MMLU_COLUMNS}")
        for row in reader:
            answer = row["answer"].strip()
            if answer not in ("0", "1", "2", "3"):
                raise ValueError(f"{path}:{reader.line_num}: answer {answer!r} is not 0-3")
            rows.append(
                {
                    "question": row["question"],
                    "subject": subject,
                    "choices": [row[f"choice{k}"] for k in range(4)],
                    "answer": int(answer),
                }
            )
    return rows


def interleave(groups: Sequence[Sequence[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Round-robin merge: one row of each group in turn, until all are used up."""
    return [doc for batch in itertools.zip_longest(*groups) for doc in batch if doc is not None]


def load_mmlu(data_files: DataFiles, **_: Any) -> datasets.DatasetDict:
    """All subject files of each split as one split (lm-eval ``custom_dataset``).

    Subjects are interleaved round-robin, so that ``limit`` (the first N documents) samples
    N subjects instead of N questions of ``abstract_algebra``; accuracy over all documents
    does not depend on the order. With a ``dev`` split, every other split's document also
    carries ``dev``: the dev rows of its own subject, in file order, which
    :class:`SubjectDevSampler` takes as its few-shot examples (upstream ``mmlu`` is one task
    per subject, each 5-shot from its own dev file). Other keyword arguments (lm-eval passes
    the task metadata) are ignored.

    Raises:
        FileNotFoundError: a split's files are missing.
        ValueError: a malformed file (see :func:`read_mmlu_csv`).
    """
    splits = {split: [read_mmlu_csv(p) for p in expand_files(files)] for split, files in data_files.items()}
    dev_by_subject = {rows[0]["subject"]: rows for rows in splits.get("dev", []) if rows}
    out = {}
    for split, groups in splits.items():
        docs = interleave(groups)
        if split != "dev" and dev_by_subject:
            docs = [{**d, "dev": dev_by_subject.get(d["subject"], [])} for d in docs]
        out[split] = datasets.Dataset.from_list(docs)
    return datasets.DatasetDict(out)


class SubjectDevSampler(samplers.ContextSampler):
    """lm-eval few-shot sampler: the first ``n`` dev rows of the evaluated question's subject.

    lm-eval passes the evaluated document only when the few-shot split is the test split,
    so ``rt_mmlu`` names ``test`` as both and each test document carries its subject's dev
    rows (``doc["dev"]``, see :func:`load_mmlu`). The order is the dev file's, as upstream
    ``mmlu``'s ``first_n`` sampler.

    Raises:
        ValueError: fewer than ``n`` dev rows for the subject (MMLU has 5 per subject).
    """

    def sample(self, n: int, eval_doc: dict[str, Any] | None = None, df: Any = None, **kwargs: Any) -> list:
        if n == 0:
            return []
        pool = list((eval_doc or {}).get("dev") or [])
        if len(pool) < n:
            subject = (eval_doc or {}).get("subject")
            raise ValueError(f"MMLU {n}-shot: only {len(pool)} dev rows for subject {subject!r}")
        return pool[:n]


# ---------------------------------------------------------------- TruthfulQA


def truthfulqa_doc(raw: dict[str, Any]) -> dict[str, Any]:
    """One ``mc_task.json`` row (targets as ``{answer: 0/1}``) in the ``truthful_qa`` ``multiple_choice`` schema.

    Raises:
        ValueError: a target set has no true answer.
    """

    def targets(key: str) -> dict[str, list]:
        answers = raw[key]
        labels = [int(v) for v in answers.values()]
        if 1 not in labels:
            raise ValueError(f"TruthfulQA {raw['question']!r}: {key} has no true answer")
        return {"choices": list(answers), "labels": labels}

    return {"question": raw["question"], "mc1_targets": targets("mc1_targets"), "mc2_targets": targets("mc2_targets")}


def load_truthfulqa_mc(data_files: DataFiles, **_: Any) -> datasets.DatasetDict:
    """``mc_task.json`` (a JSON array) as a split (lm-eval ``custom_dataset``).

    The ``json`` builder cannot read it: the answers are the *keys* of the target objects.

    Raises:
        FileNotFoundError: the file is missing.
        ValueError: the file is not a JSON array of rows (see :func:`truthfulqa_doc`).
    """
    splits = {}
    for split, files in data_files.items():
        docs = []
        for path in expand_files(files):
            with open(path, encoding="utf-8") as f:
                raw = json.load(f)
            if not isinstance(raw, list):
                raise ValueError(f"{path}: expected a JSON array of questions")
            docs.extend(truthfulqa_doc(r) for r in raw)
        splits[split] = datasets.Dataset.from_list(docs)
    return datasets.DatasetDict(splits)


def _process_results_mc2(doc: dict[str, Any], results: Sequence[tuple[float, bool]]) -> dict[str, float]:
    """lm-eval's ``truthfulqa_mc2``: the normalized probability mass of the true answers."""
    ll = np.array([r[0] for r in results])
    # Subtracting the max before exp keeps the normalized probabilities exact and avoids
    # underflow to 0/0 for long answers (upstream exponentiates directly).
    probs = np.exp(ll - ll.max())
    labels = np.array(doc["mc2_targets"]["labels"])
    return {"acc": float(probs[labels == 1].sum() / probs.sum())}


try:  # the upstream function, so the metric is exactly lm-eval's where it can be imported
    from lm_eval.tasks.truthfulqa.utils import process_results_mc2
except ImportError:  # its module needs sacrebleu and rouge_score, optional for lm-eval
    process_results_mc2 = _process_results_mc2
