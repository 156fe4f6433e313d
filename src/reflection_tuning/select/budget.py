"""The budget: how many rows a selection keeps, and how a selection that keeps more is cut.

``select.budget`` (an int, or ``{match: v2}``: as many rows as v2 keeps on the same scores,
:func:`resolve_budget`) sets the rows kept, so that methods compare on equal terms. A
method that keeps more is cut to the budget (:func:`cut_to_budget`): ``random`` (Xia et al.,
arXiv 2410.09335: random is a hard baseline for selection) by a seeded uniform sample,
``length`` (Zhao et al., arXiv 2402.04833) by the longest responses in the student's tokens,
the others by a seeded uniform sample, or with ``diversity: facility_location`` by greedy
facility location over the stored embeddings (:mod:`reflection_tuning.diversity`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from reflection_tuning.infra.errors import UserError
from reflection_tuning.select.rules import METHODS

if TYPE_CHECKING:
    from reflection_tuning.select.config import Config

# The stored vectors of (id, variant) keys, in that order: ``[len(keys), d]`` (``score.embed.load_embeddings``).
Vectors = Callable[[Sequence[tuple[str, str]]], Any]


def resolve_budget(budget: int | Mapping[str, str] | None, match_count: Any = None) -> int | None:
    """The number of rows to keep: ``budget`` itself, or for ``{match: v2}`` ``match_count("v2")``.

    Args:
        budget: None (no budget), an int >= 0, or ``{"match": method}``.
        match_count: ``method -> rows that method keeps`` (called only for ``match``).
    Raises:
        ValueError: a negative int, or a mapping that is not ``{match: <method>}``.
    """
    if budget is None:
        return None
    if isinstance(budget, bool):
        raise ValueError(f"budget must be an int or {{match: v2}}, got {budget!r}")
    if isinstance(budget, int):
        if budget < 0:
            raise ValueError(f"budget must be >= 0, got {budget}")
        return budget
    if isinstance(budget, Mapping) and set(budget) == {"match"} and budget["match"] in METHODS:
        return int(match_count(budget["match"]))
    raise ValueError(f"budget must be an int or {{match: <method>}} with a method of {METHODS}, got {budget!r}")


def cut_random(rows: Sequence[Mapping[str, Any]], n: int, seed: int) -> list[Mapping[str, Any]]:
    """A seeded uniform sample of ``n`` rows (all if fewer), in ``id`` order.

    The sample depends only on the seed and the set of ids (the rows are sorted by ``id``
    first), not on the order they come in.
    """
    import random

    ordered = sorted(rows, key=lambda r: str(r.get("id", "")))
    if n >= len(ordered):
        return ordered
    keep = sorted(random.Random(seed).sample(range(len(ordered)), n))
    return [ordered[i] for i in keep]


def cut_length(rows: Sequence[Mapping[str, Any]], n: int, tokens: Mapping[Any, int]) -> list[Mapping[str, Any]]:
    """The ``n`` rows with the longest responses: ``tokens[id]`` descending, ties by ``id``.

    Args:
        tokens: response length of each row, in tokens of the student's tokenizer.
    Raises:
        KeyError: a row without a length.
    """
    ranked = sorted(rows, key=lambda r: (-tokens[r["id"]], str(r["id"])))
    return ranked[:n]


def cut_to_budget(cfg: Config, rows: Sequence[Mapping[str, Any]], budget: int | None,
                  count_tokens: Callable[[str], int] | None = None,
                  vectors: Vectors | None = None) -> tuple[list[Mapping[str, Any]], float | None]:
    """``rows`` cut to ``budget`` by the rule of ``cfg.method`` (and ``cfg.diversity``, ``cfg.seed``).

    Args:
        count_tokens: a response's length in the student's tokens (method ``length``).
        vectors: the stored embeddings of (id, variant) keys (``diversity: facility_location``).
    Returns:
        (the rows kept, the facility-location coverage or None).
    Raises:
        UserError: ``length`` without ``count_tokens``, or diversity without ``vectors``; and
            whatever ``vectors`` raises (no stored embeddings).
    """
    if budget is None or (len(rows) <= budget and cfg.method != "random"):
        return list(rows), None
    if cfg.method == "length":
        if count_tokens is None:
            raise UserError("select: method length needs the student's tokenizer")
        return cut_length(rows, budget, {r["id"]: count_tokens(r["output"]) for r in rows}), None
    if cfg.diversity == "facility_location":
        if vectors is None:
            raise UserError("select: diversity needs the embeddings of the score stage (score.embed: true)")
        from reflection_tuning.diversity import facility_location

        ordered = sorted(rows, key=lambda r: str(r["id"]))
        picked = facility_location(vectors([(r["id"], r["variant"]) for r in ordered]), budget)
        return [ordered[i] for i in picked.indices], picked.coverage
    return cut_random(rows, budget, cfg.seed), None
