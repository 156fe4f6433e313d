"""N-gram overlap between training rows and the real evaluation prompt sets."""

from __future__ import annotations

import pytest

from reflection_tuning import decontamination as dc
from reflection_tuning.infra.errors import UserError


def test_words_and_ngrams():
    assert dc.words("Hello, World! It's 2-fold.") == ["hello", "world", "it", "s", "2", "fold"]
    assert dc.ngrams(["a", "b", "c", "d"], 3) == {("a", "b", "c"), ("b", "c", "d")}
    assert dc.ngrams(["a", "b"], 3) == set()


def test_prompt_text_of_every_set_format():
    assert dc.prompt_text({"question_id": 1, "text": "How?", "category": "generic"}) == "How?"
    assert dc.prompt_text({"id": "k", "prompt": "Why?"}) == "Why?"
    assert dc.prompt_text({"turns": ["one", "two"], "category": "x"}) == "one\ntwo"
    row = {"instruction": "Fix it.", "motivation_app": "Grammarly",
           "instances": [{"input": "teh cat", "output": "the cat"}]}
    assert dc.prompt_text(row) == "Fix it.\nteh cat"  # inputs, not the reference outputs
    assert dc.eval_set_name(dc.Path("vicuna_test_set.jsonl")) == "vicuna"
    assert dc.eval_set_name(dc.Path("mt_bench_question.jsonl")) == "mt_bench"


def test_long_prompts_match_by_ngram_short_ones_whole():
    long_prompt = " ".join(f"w{i}" for i in range(20))
    index = dc.build_index({"a": [long_prompt, "How can I improve my time management skills?", "hi there"]}, n=13)
    # 13 consecutive words of the long prompt, inside other text and punctuation
    assert dc.matches("Intro: W3 w4, w5 w6 w7 w8 w9 w10 w11 w12 w13 w14 w15 ... end", index) == {"a": {0}}
    assert dc.matches("w3 w4 w5 w6 w7 w8 w9 w10 w11 w12 w13 w14", index) == {}  # 12 words only
    assert dc.matches("Q: how can i improve my TIME management skills? A: plan.", index) == {"a": {1}}
    assert dc.matches("how can i improve my time management", index) == {}
    assert dc.matches("well hi there you", index) == {}  # under MIN_WORDS: never matched whole
    with pytest.raises(ValueError):
        dc.build_index({"a": ["x"]}, n=0)


def test_report_on_the_real_sets(shared_data, alpaca_rows):
    sets = dc.read_eval_sets(shared_data / "eval_prompts")
    assert {k: len(v) for k, v in sets.items()} == {"koala": 180, "lima": 300, "mt_bench": 80, "sinstruct": 252,
                                                     "vicuna": 80, "wizardlm": 218}
    index = dc.build_index(sets)
    leak = {**alpaca_rows[0], "id": "leak", "output": "Sure. " + sets["wizardlm"][5] + " Done."}
    metrics, by_row = dc.overlap_report([*alpaca_rows[:20], leak], index)
    assert by_row["leak"] == ["wizardlm"]
    assert metrics["contaminated_rows_wizardlm"] >= 1 and metrics["contaminated_prompts_wizardlm"] >= 1
    assert metrics["eval_prompts_vicuna"] == 80 and metrics["decontaminate_ngram"] == 13
    assert metrics["contaminated_rows"] == len(by_row)


def test_missing_directory(tmp_path):
    with pytest.raises(UserError, match="eval_prompts_dir"):
        dc.read_eval_sets(tmp_path)
    (tmp_path / "x.jsonl").write_text('{"other": 1}\n')
    with pytest.raises(ValueError, match="row 1"):
        dc.read_eval_sets(tmp_path)
