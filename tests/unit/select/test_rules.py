from __future__ import annotations

import pytest

from reflection_tuning.select.rules import (
    BRANCHES,
    KEPT_BRANCHES,
    select_one,
    select_rows,
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


def test_select_rows_keeps_the_rule_variant_with_its_text_and_scores():
    """One row per kept sample, its text from the kept variant and its IFD / r-IFD only when usable."""
    teacher = {v: {i: {"id": i, "instruction": f"{v} q{i}", "input": None, "output": f"{v} a{i}", "source": "t",
                       "status": "ok" if (v, i) != ("both", "b") else "parse_error"} for i in ("a", "b")}
               for v in ("original", "instruction", "response", "both")}
    scores = {("a", "both"): s(0.9, 0.5, "nan"), ("b", "instruction"): s(0.7, 0.6)}
    rows, branches = select_rows("v1", ["a", "b"], teacher, scores)
    assert [(r["id"], r["variant"], r["output"], r["input"]) for r in rows] == [
        ("a", "both", "both aa", ""), ("b", "instruction", "instruction ab", "")]
    assert (rows[0]["ifd"], rows[1]["ifd"], rows[1]["rifd"]) == (None, 0.7, 0.6)  # a failed score reads None
    assert branches == {"both": 1, "instruction_fallback": 1}
    with pytest.raises(ValueError, match="unknown selection method"):
        select_rows("v3", ["a"], teacher, scores)
