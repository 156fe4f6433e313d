"""N-gram overlap between training rows and evaluation prompts (decontamination).

The GPT-3 paper (Brown et al., 2020, arXiv 2005.14165, App. C) and lm-evaluation-harness's
decontamination flag a benchmark item as contaminated when it shares a 13-gram of words
with the training data, the text lower-cased and the punctuation removed. Here a training
row (instruction, input, output) is contaminated when it shares an ``n``-gram of words
with one prompt of an evaluation set, or when it contains the whole of a prompt shorter
than ``n`` words (many Vicuna and Koala prompts are; GPT-3 used shorter n-grams for such
benchmarks). Prompts of fewer than ``MIN_WORDS`` words ("hi") are not matched whole,
since they would flag unrelated rows.

Evaluation sets are the JSONL files of one directory (``data/eval_prompts``: Vicuna,
Koala, WizardLM, LIMA, Self-Instruct, MT-Bench); the prompt text of a row is every string
in its known prompt fields (:data:`PROMPT_FIELDS`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reflection_tuning.infra.errors import UserError
from reflection_tuning.infra.io import read_jsonl
from reflection_tuning.rows import FIELDS

DEFAULT_NGRAM = 13
MIN_WORDS = 4  # shorter prompts are never matched whole
# The prompt fields of the evaluation sets (data/eval_prompts, NOTICE; MT-Bench is not shipped):
# vicuna `text`, koala `prompt`, self-instruct `instruction` + `instances[].input`,
# wizardlm `Instruction`, lima `conversations`, mt_bench `turns`.
PROMPT_FIELDS = ("text", "prompt", "instruction", "Instruction", "conversations", "turns", "instances")
_WORD = re.compile(r"\w+")

NGram = tuple[str, ...]


def words(text: str) -> list[str]:
    """Lower-cased words without punctuation (``\\w+`` runs), the unit of the n-grams."""
    return _WORD.findall(text.lower())


def ngrams(tokens: Sequence[str], n: int) -> set[NGram]:
    """All ``n``-grams of ``tokens``; empty when there are fewer than ``n`` tokens."""
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


def _strings(value: Any, key: str = "") -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for k, v in value.items():
            if key != "instances" or k == "input":  # self-instruct: the inputs, not the reference outputs
                yield from _strings(v, key)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v, key)


def prompt_text(row: Mapping[str, Any]) -> str:
    """The prompt text of one evaluation row: every string of its :data:`PROMPT_FIELDS`, joined."""
    return "\n".join(s for name in PROMPT_FIELDS if name in row for s in _strings(row[name], name))


def training_text(row: Mapping[str, Any]) -> str:
    """The text of a training row that could leak a prompt: instruction, input and output."""
    return "\n".join(row.get(k) or "" for k in FIELDS)


def eval_set_name(path: Path) -> str:
    """``vicuna`` from ``vicuna_test_set.jsonl``, ``mt_bench`` from ``mt_bench_question.jsonl``."""
    return re.sub(r"_(test_set|question)$", "", path.stem)


def read_eval_sets(directory: str | Path) -> dict[str, list[str]]:
    """``{set name: [prompt text]}`` from every ``*.jsonl`` file of ``directory``.

    Raises:
        UserError: the directory is missing or holds no JSONL file.
        ValueError: a row without any prompt field (names the file and the row).
    """
    directory = Path(directory)
    files = sorted(directory.glob("*.jsonl")) if directory.is_dir() else []
    if not files:
        raise UserError(f"no evaluation prompt set (*.jsonl) in {directory} (select.eval_prompts_dir)")
    sets = {}
    for path in files:
        texts = [prompt_text(r) for r in read_jsonl(path)]
        empty = [i for i, t in enumerate(texts) if not t.strip()]
        if empty:
            raise ValueError(f"{path}: row {empty[0] + 1} has none of the prompt fields {PROMPT_FIELDS}")
        sets[eval_set_name(path)] = texts
    return sets


@dataclass
class Index:
    """The n-grams of the evaluation prompts, and the short prompts matched whole."""

    n: int
    grams: dict[NGram, set[tuple[str, int]]] = field(default_factory=dict)  # n-gram -> {(set, prompt index)}
    short: list[tuple[str, int, str]] = field(default_factory=list)  # (set, prompt index, " w1 w2 … ")
    sizes: dict[str, int] = field(default_factory=dict)


def build_index(eval_sets: Mapping[str, Sequence[str]], n: int = DEFAULT_NGRAM) -> Index:
    """Index every prompt of every set by its word ``n``-grams (whole, when shorter than ``n`` words).

    Raises:
        ValueError: ``n`` < 1.
    """
    if n < 1:
        raise ValueError(f"n-gram size must be >= 1, got {n}")
    index = Index(n=n, sizes={name: len(texts) for name, texts in eval_sets.items()})
    for name, texts in eval_sets.items():
        for i, text in enumerate(texts):
            tokens = words(text)
            if len(tokens) >= n:
                for gram in ngrams(tokens, n):
                    index.grams.setdefault(gram, set()).add((name, i))
            elif len(tokens) >= MIN_WORDS:
                index.short.append((name, i, f" {' '.join(tokens)} "))
    return index


def matches(text: str, index: Index) -> dict[str, set[int]]:
    """``{set name: {prompt indices}}`` of the prompts that ``text`` overlaps (empty: clean)."""
    tokens = words(text)
    found: dict[str, set[int]] = {}
    for gram in ngrams(tokens, index.n):
        for name, i in index.grams.get(gram, ()):
            found.setdefault(name, set()).add(i)
    if index.short:
        joined = f" {' '.join(tokens)} "
        for name, i, phrase in index.short:
            if phrase in joined:
                found.setdefault(name, set()).add(i)
    return found


def overlap_report(rows: Sequence[Mapping[str, Any]], index: Index) -> tuple[dict[str, Any], dict[Any, list[str]]]:
    """Contamination counts of the training ``rows`` against every indexed set.

    Returns:
        (flat metrics: ``decontaminate_ngram``, ``contaminated_rows`` (rows overlapping any
        set), and per set ``eval_prompts_<set>``, ``contaminated_rows_<set>`` (training rows
        overlapping it) and ``contaminated_prompts_<set>`` (its prompts found in a row);
        ``{row id: [sets]}`` of the contaminated rows).
    """
    by_row: dict[Any, list[str]] = {}
    rows_per_set = dict.fromkeys(index.sizes, 0)
    prompts_per_set: dict[str, set[int]] = {name: set() for name in index.sizes}
    for row in rows:
        found = matches(training_text(row), index)
        if found:
            by_row[row.get("id")] = sorted(found)
        for name, prompts in found.items():
            rows_per_set[name] += 1
            prompts_per_set[name] |= prompts
    metrics: dict[str, Any] = {"decontaminate_ngram": index.n, "contaminated_rows": len(by_row)}
    for name in sorted(index.sizes):
        metrics[f"eval_prompts_{name}"] = index.sizes[name]
        metrics[f"contaminated_rows_{name}"] = rows_per_set[name]
        metrics[f"contaminated_prompts_{name}"] = len(prompts_per_set[name])
    return metrics, by_row
