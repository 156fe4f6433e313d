"""score/forward.py: a batch's padded tensors line each target up with the logits that predict
it, on either padding side and after a shared prefix; the NLL sums are the per-token losses'."""

from __future__ import annotations

import pytest
import torch

from reflection_tuning.score.batching import plan
from reflection_tuning.score.forward import batch_inputs, nll_sums


def _plan(ids: list[int], prefix_tokens: int):
    """A plan of ``ids`` whose first ``prefix_tokens`` are the prompt (one character per token)."""
    return plan(ids, [(i, i + 1) for i in range(len(ids))], prefix_tokens, max_length=64)


PLANS = [_plan([5, 6, 7, 8, 9, 10], 3), _plan([5, 6, 7, 11], 3), _plan([5, 6, 7, 12, 13, 14, 15], 4)]


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("k", [0, 2])  # k: shared tokens, all before the first predicting one
def test_each_target_is_predicted_by_the_token_before_it(side, k):
    batch = batch_inputs(PLANS, k, pad_id=0, padding_side=side)
    B, L = batch.input_ids.shape
    assert (3, 7 - k) == (B, L) and batch.attention_mask.shape == (3, k + L)
    assert batch.counts == [3, 1, 3] and batch.targets == [8, 9, 10, 11, 13, 14, 15]
    for b, p in enumerate(PLANS):
        kept = batch.keep[b].nonzero().flatten().tolist()
        # the token at a kept position is the one just before its target, and its position id
        # is the target's index minus one: the same on both padding sides
        assert [int(batch.input_ids[b, q]) for q in kept] == [p.ids[t - 1] for t in p.positions]
        assert [int(batch.position_ids[b, q]) for q in kept] == [t - 1 for t in p.positions]
        assert int(batch.attention_mask[b].sum()) == len(p.ids)  # the prefix and the row's own tokens


def test_nll_sums_are_the_per_row_sums_of_the_token_losses():
    torch.manual_seed(0)
    logits = torch.randn(7, 20)
    targets, counts = [8, 9, 10, 11, 13, 14, 15], [3, 1, 3]
    per_token = torch.nn.functional.cross_entropy(logits, torch.tensor(targets), reduction="none").double()
    expected = [per_token[:3].sum(), per_token[3:4].sum(), per_token[4:].sum()]
    sums = nll_sums(logits, targets, counts)
    assert sums.dtype == torch.float64 and sums.tolist() == pytest.approx([float(e) for e in expected], abs=1e-9)
