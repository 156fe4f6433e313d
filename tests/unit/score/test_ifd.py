from __future__ import annotations

import math

import pytest

from reflection_tuning.score.ifd import TERMS, Ratio, ifd, perplexity, ratio, ratio_status, rifd, score_fields


def test_perplexity_is_exp_of_the_mean_nll():
    assert perplexity(0.0) == 1.0
    assert perplexity(math.log(7.5)) == pytest.approx(7.5)


@pytest.mark.parametrize("bad", [None, float("nan"), float("inf"), -0.5, 1e6, True, "1.0"])
def test_perplexity_of_a_bad_loss_is_none(bad):
    assert perplexity(bad) is None


def test_ifd_and_rifd_are_ratios_of_perplexities():
    assert ifd(2.0, 4.0) == Ratio(0.5, "ok")
    assert rifd(3.0, 2.0) == Ratio(1.5, "ok")
    assert ifd(2.0, 4.0, tokens_a_given_q=5, tokens_a=4) == Ratio(0.5, "ok")


@pytest.mark.parametrize(
    "num, den, tn, td, status",
    [
        (None, 2.0, None, None, "nan"),
        (2.0, None, None, None, "nan"),
        (float("nan"), 2.0, None, None, "nan"),
        (2.0, float("inf"), None, None, "nan"),
        (2.0, 0.0, None, None, "nan"),
        (0.0, 2.0, None, None, "nan"),
        (2.0, 2.0, 0, 3, "empty"),
        (2.0, 2.0, 3, 0, "empty"),
    ],
)
def test_failures_are_explicit_never_zero(num, den, tn, td, status):
    # The reference returned 0 on failure, which then passed every `< 1` filter.
    r = ratio(num, den, tn, td)
    assert r.value is None and r.status == status
    assert ifd(num, den, tn, td) == r == rifd(num, den, tn, td)


def test_score_fields_ok():
    losses = {"a_given_q": math.log(2), "a": math.log(4), "q_given_a": math.log(3), "q": math.log(6)}
    tokens = dict.fromkeys(TERMS, 5)
    f = score_fields(losses, tokens)
    assert (f["status"], f["ifd_status"], f["rifd_status"]) == ("ok", "ok", "ok")
    assert f["ifd"] == pytest.approx(0.5) and f["rifd"] == pytest.approx(0.5)
    assert f["ppl_a"] == pytest.approx(4.0) and f["loss_q"] == pytest.approx(math.log(6))
    assert f["tokens_a_given_q"] == 5
    assert set(f) == {"status", "ifd_status", "rifd_status", "ifd", "rifd"} | {
        f"{k}_{t}" for k in ("ppl", "loss", "tokens") for t in TERMS}


def test_a_failed_rifd_keeps_the_ifd():
    losses = {"a_given_q": math.log(2), "a": math.log(4), "q_given_a": float("nan"), "q": math.log(6)}
    f = score_fields(losses, dict.fromkeys(TERMS, 5))
    assert (f["status"], f["ifd_status"], f["rifd_status"]) == ("nan", "ok", "nan")
    assert f["ifd"] == pytest.approx(0.5) and f["rifd"] is None
    assert f["ppl_a"] == pytest.approx(4.0) and f["ppl_q_given_a"] is None
    assert f["loss_q_given_a"] is None and f["loss_a"] == pytest.approx(math.log(4))
    # a reverse prompt that filled max_length: no Q token scored
    f = score_fields({**losses, "q_given_a": None}, {**dict.fromkeys(TERMS, 5), "q_given_a": 0})
    assert (f["status"], f["ifd_status"], f["rifd_status"]) == ("empty", "ok", "empty")
    assert f["ifd"] == pytest.approx(0.5)


def test_a_failed_ifd_keeps_the_rifd():
    losses = {"a_given_q": 1.0, "a": None, "q_given_a": math.log(3), "q": math.log(6)}
    f = score_fields(losses, {**dict.fromkeys(TERMS, 5), "a": 0})
    assert (f["status"], f["ifd_status"], f["rifd_status"]) == ("empty", "empty", "ok")
    assert f["ifd"] is None and f["rifd"] == pytest.approx(0.5)


def test_ratio_status_reads_old_rows():
    assert ratio_status({"status": "nan", "ifd_status": "ok"}, "ifd") == "ok"
    assert ratio_status({"status": "nan"}, "rifd") == "nan"
