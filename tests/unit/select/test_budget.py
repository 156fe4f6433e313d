"""The budget: its value, and the cuts of random, length, the seeded sample and facility location."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from reflection_tuning.infra.errors import UserError
from reflection_tuning.select.budget import cut_length, cut_random, cut_to_budget, resolve_budget
from reflection_tuning.select.rules import BRANCHES, select_one

ROWS = [{"id": f"r{i}", "output": "x" * (i % 4)} for i in range(10)]


def test_random_baseline_is_seeded_and_order_free():
    a = cut_random(ROWS, 4, seed=0)
    assert len(a) == 4 and a == sorted(a, key=lambda r: r["id"])
    assert cut_random(list(reversed(ROWS)), 4, seed=0) == a  # same ids, same sample
    assert cut_random(ROWS, 4, seed=1) != a
    assert cut_random(ROWS, 20, seed=0) == sorted(ROWS, key=lambda r: r["id"])
    # uniform: over many seeds every row is picked about 4/10 of the time
    counts = {r["id"]: 0 for r in ROWS}
    for seed in range(2000):
        for r in cut_random(ROWS, 4, seed):
            counts[r["id"]] += 1
    assert all(abs(c / 2000 - 0.4) < 0.05 for c in counts.values())


def test_length_baseline_keeps_the_longest_ties_by_id():
    tokens = {r["id"]: len(r["output"]) for r in ROWS}
    assert [r["id"] for r in cut_length(ROWS, 4, tokens)] == ["r3", "r7", "r2", "r6"]
    assert len(cut_length(ROWS, 0, tokens)) == 0 and len(cut_length(ROWS, 99, tokens)) == 10


def test_budget_int_or_match():
    assert resolve_budget(None) is None and resolve_budget(5) == 5 and resolve_budget(0) == 0
    assert resolve_budget({"match": "v2"}, lambda m: {"v2": 7}[m]) == 7
    for bad in (-1, True, {"match": "v9"}, {"top": 3}, "5"):
        with pytest.raises(ValueError):
            resolve_budget(bad, lambda m: 0)
    assert {"random", "length"} <= set(BRANCHES) and select_one("random", {}, {"original": True}) == (
        "original", "original")


def _cfg(method="v1", diversity=None, seed=0):
    return SimpleNamespace(method=method, diversity=diversity, seed=seed)


def test_cut_to_budget_follows_the_method():
    """No cut at or under the budget (but random always samples); length by tokens; the rest sampled."""
    assert cut_to_budget(_cfg(), ROWS, None) == (ROWS, None)
    assert cut_to_budget(_cfg(), ROWS, 10) == (ROWS, None)
    assert cut_to_budget(_cfg("random"), list(reversed(ROWS)), 10)[0] == sorted(ROWS, key=lambda r: r["id"])
    assert cut_to_budget(_cfg("v2", seed=3), ROWS, 4) == (cut_random(ROWS, 4, 3), None)
    assert [r["id"] for r in cut_to_budget(_cfg("length"), ROWS, 2, count_tokens=len)[0]] == ["r3", "r7"]
    with pytest.raises(UserError, match="tokenizer"):
        cut_to_budget(_cfg("length"), ROWS, 2)


def test_cut_to_budget_by_facility_location_asks_for_the_vectors_of_its_rows():
    rows = [{"id": f"r{i}", "variant": "both"} for i in range(4)]
    asked = []

    def vectors(keys):
        asked.extend(keys)
        return np.array([[1.0, 0.0], [1.0, 0.01], [-1.0, 0.0], [-1.0, 0.01]])

    kept, coverage = cut_to_budget(_cfg(diversity="facility_location"), rows, 2, vectors=vectors)
    assert asked == [(r["id"], "both") for r in rows]
    assert len({r["id"][1] in "01" for r in kept}) == 2 and 0.9 < coverage <= 1.0  # one row of each cluster
    with pytest.raises(UserError, match="score.embed"):
        cut_to_budget(_cfg(diversity="facility_location"), rows, 2)
