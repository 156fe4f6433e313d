"""Scoring plans and batches, on token ids: the prefix/target boundary from offsets, batches bounded
in padded tokens, shared prompt prefixes, and whole batches given to ranks."""

from __future__ import annotations

from reflection_tuning.score.batching import assign_batches, make_batches, plan, prefix_batches, shared_prefixes


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


def test_ranks_get_whole_batches_longest_first_to_the_least_loaded():
    assert assign_batches([], 2) == []
    assert assign_batches([100, 60, 50, 40, 10], 1) == [0] * 5
    # loads after each batch: (100, 0), (100, 60), (100, 110), (140, 110), (140, 120)
    assert assign_batches([100, 60, 50, 40, 10], 2) == [0, 1, 1, 0, 1]
    assert assign_batches([5, 5, 5], 3) == [0, 1, 2]  # ties go to the lowest rank
    assert assign_batches([5, 5, 5, 5], 3) == [0, 1, 2, 0]
