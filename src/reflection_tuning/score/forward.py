"""One scorer batch as tensors: the padded suffixes fed to the model, and the summed NLL of
their target tokens (the batch is planned in :mod:`reflection_tuning.score.batching`, run
by :class:`reflection_tuning.score.scorer.HFScorer`).

Shapes: ``B`` plans, ``L`` the longest suffix after the ``k`` shared-prefix tokens, ``N`` the
target tokens of the whole batch, ``V`` the vocabulary.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from reflection_tuning.score.batching import Plan


class BatchInputs(NamedTuple):
    """``input_ids``, ``position_ids``, ``keep``: ``[B, L]``; ``attention_mask``: ``[B, k + L]``;
    ``targets``: the ``N`` target ids in row order; ``counts``: the target tokens per row."""

    input_ids: Any
    attention_mask: Any
    position_ids: Any
    keep: Any  # bool: the positions whose logits predict a target token
    targets: list[int]
    counts: list[int]


def batch_inputs(plans: Sequence[Plan], k: int, pad_id: int, padding_side: str) -> BatchInputs:
    """The suffixes of ``plans`` after their ``k`` shared tokens, padded on ``padding_side``.

    Position ids count real tokens only (from ``k``), so a left-padded row sees the positions
    of a right-padded one; the attention mask covers the ``k`` prefix tokens too.
    """
    import torch

    B, L = len(plans), max(len(p.ids) for p in plans) - k
    input_ids = torch.full((B, L), pad_id, dtype=torch.long)
    mask = torch.zeros((B, L), dtype=torch.long)
    keep = torch.zeros((B, L), dtype=torch.bool)
    targets: list[int] = []
    for b, p in enumerate(plans):
        n = len(p.ids) - k
        off = L - n if padding_side == "left" else 0
        input_ids[b, off : off + n] = torch.tensor(p.ids[k:])
        mask[b, off : off + n] = 1
        keep[b, torch.tensor(p.positions) - 1 - k + off] = True
        targets += [p.ids[q] for q in p.positions]
    position_ids = (mask.cumsum(-1) - 1).clamp(min=0) + k
    if k:
        mask = torch.cat([torch.ones((B, k), dtype=torch.long), mask], dim=1)
    return BatchInputs(input_ids, mask, position_ids, keep, targets, [len(p.positions) for p in plans])


def nll_sums(logits: Any, targets: Sequence[int], counts: Sequence[int]) -> Any:
    """Per row, the summed NLL (nats, fp64 ``[B]``) of its targets, from the ``[N, V]`` logits that
    predict them (rows in order, ``counts[b]`` each)."""
    import torch
    import torch.nn.functional as F

    device = logits.device
    nll = F.cross_entropy(logits.float(), torch.tensor(list(targets), device=device), reduction="none")
    rows = torch.repeat_interleave(torch.arange(len(counts), device=device), torch.tensor(list(counts), device=device))
    return torch.zeros(len(counts), dtype=torch.float64, device=device).index_add_(0, rows, nll.double())
