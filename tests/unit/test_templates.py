from __future__ import annotations

import pytest
from reference import PUNCT_ANSWERS, WORD_ANSWERS, boundary_ok

from reflection_tuning.rows import merge_input
from reflection_tuning.templates import (
    DEFAULT_TEMPLATE,
    SEPARATORS,
    TEMPLATES,
    answer,
    prompt,
    reverse_prompt,
    scoring_pairs,
)


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


def test_scoring_pairs_keep_input_follow_the_reference():
    pairs = scoring_pairs("alpaca", "Add.", "2 and 3", "5", input_mode="keep")
    assert pairs["a_given_q"] == (prompt("alpaca", "Add.", "2 and 3"), "5")
    assert pairs["a"] == ("", "5")
    assert pairs["q_given_a"] == (prompt("alpaca", reverse_prompt("5")), "Add.2 and 3")
    assert pairs["q"] == ("", "Add.2 and 3")


def test_scoring_pairs_merge_input_by_default():
    merged = merge_input("Add.", "2 and 3")
    pairs = scoring_pairs("alpaca", "Add.", "2 and 3", "5")
    assert pairs["a_given_q"] == (prompt("alpaca", merged), "5")
    assert pairs["q_given_a"] == (prompt("alpaca", reverse_prompt("5")), merged)
    assert pairs["q"] == ("", merged)
    # a row without an input is the same in both modes
    assert scoring_pairs("vicuna", "Add 2 and 3.", "", "5") == scoring_pairs("vicuna", "Add 2 and 3.", "", "5",
                                                                              input_mode="keep")
    with pytest.raises(ValueError, match="input mode"):
        scoring_pairs("alpaca", "Add.", "", "5", input_mode="drop")


@pytest.mark.parametrize("template", ["alpaca", "vicuna", "wizardlm", "bare"])
def test_instruction_comparison_uses_one_template_shape(template):
    """IFD(instruction) vs IFD(original): the original (with an input) and the reflected
    instruction (no input, as the teacher writes it) are scored in the same prompt shape."""
    original = scoring_pairs(template, "Add the numbers.", "2 and 3", "5")
    reflected = scoring_pairs(template, "What is the sum of two and three?", "", "Five.")

    def shape(pair, instruction):  # the prompt with its instruction text taken out
        return pair.prefix.replace(instruction, "<Q>")

    assert shape(original["a_given_q"], merge_input("Add the numbers.", "2 and 3")) == \
        shape(reflected["a_given_q"], "What is the sum of two and three?") == prompt(template, "<Q>")
    # with input kept, the shapes differ (the documented caveat of input: keep)
    kept = scoring_pairs(template, "Add the numbers.", "2 and 3", "5", input_mode="keep")
    assert kept["a_given_q"].prefix == prompt(template, "Add the numbers.", "2 and 3")


def test_vicuna_turn_is_fastchat_and_the_reference_prompt():
    system = ("A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, "
              "detailed, and polite answers to the user's questions.")
    assert prompt("vicuna", "Hi") == system + " USER: Hi ASSISTANT:"
    assert prompt("vicuna", "Add.", "2 and 3") == system + " USER: Add.\nInput:\n2 and 3 ASSISTANT:"
    # FastChat writes "ASSISTANT: " + answer: the space opens the answer
    assert prompt("vicuna", "Hi") + answer("vicuna", "Hello!") == system + " USER: Hi ASSISTANT: Hello!"
    assert answer("alpaca", "x") == "x" and answer("vicuna", "") == "" and DEFAULT_TEMPLATE == "vicuna"
    pairs = scoring_pairs("vicuna", "Hi", "", "Hello!")
    assert pairs["a_given_q"].target == pairs["a"].target == " Hello!"  # both PPLs over the same text
    assert pairs["q"].target == pairs["q_given_a"].target == " Hi"
    with pytest.raises(ValueError, match="unknown template"):
        answer("llama", "x")


def test_bare_template_is_superfiltering():
    assert prompt("bare", "Add.") == "Add.\n"
    assert prompt("bare", "Add.", "2 and 3") == "Add.\n2 and 3\n"
    assert prompt("bare", "Add.", "2 and 3") + answer("bare", "5") == "Add.\n2 and 3\n5"


@pytest.mark.parametrize("template", ["vicuna", "bare", "chat", "alpaca", "wizardlm"])
def test_token_boundary_with_a_byte_level_bpe(tiny_tokenizer, template):
    """The prompt's tokens are a prefix of prompt+answer's, with no token across the boundary, for
    a byte-level BPE like SmolLM2's (the tiny one: its merges are few, so the punctuation merges
    that SmolLM2 makes at ``:`` are in tests/integration/test_templates.py)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_tokenizer)
    strict = SEPARATORS[template] or template in ("bare", "chat")
    for text in WORD_ANSWERS + (PUNCT_ANSWERS if strict else []):
        assert boundary_ok(tok, template, text), (template, text)


def test_braces_in_text_are_safe_and_unknown_template_fails():
    assert "{x}" in prompt("vicuna", "Print {x}.")
    with pytest.raises(ValueError, match="unknown template"):
        prompt("llama", "x")
    with pytest.raises(ValueError, match="chat template"):
        prompt("chat", "x")
    assert set(TEMPLATES) == set(SEPARATORS)


def test_chat_template_uses_the_tokenizer(tiny_tokenizer):
    from transformers import AutoTokenizer

    text = prompt("chat", "Add.", "2 and 3", AutoTokenizer.from_pretrained(tiny_tokenizer))  # ChatML, as SmolLM2
    assert text.startswith("<|im_start|>") and text.endswith("<|im_start|>assistant\n")
    assert "Add.\n\n2 and 3" in text
