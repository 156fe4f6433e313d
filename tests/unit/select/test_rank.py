"""Cherry LLM's IFD ranking: IFD >= 1 and unscored rows dropped first, then IFD descending."""

from __future__ import annotations

import pytest

from reflection_tuning.select.rank import Ranked, rank_limit


def test_rank_limit_highest_ifd_first_ties_by_id():
    rows = [{"id": "c", "ifd": 0.5}, {"id": "a", "ifd": 0.9}, {"id": "b", "ifd": 0.5}, {"id": "e", "ifd": 0.1}]
    assert [r["id"] for r in rank_limit(rows, top_k=2).rows] == ["a", "b"]
    assert [r["id"] for r in rank_limit(rows, top_k=10).rows] == ["a", "b", "c", "e"]
    assert [r["id"] for r in rank_limit(rows, ratio=0.5).rows] == ["a", "b"]
    assert [r["id"] for r in rank_limit(rows, ratio=0.6).rows] == ["a", "b"]  # floor
    assert rank_limit(rows, top_k=0) == Ranked([], 0, 0, 4)
    assert rank_limit(rows) == Ranked(rows, 0, 0, 0)  # no limit: the selection as it is


def test_rank_limit_drops_ifd_ge_1_and_unscored_before_ranking():
    """Cherry LLM / Superfiltering: IFD >= 1 means the instruction does not help; never ranked first."""
    rows = [{"id": "a", "ifd": 3.0}, {"id": "b", "ifd": 1.0}, {"id": "c", "ifd": 0.99}, {"id": "d", "ifd": None},
            {"id": "e", "ifd": 0.2}, {"id": "f", "ifd": float("nan")}, {"id": "g", "ifd": 0.5}]
    r = rank_limit(rows, top_k=2)
    assert [x["id"] for x in r.rows] == ["c", "g"]
    assert (r.dropped_ifd_ge1, r.dropped_unscored, r.dropped_by_rank) == (2, 2, 1)
    r = rank_limit(rows, top_k=5)
    assert [x["id"] for x in r.rows] == ["c", "g", "e"] and r.dropped_by_rank == 0
    # ratio: of the rows left after the filter (Cherry_LLM data_by_IFD.py)
    assert [x["id"] for x in rank_limit(rows, ratio=2 / 3).rows] == ["c", "g"]
    r = rank_limit(rows, ratio=1.0)
    assert len(rows) == len(r.rows) + r.dropped_ifd_ge1 + r.dropped_unscored + r.dropped_by_rank


@pytest.mark.parametrize("kw", [{"top_k": 1, "ratio": 0.5}, {"top_k": -1}, {"ratio": 1.5}])
def test_rank_limit_rejects_bad_limits(kw):
    with pytest.raises(ValueError):
        rank_limit([], **kw)
