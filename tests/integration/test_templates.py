"""The prompt/answer token boundary with the real SmolLM2 tokenizer, whose merges join
punctuation with a prompt's final ``:`` (the rest of templates.py: tests/unit/test_templates.py)."""

from __future__ import annotations

import pytest
from reference import PUNCT_ANSWERS, WORD_ANSWERS, boundary_ok

from reflection_tuning.templates import SEPARATORS


@pytest.mark.parametrize("template", ["vicuna", "bare", "chat", "alpaca", "wizardlm"])
def test_token_boundary_with_the_smollm2_tokenizer(embedded_model, template):
    """The prompt's tokens are a prefix of prompt+answer's, with no token across the boundary:
    what finetune trains on, score measures and generate continues is one and the same split.

    Vicuna's space (FastChat's turn format) makes that hold for any answer; alpaca and
    wizardlm join with no separator, as Stanford Alpaca and the reference do, so an answer
    that opens with punctuation merges with the final ``:`` (the scorer counts those as
    straddles)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(embedded_model)
    strict = SEPARATORS[template] or template in ("bare", "chat")
    for text in WORD_ANSWERS + (PUNCT_ANSWERS if strict else []):
        assert boundary_ok(tok, template, text), (template, text)
    if not strict:
        assert not boundary_ok(tok, template, "(a) 5")  # why vicuna keeps FastChat's space
