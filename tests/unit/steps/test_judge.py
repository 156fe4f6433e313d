"""The judge's pure core: prompt, schema, score parsing, the two-order rule, the tallies, the rows."""

from __future__ import annotations

import jsonschema
import pytest

from reflection_tuning.steps import judge as j


def test_shipped_prompt_loads_and_fills_in_one_pass():
    prompt = j.JudgeStep.load().prompt
    msgs = prompt.messages(question="What is 2+2?", answer_1="It is {answer_2}.", answer_2="4")
    assert [m["role"] for m in msgs] == ["system", "user"]
    user = msgs[1]["content"]
    assert "What is 2+2?" in user and "It is {answer_2}." in user  # an answer is never re-filled
    assert user.index("It is {answer_2}.") < user.index("\n4\n")
    assert "1 to 10" in user and "first line" in user


def test_template_without_placeholder_is_refused(tmp_path):
    (tmp_path / "t.txt").write_text("{{ question }} {{ answer_1 }}")
    (tmp_path / "s.txt").write_text("")
    with pytest.raises(ValueError, match="answer_2"):
        j.JudgeStep.load(tmp_path / "t.txt", tmp_path / "s.txt")


def test_empty_system_prompt_sends_no_system_message(tmp_path):
    (tmp_path / "t.j2").write_text("{{ question }} {{ answer_1 }} {{ answer_2 }}")
    (tmp_path / "s.txt").write_text("  \n")
    prompt = j.JudgeStep.load(tmp_path / "t.j2", tmp_path / "s.txt").prompt
    assert [m["role"] for m in prompt.messages(question="q", answer_1="a", answer_2="b")] == ["user"]


def test_the_schema_has_integer_scores_and_an_explanation_bounded_where_asked():
    good = {"score_1": 8, "score_2": 3, "explanation": "The first answer is complete."}
    bounded = j.reply_schema({"explanation": 400})
    jsonschema.validate(good, bounded)
    for bad in ({**good, "score_1": 0}, {**good, "score_2": 7.5}, {**good, "explanation": "x" * 401},
                {"score_1": 8, "score_2": 3}, {**good, "extra": 1}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, bounded)
    jsonschema.validate({**good, "explanation": "x" * 4000}, j.SCHEMA)  # unbounded: OpenAI's strict keywords


def test_order_answers():
    assert j.order_answers("sft_first", "S", "B") == ("S", "B")
    assert j.order_answers("baseline_first", "S", "B") == ("B", "S")
    with pytest.raises(ValueError):
        j.order_answers("other", "S", "B")


@pytest.mark.parametrize("reply, scores", [
    ("8 7\nAssistant 1 is more detailed.", (8.0, 7.0)),
    ("8, 7", (8.0, 7.0)),
    ("\n  7.5 9\nbecause", (7.5, 9.0)),
    ("10 1", (10.0, 1.0)),
])
def test_parse_scores_ok(reply, scores):
    p = j.parse_scores(reply, "stop")
    assert (p.status, p.scores, p.reason) == ("ok", scores, None)


@pytest.mark.parametrize("reply, finish, status, reason", [
    ("", "stop", "parse_error", "empty"),
    ("Assistant 1: 8\nAssistant 2: 7", "stop", "parse_error", "not two scores"),
    ("8 7 6", "stop", "parse_error", "not two scores"),
    ("8", "stop", "parse_error", "not two scores"),
    ("eight seven", "stop", "parse_error", "not two scores"),
    ("1. 1.\n2. 2.", "stop", "parse_error", "not two scores"),  # a numbered list, not scores
    ("11 3", "stop", "parse_error", "outside"),
    ("-1 3", "stop", "parse_error", "outside"),
    ("8 7", "length", "truncated", "max_tokens"),
    ("", "length", "truncated", "empty"),
])
def test_parse_scores_failures_are_explicit(reply, finish, status, reason):
    p = j.parse_scores(reply, finish)
    assert p.status == status and p.scores is None and reason in p.reason


def test_cut_reply_with_a_complete_first_line_is_read():
    assert j.parse_scores("6 9\nAssistant 2 is bet", "length").scores == (6.0, 9.0)


def test_scores_are_mapped_back_to_roles():
    assert j.sft_baseline_scores("sft_first", (8, 3)) == (8, 3)
    assert j.sft_baseline_scores("baseline_first", (8, 3)) == (3, 8)


# (sft, baseline) in each order -> outcome: every combination of >, =, < in the two orders
@pytest.mark.parametrize("first, second, outcome", [
    ((8, 5), (7, 6), "win"),     # higher, higher
    ((8, 5), (6, 6), "win"),     # higher, equal
    ((6, 6), (9, 2), "win"),     # equal, higher
    ((4, 5), (3, 9), "lose"),    # lower, lower
    ((4, 5), (7, 7), "lose"),    # lower, equal
    ((7, 7), (2, 3), "lose"),    # equal, lower
    ((7, 7), (5, 5), "tie"),     # equal, equal
    ((9, 1), (1, 9), "tie"),     # higher, lower: the judge just preferred a position
    ((1, 9), (9, 1), "tie"),     # lower, higher
])
def test_combine_rule(first, second, outcome):
    assert j.combine(first, second) == outcome


@pytest.mark.parametrize("first, second", [(None, (8, 1)), ((8, 1), None), (None, None)])
def test_a_failed_judgement_fails_the_pair(first, second):
    assert j.combine(first, second) == "failed"


def test_winning_score():
    assert j.winning_score(3, 1, 1) == pytest.approx(1.4)
    assert j.winning_score(0, 2, 0) == 1.0
    assert j.winning_score(0, 0, 4) == 0.0
    assert j.winning_score(0, 0, 0) is None


def test_tally_has_stable_keys_and_excludes_failed_from_the_score():
    rows = [{"set": "vicuna", "outcome": o} for o in ("win", "win", "tie", "lose", "failed")]
    rows.append({"set": "koala", "outcome": "failed"})
    m = j.tally(rows, ["vicuna", "koala", "lima"])
    assert (m["judge_win"], m["judge_tie"], m["judge_lose"], m["judge_failed"], m["judge_pairs"]) == (2, 1, 1, 2, 6)
    assert m["judge_winning_score"] == pytest.approx(1.25)
    assert m["judge_vicuna_winning_score"] == pytest.approx(1.25)
    assert m["judge_koala_failed"] == 1 and m["judge_koala_winning_score"] is None
    assert m["judge_lima_pairs"] == 0 and m["judge_lima_win"] == 0
    plot = j.plot_rows(m, ["vicuna", "koala", "lima"])
    assert len(plot) == 4 * 4
    assert ("vicuna win", 2, "vicuna", "win") in plot and ("all failed", 2, "all", "failed") in plot


@pytest.mark.parametrize("first, second, outcome", [
    (None, (8, 1), "win"),  # (-1, -1) is a draw in its order; a win in the other: win
    ((1, 8), None, "lose"),
    (None, None, "tie"),
    ((8, 1), (1, 8), "tie"),
    ((8, 1), (9, 2), "win"),
])
def test_combine_reference_scores_a_failure_minus_one(first, second, outcome):
    # Cherry_LLM evaluation/generation/eval.py: parse_score returns [-1, -1] on failure
    assert j.combine_reference(first, second) == outcome


def test_tally_reports_both_winning_scores():
    rows = [{"set": "vicuna", "outcome": o, "outcome_reference": r}
            for o, r in (("win", "win"), ("failed", "win"), ("failed", "tie"), ("lose", "lose"))]
    m = j.tally(rows, ["vicuna"])
    assert m["judge_winning_score"] == pytest.approx(1.0)  # 1 win, 1 lose; failed pairs left out
    assert m["judge_winning_score_reference"] == pytest.approx(1.25)  # 2 win, 1 tie, 1 lose of 4
    assert m["judge_vicuna_winning_score_reference"] == pytest.approx(1.25)


def test_judge_step_reads_scores_and_a_cut_reply():
    from reflection_tuning.llm.cache import Completion

    step = j.JudgeStep.load()
    assert step.reads_truncated
    rows = list(j.judge_rows([{"id": "q", "set": "vicuna", "prompt": "Q?", "sft": "S", "baseline": "B"}]))
    assert [(r["order"], r["answer_1"], r["answer_2"]) for r in rows] == [("sft_first", "S", "B"),
                                                                          ("baseline_first", "B", "S")]
    assert "Q?" in step.format_input(rows[0])[-1]["content"]
    ok = step.parse(Completion("8 6\nbecause", "length", 1, 1), rows[0])
    assert ok.fields == {"score_1": 8.0, "score_2": 6.0}
    bad = step.parse(Completion("great answers", "stop", 1, 1), rows[0])
    assert (bad.status, "two scores" in bad.reason) == ("parse_error", True)
