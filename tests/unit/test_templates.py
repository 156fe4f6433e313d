from __future__ import annotations

import pytest

from reflection_tuning.templates import TEMPLATES, prompt, reverse_prompt, scoring_pairs


def test_alpaca_template_matches_the_spec():
    assert prompt("alpaca", "Add 2 and 3.") == (
        "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n"
        "### Instruction:\nAdd 2 and 3.\n\n### Response:"
    )
    with_input = prompt("alpaca", "Add.", "2 and 3")
    assert "paired with an input" in with_input
    assert with_input.endswith("### Input:\n2 and 3\n\n### Response:")


def test_reverse_prompt_matches_the_spec():
    assert reverse_prompt("5") == (
        "Below is the response to an instruction, please guess the corresponding instruction for the given response.\n"
        "5\nGenerate the instruction for the above response."
    )


def test_scoring_pairs_follow_the_papers():
    pairs = scoring_pairs("alpaca", "Add.", "2 and 3", "5")
    assert pairs["a_given_q"] == (prompt("alpaca", "Add.", "2 and 3"), "5")
    assert pairs["a"] == ("", "5")
    assert pairs["q_given_a"] == (prompt("alpaca", reverse_prompt("5")), "Add.2 and 3")
    assert pairs["q"] == ("", "Add.2 and 3")


def test_braces_in_text_are_safe_and_unknown_template_fails():
    assert "{x}" in prompt("vicuna", "Print {x}.")
    with pytest.raises(ValueError, match="unknown template"):
        prompt("llama", "x")
    with pytest.raises(ValueError, match="chat template"):
        prompt("chat", "x")
    assert set(TEMPLATES) == {"alpaca", "vicuna", "wizardlm", "chat"}


def test_chat_template_uses_the_tokenizer(embedded_model):
    from transformers import AutoTokenizer

    text = prompt("chat", "Add.", "2 and 3", AutoTokenizer.from_pretrained(embedded_model))
    assert text.startswith("<|im_start|>") and text.endswith("<|im_start|>assistant\n")
    assert "Add.\n\n2 and 3" in text
