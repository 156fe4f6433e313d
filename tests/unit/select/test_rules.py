from __future__ import annotations

import pytest

from reflection_tuning.select import (
    BRANCHES,
    KEPT_BRANCHES,
    Ranked,
    cut_length,
    cut_random,
    rank_limit,
    resolve_budget,
    select_one,
    select_v1,
    select_v2,
    usable_score,
)


def s(ifd, rifd, status="ok"):
    return {"status": status, "ifd": ifd, "rifd": rifd}


# original / instruction IFDs decide the branch; then r-IFD comparisons and the < 1 filters.
ACCEPT = {"original": s(0.5, 0.8), "instruction": s(0.7, 0.6)}  # IFD(ins) > IFD(ori)
REJECT = {"original": s(0.7, 0.6), "instruction": s(0.5, 0.8)}  # IFD(ins) < IFD(ori)


@pytest.mark.parametrize(
    "scores, expected",
    [
        ({**ACCEPT, "both": s(0.9, 0.5), "response": s(0.1, 0.1)}, ("both", "both")),
        ({**ACCEPT, "both": s(0.9, 0.6), "response": s(0.1, 0.1)}, (None, "both_not_easier")),  # equal r-IFD
        ({**ACCEPT, "both": s(0.9, 0.7), "response": s(0.1, 0.1)}, (None, "both_not_easier")),
        ({**ACCEPT, "both": s(1.0, 0.5), "response": s(0.1, 0.1)}, (None, "both_filtered")),  # IFD = 1
        ({"original": s(0.5, 1.5), "instruction": s(0.7, 1.3), "both": s(0.9, 1.1)}, (None, "both_filtered")),
        ({**REJECT, "response": s(0.9, 0.5), "both": s(0.1, 0.1)}, ("response", "response")),
        ({**REJECT, "response": s(0.9, 0.6)}, (None, "response_not_easier")),
        ({**REJECT, "response": s(1.2, 0.5)}, (None, "response_filtered")),
        ({"original": s(0.8, 1.4), "instruction": s(0.5, 0.8), "response": s(0.9, 1.2)}, (None, "response_filtered")),
        # IFD(instruction) == IFD(original) is not "greater": the instruction is rejected
        ({"original": s(0.5, 0.8), "instruction": s(0.5, 0.1), "response": s(0.9, 0.5)}, ("response", "response")),
    ],
)
def test_v2_branches(scores, expected):
    assert select_v2(scores) == expected
    assert expected[1] in BRANCHES["v2"]


@pytest.mark.parametrize(
    "scores",
    [
        # no usable instruction: rejected, and then the response's score has failed
        {"original": s(0.5, 0.8), "both": s(0.1, 0.1), "response": s(None, None, "nan")},
        {**ACCEPT, "instruction": s(None, None, "unusable"), "both": s(0.1, 0.1), "response": s(0.1, 0.1, "empty")},
        {**ACCEPT, "both": s(None, None, "nan"), "response": s(0.1, 0.1)},
        {**ACCEPT, "both": s(None, None, "empty")},
        # a failed score the old scorer wrote as 0 would pass every filter: here it is never used
        {**ACCEPT, "both": s(0, 0, "nan")},
        {**ACCEPT, "both": s(0.9, float("nan"))},
        {**REJECT, "response": s(None, None, "unusable")},
        {**REJECT, "original": {"status": "ok", "ifd": 0.7, "rifd": None}, "response": s(0.1, 0.1)},
    ],
)
def test_v2_failed_scores_are_never_selected(scores):
    assert select_v2(scores) == (None, "unscored")


@pytest.mark.parametrize("instruction", [None, s(None, None, "unusable"), s(None, None, "nan")])
def test_v2_unusable_instruction_is_rejected_not_fatal(instruction):
    scores = {"original": s(0.5, 0.8), "response": s(0.4, 0.5), "both": s(0.1, 0.1)}
    if instruction is not None:
        scores["instruction"] = instruction
    assert select_v2(scores) == ("response", "response")  # never `both`: Q* was not accepted


def test_v2_kept_variant_must_have_its_text():
    scores = {**ACCEPT, "both": s(0.9, 0.5)}
    assert select_one("v2", scores, {"both": True}) == ("both", "both")
    assert select_one("v2", scores, {"both": False}) == (None, "unscored")


def test_v1_keeps_the_recycled_pair_and_falls_back():
    all_ok = dict.fromkeys(("original", "instruction", "response", "both"), True)
    assert select_v1(all_ok) == ("both", "both")
    assert select_v1({**all_ok, "both": False}) == ("instruction", "instruction_fallback")
    assert select_v1({"original": True}) == ("original", "original_fallback")
    assert select_v1({}) == (None, "unusable")
    assert select_one("v1", {}, all_ok) == ("both", "both")  # v1 needs no scores


def test_original_keeps_originals():
    assert select_one("original", {}, {"original": True}) == ("original", "original")
    assert select_one("original", {}, {"original": False}) == (None, "unusable")


def test_every_kept_branch_is_known():
    for method, branches in BRANCHES.items():
        assert len(set(branches)) == len(branches), method
    assert {b for bs in BRANCHES.values() for b in bs} >= KEPT_BRANCHES


def test_unknown_method():
    with pytest.raises(ValueError, match="unknown selection method 'v3'"):
        select_one("v3", {}, {})


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


def test_failed_rifd_does_not_hide_the_ifd():
    """IFD and r-IFD are independent: a failed r-IFD only removes the comparisons that need it."""
    def row(ifd, rifd, ifd_status="ok", rifd_status="ok"):
        return {"status": ifd_status if ifd_status != "ok" else rifd_status, "ifd_status": ifd_status,
                "rifd_status": rifd_status, "ifd": ifd, "rifd": rifd}

    # the instruction's r-IFD failed; its IFD still decides that Q* is accepted, and the
    # both-vs-instruction r-IFD comparison, which needs it, is what fails
    scores = {"original": row(0.5, 0.8), "instruction": row(0.7, None, rifd_status="empty"),
              "both": row(0.9, 0.5), "response": row(0.1, 0.1)}
    assert usable_score(scores["instruction"], "ifd") == 0.7
    assert select_v2(scores) == (None, "unscored")
    # the original's r-IFD failed but Q* is accepted: both vs instruction does not need it
    scores = {"original": row(0.5, None, rifd_status="nan"), "instruction": row(0.7, 0.6), "both": row(0.9, 0.5)}
    assert select_v2(scores) == ("both", "both")
    # the instruction's IFD failed: rejected (no evidence it is better); the response branch
    # needs only the original's r-IFD and the response's scores
    scores = {"original": row(0.7, 0.6), "instruction": row(None, 0.1, ifd_status="empty"),
              "response": row(0.9, 0.5)}
    assert select_v2(scores) == ("response", "response")


@pytest.mark.parametrize("kw", [{"top_k": 1, "ratio": 0.5}, {"top_k": -1}, {"ratio": 1.5}])
def test_rank_limit_rejects_bad_limits(kw):
    with pytest.raises(ValueError):
        rank_limit([], **kw)


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
