"""The batched scorer against a plain one-sequence-at-a-time fp32 computation, on real Alpaca rows and the
tiny model (the equivalence checks again with real weights: tests/integration/score/test_scorer.py)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from reference import naive_loss
from reflection_tuning.score.scorer import HFScorer, Request, make_batches, plan, prefix_batches, shared_prefixes
from reflection_tuning.templates import TEMPLATES, scoring_pairs
from scorer_checks import TEMPLATE_ROW, check_batched_matches_one_at_a_time, check_shared_prefixes_give_whole_sequence_losses

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


def test_shared_prefixes_finds_the_headers_many_prompts_start_with():
    header, reverse = list(range(100, 110)), list(range(200, 205))
    prompts = [header + [i] for i in range(8)] + [header + reverse + [i, i] for i in range(8)] + [[1, 2, 3]] * 3
    ks = shared_prefixes(prompts, min_share=8, min_tokens=8)
    # 16 prompts share the header; the 8 reverse prompts also share the reverse header; 3 are too few
    assert ks == [10] * 8 + [15] * 8 + [0] * 3
    assert shared_prefixes(prompts, min_share=8, min_tokens=12) == [0] * 8 + [15] * 8 + [0] * 3
    assert shared_prefixes(prompts, min_share=3, min_tokens=3) == [10] * 8 + [15] * 8 + [3] * 3
    assert shared_prefixes([], 2) == [] and shared_prefixes([[]], 1) == [0]


def test_prefix_batches_group_pairs_by_their_shared_prefix():
    header = list(range(100, 110))
    ids = [header + [i] * (3 + i) for i in range(8)] + [[1] * (4 + i) for i in range(4)]
    # the first target token is the last id: the prompt (what may be shared) is everything before its predictor
    plans = [plan(x, [(j, j + 1) for j in range(len(x))], len(x) - 1, 100) for x in ids]
    batches = prefix_batches(plans, list(range(len(plans))), batch_tokens=1000, min_fill=0.0, min_share=8)
    assert [k for k, _ in batches] == [0, 10] and sorted(batches[1][1]) == list(range(8))
    assert sorted(i for _, b in batches for i in b) == list(range(12))
    assert prefix_batches(plans, list(range(12)), 1000, 0.0, None) == [(0, [7, 6, 5, 4, 3, 2, 1, 0, 11, 10, 9, 8])]


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


def test_plan_boundary_from_offsets():
    # "AB" + "CD": a BOS with an empty span, then tokens A|B|C|D
    offsets = [(0, 0), (0, 1), (1, 2), (2, 3), (3, 4)]
    p = plan([9, 1, 2, 3, 4], offsets, prefix_len=2, max_length=100)
    assert p.positions == [3, 4] and p.ids == [9, 1, 2, 3, 4] and not p.truncated and not p.straddle
    # a token straddling the boundary ("BC") counts as prefix
    p = plan([1, 5, 4], [(0, 1), (1, 3), (3, 4)], prefix_len=2, max_length=100)
    assert p.positions == [2] and p.straddle
    # empty prefix, no BOS: the first token has no prediction
    p = plan([3, 4, 5], [(0, 1), (1, 2), (2, 3)], prefix_len=0, max_length=100)
    assert p.positions == [1, 2] and p.target_tokens == 2
    # truncation cuts the target from the end; the prompt stays whole
    p = plan([1, 2, 3, 4, 5], [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)], prefix_len=2, max_length=4)
    assert p.ids == [1, 2, 3, 4] and p.positions == [2, 3] and p.truncated
    p = plan([1, 2, 3], [(0, 1), (1, 2), (2, 3)], prefix_len=2, max_length=2)
    assert p.positions == [] and p.truncated and p.ids == []


def test_make_batches_bounds_padded_tokens():
    lengths = [5, 30, 10, 12, 30, 7, 100]
    batches = make_batches(lengths, batch_tokens=60)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for b in batches:
        longest = max(lengths[i] for i in b)
        assert lengths[b[0]] == longest
        assert len(b) * longest <= 60 or len(b) == 1
    assert batches[0] == [6]  # longer than the budget: alone, and first
    flat = [lengths[i] for b in batches for i in b]
    assert flat == sorted(flat, reverse=True)
    # min_fill: no row shorter than 0.7 x the longest of its batch
    assert make_batches(lengths, batch_tokens=1000, min_fill=0.7) == [[6], [1, 4], [3, 2], [5, 0]]
