"""The batched scorer against a plain one-sequence-at-a-time fp32 computation, on real Alpaca rows and the
tiny model (the equivalence checks again with real weights: tests/integration/score/test_scorer.py)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from reference import naive_loss
from scorer_checks import (
    TEMPLATE_ROW,
    check_batched_matches_one_at_a_time,
    check_shared_prefixes_give_whole_sequence_losses,
)

from reflection_tuning.score.scorer import HFScorer, Request, plan
from reflection_tuning.templates import TEMPLATES, scoring_pairs


@pytest.fixture(scope="module")
def tiny_scorer(tiny_model):
    return HFScorer.from_pretrained(tiny_model, "cpu", max_length=1024, batch_tokens=4096, progress=False)


@pytest.fixture(scope="module")
def mixing_scorer(tiny_model):
    # min_fill 0: rows of any length share a batch, so that padding (right and left) is exercised
    return HFScorer.from_pretrained(tiny_model, "cpu", max_length=1024, batch_tokens=2048, progress=False,
                                    min_fill=0.0)


@pytest.mark.parametrize("template", TEMPLATES)
def test_batched_matches_one_at_a_time(template, mixing_scorer, alpaca_rows):
    check_batched_matches_one_at_a_time(mixing_scorer, template, alpaca_rows[TEMPLATE_ROW[template]])


@pytest.mark.parametrize("side", ["right", "left"])
def test_shared_prefix_states_give_the_losses_of_whole_sequences(side, mixing_scorer, alpaca_rows):
    check_shared_prefixes_give_whole_sequence_losses(mixing_scorer, side, [alpaca_rows[i] for i in (20, 10, 3)])


@pytest.mark.parametrize("template", TEMPLATES)
def test_offset_boundary_matches_the_reference_boundary(template, tiny_scorer, alpaca_rows):
    """On real rows the offsets give the boundary the reference gets from ``len(encode(prefix))``."""
    tok = tiny_scorer.tokenizer
    for row in alpaca_rows[:16]:
        for prefix, target in scoring_pairs(template, row["instruction"], row["input"], row["output"], tok).values():
            enc = tok(prefix + target, return_offsets_mapping=True)
            p = plan(enc["input_ids"], enc["offset_mapping"], len(prefix), max_length=10_000)
            start = max(len(tok(prefix).input_ids) if prefix else 0, 1)
            assert p.positions == list(range(start, len(enc["input_ids"]))) and not p.straddle


def test_truncation_keeps_the_prompt_and_cuts_the_target(tiny_scorer, alpaca_rows):
    sc, row = tiny_scorer, alpaca_rows[10]
    prefix, target = scoring_pairs("alpaca", row["instruction"], row["input"], row["output"])["a_given_q"]
    n_prefix = len(sc.tokenizer(prefix).input_ids)
    full = sc.score([(prefix, target)])[0]
    sc.max_length = n_prefix + 5
    try:
        cut, gone = sc.score([Request(prefix, target), Request(prefix[:-1] * 2, target)])
    finally:
        sc.max_length = 1024
    assert cut.status == "ok" and cut.truncated and cut.tokens == 5 and cut.target_tokens == full.tokens > 5
    assert cut.loss == pytest.approx(naive_loss(sc.model, sc.tokenizer, prefix, target, keep=5)[0], abs=1e-5)
    # a prompt that leaves no room for the target: explicit failure, never a 0 loss
    assert gone.status == "empty" and gone.truncated and gone.loss is None and gone.tokens == 0

    capped = sc.score([Request(prefix, target, max_target_tokens=3)])[0]
    assert capped.truncated and capped.tokens == 3
    assert capped.loss == pytest.approx(naive_loss(sc.model, sc.tokenizer, prefix, target, keep=3)[0], abs=1e-5)


def test_empty_target_is_a_status_not_zero(tiny_scorer):
    assert len(tiny_scorer.tokenizer("The").input_ids) == 1
    empty, one_token_alone, fine = tiny_scorer.score([("### Response:", ""), ("", "The"), ("### Response:", "The")])
    assert (empty.status, empty.loss, empty.tokens, empty.truncated) == ("empty", None, 0, False)
    assert one_token_alone.status == "empty" and one_token_alone.loss is None  # its one token has no prediction
    assert fine.status == "ok" and fine.tokens == 1 and fine.loss > 0


def test_identical_pairs_are_scored_once(tiny_model, alpaca_rows):
    sc = HFScorer.from_pretrained(tiny_model, "cpu", progress=False)
    p = ("### Response:", alpaca_rows[0]["output"])
    q = ("", alpaca_rows[1]["instruction"])
    out = sc.score([p, q, p, Request(*p)])
    assert (sc.stats.pairs, sc.stats.unique_pairs) == (4, 2)
    assert out[0] == out[2] == out[3] != out[1]
    single = HFScorer.from_pretrained(tiny_model, "cpu", progress=False)
    single.score([p, q])
    assert sc.stats.tokens_forward == single.stats.tokens_forward


class _Wrapped(torch.nn.Module):
    """The tiny model, failing the way a big one would: OOM on batches > 1, or NaN logits."""

    def __init__(self, model, mode: str) -> None:
        super().__init__()
        self.inner, self.config, self.mode = model, model.config, mode

    def forward(self, input_ids, **kw):
        if self.mode == "oom" and input_ids.shape[0] > 1:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        out = self.inner(input_ids=input_ids, **kw)
        if self.mode == "nan":
            return SimpleNamespace(logits=torch.full_like(out.logits, float("nan")))
        return out


def test_oom_halves_the_batch_and_retries(tiny_scorer, alpaca_rows):
    pairs = [("", r["output"]) for r in alpaca_rows[:3]]
    expected = tiny_scorer.score(pairs)
    sc = HFScorer(_Wrapped(tiny_scorer.model, "oom"), tiny_scorer.tokenizer, batch_tokens=100_000, progress=False,
                  min_fill=0.0)
    got = sc.score(pairs)
    assert sc.stats.oom_splits == 2 and sc.stats.batches == 3
    assert [g.loss for g in got] == pytest.approx([e.loss for e in expected], abs=1e-5)
    sc.score(pairs[::-1] + pairs[:1])  # as big again: split up front, no new OOM
    assert sc.stats.oom_splits == 2 and sc.stats.batches == 6


def test_nan_loss_is_status_nan(tiny_scorer):
    sc = HFScorer(_Wrapped(tiny_scorer.model, "nan"), tiny_scorer.tokenizer, progress=False)
    (r,) = sc.score([("### Response:", "Eat well.")])
    assert r.status == "nan" and r.loss is None and r.tokens > 0
