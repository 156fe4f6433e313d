"""Whether a reply is whole: the repetition ratio (Data-Juicer's word_repetition_filter), a
field at its bound, a field that copies another. The steps' use of them:
tests/unit/steps/test_reflect_instruction.py."""

from __future__ import annotations

from reflection_tuning.steps.checks import ReplyChecks, bounds_sentence, repetition_ratio, whole

CHECKS = ReplyChecks({"critique": 60, "output": 80}, 0.5, 3)
ROW = {"instruction": "Name a colour.", "output": "Red."}


def test_repetition_ratio_counts_the_ngrams_that_repeat():
    assert repetition_ratio("a b c d e f", 3) == 0.0
    assert repetition_ratio("a b c a b c", 3) == 0.5  # 4 trigrams; "a b c" twice
    assert repetition_ratio("The instruction is weak. " * 10, 3) == 1.0
    assert repetition_ratio("too short", 10) == 0.0


def test_whole_names_the_first_failing_field():
    ok = {"critique": "Too brief.", "output": "Red, the colour of blood."}
    assert whole(ok, ROW, CHECKS, structured=True)[0] is None
    cut, _ = whole({**ok, "output": "x" * 80}, ROW, CHECKS, structured=True)
    assert cut.status == "truncated" and "output" in cut.reason and "80" in cut.reason
    assert whole({**ok, "output": "x" * 80}, ROW, CHECKS, structured=False)[0] is None  # no decoder bound
    rep, ratio = whole({**ok, "output": "red is red " * 5}, ROW, CHECKS, structured=False)
    assert rep.status == "repetitive" and ratio > 0.5
    assert whole({**ok, "output": "Red."}, ROW, CHECKS, structured=False)[0].status == "copy"
    short = whole({"critique": "The answer Paris is right but terse and gives no reason at all.", "output": "Paris"},
                  {"output": "x"}, CHECKS, structured=False)[0]
    assert short is None  # a short answer the critique quotes is no copy


def test_the_bounds_are_said_in_the_fields_words():
    said = bounds_sentence({"output": 1500}, {"output": "the better answer"})
    assert "the better answer at most 1500 characters" in said
