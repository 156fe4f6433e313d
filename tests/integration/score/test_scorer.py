"""The batched scorer against a plain one-sequence-at-a-time fp32 computation with the embedded
SmolLM2's real weights (the same checks on the tiny model, and the rest: tests/unit/score/test_scorer.py)."""

from __future__ import annotations

import pytest
from scorer_checks import (
    TEMPLATE_ROW,
    check_batched_matches_one_at_a_time,
    check_shared_prefixes_give_whole_sequence_losses,
)

from reflection_tuning.score.scorer import HFScorer
from reflection_tuning.templates import TEMPLATES


@pytest.fixture(scope="module")
def embedded_scorer(embedded_model):
    # min_fill 0: rows of any length share a batch, so that padding (right and left) is exercised
    return HFScorer.from_pretrained(embedded_model, "cpu", max_length=1024, batch_tokens=2048, progress=False,
                                    min_fill=0.0)


@pytest.mark.parametrize("template", TEMPLATES)
def test_batched_matches_one_at_a_time(template, embedded_scorer, alpaca_rows):
    check_batched_matches_one_at_a_time(embedded_scorer, template, alpaca_rows[TEMPLATE_ROW[template]])


@pytest.mark.parametrize("side", ["right", "left"])
def test_shared_prefix_states_give_the_losses_of_whole_sequences(side, embedded_scorer, alpaca_rows):
    check_shared_prefixes_give_whole_sequence_losses(embedded_scorer, side, [alpaca_rows[i] for i in (20, 10, 3)])
