"""Stage ``select``: pick the training rows from the four variants and their scores.

``method`` (see :mod:`reflection_tuning.select`): ``v2`` (Selective Reflection-Tuning,
student-selected by IFD / r-IFD), ``v1`` (Reflection-Tuning, the recycled pairs) or
``original``. Then ``top_k`` / ``ratio`` optionally keep the highest-IFD rows only: rows
with IFD >= 1 or no usable IFD are dropped first (``dropped_ifd_ge1``,
``dropped_unscored``), then IFD descending (Cherry LLM; :func:`selection.rank_limit`).
Writes ``data/K/selected.jsonl`` and ``metrics/K/select.json``, which counts every branch
(the ``branch_*`` counts sum to ``read``).

Budget (``budget``: an int, or ``{match: v2}``) and baselines: ``random`` and ``length``
keep the original rows cut to the budget by their own rule; another method that keeps
more rows than the budget is cut by a seeded uniform sample (``seed``), or with
``diversity: facility_location`` by greedy facility location over the embeddings the
score stage stored (``data/K/embeddings.npz``, ``score.embed: true``;
:mod:`reflection_tuning.diversity`), which reports ``diversity_coverage``.

Teacher–student compatibility (:mod:`reflection_tuning.compatibility`): how IFD and r-IFD
moved from the original to the candidate v2 weighed, and the share accepted, per teacher:
``compat_*`` metrics, ``metrics/K/select_shift.csv`` (plot) and ``select_compat.csv`` (table).

Decontamination (:mod:`reflection_tuning.decontamination`): the selected rows are checked
for word ``decontaminate_ngram``-gram overlap with every prompt set under
``eval_prompts_dir``, and the counts per set go to the metrics; with ``decontaminate:
true`` the contaminated rows are dropped (before ``top_k`` / ``ratio``) and written to
``data/K/select_rejects.jsonl`` with their reason and sets (``kept_before_rank =
dropped_contaminated + dropped_ifd_ge1 + dropped_unscored + dropped_by_rank +
dropped_by_budget + kept``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import reflection_tuning.compatibility as compatibility
from reflection_tuning.decontamination import read_eval_sets
from reflection_tuning.infra.command import PathSpec, Section, Stage
from reflection_tuning.infra.io import read_index, write_jsonl, write_metrics
from reflection_tuning.rows import VARIANTS
from reflection_tuning.select import Config, select
from reflection_tuning.student import StudentConfig

__all__ = ["STAGE", "Config", "Inputs", "Outputs", "main", "run"]


def run(cfg: Config, inputs: Inputs, outputs: Outputs, count_tokens: Callable[[str], int] | None = None) -> dict:
    """Read the rows, select (:func:`reflection_tuning.select.select`), write the outputs; returns the metrics.

    ``count_tokens``: a response's length in the student's tokens (method ``length``).

    Raises:
        ValueError: a repeated id, or a bad row file.
        UserError: see :func:`reflection_tuning.decontamination.read_eval_sets` and
            :func:`reflection_tuning.select.budget.cut_to_budget`.
    """
    variants = {v: read_index(getattr(inputs, v)) for v in VARIANTS}
    scores = read_index(inputs.scores, ("id", "variant"))
    eval_sets = None if cfg.eval_prompts_dir is None else read_eval_sets(Path(cfg.eval_prompts_dir))
    result = select(cfg, variants, scores, eval_sets, count_tokens, _embeddings(inputs.embeddings))
    write_jsonl(outputs.selected, result.rows)
    if outputs.rejects is not None:
        write_jsonl(outputs.rejects, result.rejects)
    if outputs.shift is not None and outputs.compat is not None:
        compatibility.write_csvs(outputs.shift, outputs.compat, result.shifts)
    write_metrics(outputs.metrics, result.metrics)
    return result.metrics


def _embeddings(path: Path | None) -> Callable[[Sequence[tuple[str, str]]], Any]:
    """The stored vectors of (id, variant) keys, read from ``path`` when asked (numpy loads then)."""
    def load(keys: Sequence[tuple[str, str]]) -> Any:
        from reflection_tuning.score.embed import load_embeddings

        return load_embeddings(path, keys)

    return load


def _token_counter(model: str) -> Callable[[str], int]:
    """A text's length in the tokens of ``model``'s tokenizer, loaded on the first call."""
    tokenizer = None

    def count(text: str) -> int:
        nonlocal tokenizer
        if tokenizer is None:
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(model)
        return len(tokenizer(text, add_special_tokens=False).input_ids)

    return count


def _data(name: str, **kw: Any) -> PathSpec:
    return PathSpec(f"data/{{dataset}}/{name}", **kw)


STAGE = Stage(
    "select", __doc__,
    sections=(Section(Config, "select"), Section(StudentConfig, "student")),
    # select.eval_prompts_dir is read from the config (a dep ${select.eval_prompts_dir} in dvc.yaml)
    inputs={"scores": _data("scores.jsonl"), **{v: _data(f"{v}.jsonl") for v in VARIANTS},
            "embeddings": _data("embeddings.npz", optional=True)},
    outputs={"selected": _data("selected.jsonl", flag="output"),
             "metrics": "metrics/{dataset}/select.json",
             "rejects": _data("select_rejects.jsonl", optional=True),
             "shift": PathSpec("metrics/{dataset}/select_shift.csv", optional=True),
             "compat": PathSpec("metrics/{dataset}/select_compat.csv", optional=True)},
    invoke=lambda call: run(call.configs[0], Inputs(**call.inputs), Outputs(**call.outputs),
                            _token_counter(call.configs[1].model)),
)
Inputs, Outputs = STAGE.io(__name__)


def main(argv: list[str] | None = None) -> int:
    return STAGE.main(argv)
