"""The batched scorer's equivalence checks, run by the unit tests on the tiny model and by the
integration tests on the embedded SmolLM2 (real weights: peaked distributions, longer context)."""

from __future__ import annotations

from reference import naive_loss

from reflection_tuning.score.scorer import HFScorer
from reflection_tuning.templates import scoring_pairs

# The model forward is the cost on CPU: one short real row per template, the shortest of the first 64
# rows (20, no input) and, for alpaca, the shortest with an input (10).
TEMPLATE_ROW = {"alpaca": 10, "vicuna": 20, "wizardlm": 20, "bare": 10, "chat": 20}


def check_batched_matches_one_at_a_time(sc: HFScorer, template: str, row: dict) -> None:
    """Padded right and left, every pair of ``row`` scores as it does alone (within 1e-4 nats).
    ``sc`` must batch rows of any length together (``min_fill=0``), so that padding is exercised."""
    pairs = list(scoring_pairs(template, row["instruction"], row["input"], row["output"], sc.tokenizer).values())
    expected = [naive_loss(sc.model, sc.tokenizer, *p) for p in pairs]
    for side in ("right", "left"):
        sc.padding_side = side
        padded_before = sc.stats.tokens_padded - sc.stats.tokens_forward
        got = sc.score(pairs)
        assert sc.stats.tokens_padded - sc.stats.tokens_forward > padded_before  # padding was exercised
        for (loss, n), r in zip(expected, got):
            assert r.status == "ok" and not r.truncated
            assert r.tokens == n == r.target_tokens
            assert abs(r.loss - loss) <= 1e-4, (side, r.loss, loss)
    sc.padding_side = "right"


def check_shared_prefixes_give_whole_sequence_losses(sc: HFScorer, side: str, rows: list[dict]) -> None:
    """Vicuna pairs of real rows share the system prompt and the reverse-prompt header: fed once,
    reused, and each pair's loss is its whole sequence's (within 1e-4 nats)."""
    pairs = [p for r in rows for p in scoring_pairs("vicuna", r["instruction"], r["input"], r["output"]).values()]
    expected = [naive_loss(sc.model, sc.tokenizer, *p) for p in pairs]
    shared = HFScorer(sc.model, sc.tokenizer, max_length=1024, batch_tokens=2048, progress=False, min_share=2,
                      min_fill=0.0)
    shared.padding_side = side
    got = shared.score(pairs)
    assert shared.stats.tokens_padded > shared.stats.tokens_forward  # suffixes of several lengths were padded
    assert shared.stats.prefixes >= 1 and shared.stats.tokens_prefix_reused >= 6 * 30  # 6 prompted pairs
    assert shared.stats.tokens_forward < sum(len(sc.tokenizer(p + t).input_ids) for p, t in pairs)
    for (loss, n), r in zip(expected, got):
        assert r.status == "ok" and r.tokens == n
        assert abs(r.loss - loss) <= 1e-4, (side, r.loss, loss)
