from __future__ import annotations

import pytest

from reflection_tuning.compatibility import metrics, shifts, table


def s(ifd, rifd):
    return {"status": "ok", "ifd_status": "ok", "rifd_status": "ok", "ifd": ifd, "rifd": rifd}


def test_shift_per_teacher_and_candidate():
    scores = {
        # a: Q* accepted (0.7 > 0.5), both easier and < 1: kept
        ("a", "original"): s(0.5, 0.8), ("a", "instruction"): s(0.7, 0.6), ("a", "both"): s(0.9, 0.5),
        # b: Q* rejected, response not easier: not kept
        ("b", "original"): s(0.7, 0.6), ("b", "instruction"): s(0.5, 0.8), ("b", "response"): s(0.4, 0.9),
        # c: Q* rejected, response kept
        ("c", "original"): s(0.7, 0.6), ("c", "instruction"): s(0.5, 0.8), ("c", "response"): s(0.3, 0.2),
        # d: no scores usable: no shift
        ("d", "original"): {"status": "nan", "ifd": None, "rifd": None},
    }
    variants = {"both": {"a": {"teacher_model": "gpt-4"}},
                "response": {"b": {"teacher_model": "gpt-4"}, "c": {"teacher_model": "smol"}}}
    rows = {r["id"]: r for r in shifts(["a", "b", "c", "d"], variants, scores)}
    assert set(rows) == {"a", "b", "c"}
    assert rows["a"]["candidate"] == "both" and rows["a"]["accepted"] is True
    assert rows["a"]["ifd_shift"] == pytest.approx(0.4) and rows["a"]["rifd_shift"] == pytest.approx(-0.3)
    assert rows["b"]["accepted"] is False and rows["b"]["rifd_shift"] == pytest.approx(0.3)
    t = {(r["teacher"], r["candidate"]): r for r in table(list(rows.values()))}
    assert t["gpt-4", "response"]["accepted_share"] == 0 and t["smol", "response"]["accepted"] == 1
    m = metrics(list(rows.values()))
    assert m["compat_response_samples"] == 2 and m["compat_response_accepted_share"] == 0.5
    assert m["compat_both_rifd_shift_median"] == pytest.approx(-0.3)
    assert metrics([])["compat_both_accepted_share"] is None
