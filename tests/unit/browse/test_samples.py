"""The browser's sample records: word diffs, branches recomputed by the select rule, statuses."""

from __future__ import annotations

from reflection_tuning.browse.samples import sample_records, word_diff


def _side(segments, keep):
    return "".join(t for op, t in segments if op in ("=", keep))


def test_word_diff_rebuilds_both_sides():
    a = "Give three tips for staying healthy.\n1. Eat well."
    b = "Give four practical tips for staying healthy!\n1. Eat well."
    d = word_diff(a, b)
    assert _side(d, "-") == a and _side(d, "+") == b
    assert ["-", "three "] in d and ["+", "four practical "] in d
    assert ["-", ".\n"] in d and ["+", "!\n"] in d


def test_word_diff_of_equal_and_empty_texts():
    assert word_diff("same text", "same text") == [["=", "same text"]]
    assert word_diff("", "") == []
    assert word_diff("", "new") == [["+", "new"]]


def _row(i, variant, status="ok", **fields):
    base = {"id": i, "instruction": f"q {variant}", "input": "", "output": f"a {variant}", "source": "s"}
    if variant == "original":
        return base
    if status != "ok":
        base.update(instruction=None, input=None, output=None, error="no [New Answer]", raw_reply="Sure! Here is")
    return {**base, "variant": variant, "status": status, **fields}


def _score(i, variant, ifd, rifd, status="ok"):
    return {"id": i, "variant": variant, "status": status, "ifd": ifd, "rifd": rifd}


def test_records_join_variants_scores_and_selection():
    variants = {
        "original": [_row("b", "original"), _row("a", "original")],
        "instruction": [_row("a", "instruction", critique="too vague"), _row("b", "instruction", "parse_error")],
        "response": [_row("a", "response"), _row("b", "response")],
        "both": [_row("a", "both"), _row("b", "both", "upstream_unusable")],
    }
    scores = [
        # a: instruction accepted (IFD higher); both has the lower r-IFD, IFD and r-IFD < 1: kept both
        _score("a", "original", 0.6, 0.9), _score("a", "instruction", 0.7, 0.5),
        _score("a", "response", 0.6, 0.7), _score("a", "both", 0.4, 0.3),
        # b: reflection failed; response not easier than the original
        _score("b", "original", 0.5, 0.2), _score("b", "response", 0.4, 0.6),
        {"id": "b", "variant": "instruction", "status": "unusable", "ifd": None, "rifd": None},
    ]
    records = sample_records(variants, scores, [{"id": "a", "variant": "both"}], "v2")
    assert [r["id"] for r in records] == ["a", "b"]
    a, b = records
    assert (a["branch"], a["kept"]) == ("both", "both")
    assert a["v"]["both"] == {"status": "ok", "ifd": 0.4, "rifd": 0.3, "note": None,
                              "diff": {"instruction": [["=", "q "], ["-", "original"], ["+", "both"]],
                                       "input": [], "output": [["=", "a "], ["-", "original"], ["+", "both"]]}}
    assert a["v"]["instruction"]["note"] == "too vague"
    assert (b["branch"], b["kept"]) == ("response_not_easier", None)
    assert b["v"]["instruction"]["status"] == "parse_error" and "diff" not in b["v"]["instruction"]
    assert b["v"]["instruction"]["note"] == "no [New Answer]" and b["v"]["instruction"]["raw"] == "Sure! Here is"
    assert b["v"]["both"]["status"] == "upstream_unusable" and b["v"]["both"]["ifd"] is None
    assert b["original"] == {"instruction": "q original", "input": "", "output": "a original"}


def test_missing_rows_and_failed_scores_have_explicit_statuses():
    variants = {"original": [_row("a", "original")], "instruction": [_row("a", "instruction")]}
    scores = [_score("a", "original", 0.5, 0.5), _score("a", "instruction", None, None, status="error")]
    (r,) = sample_records(variants, scores, [], "v2")
    assert r["v"]["instruction"]["status"] == "score_error" and r["v"]["instruction"]["ifd"] is None
    assert r["v"]["response"]["status"] == "missing" and r["branch"] == "unscored" and r["kept"] is None
