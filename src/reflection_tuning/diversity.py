"""Diversity after the scores: greedy facility location over row embeddings. Pure numpy, no torch.

Superfiltering.D (Li et al., ACL 2024, arXiv 2402.00530, Sec. 3.3) and DEITA (Liu et al.,
ICLR 2024, arXiv 2312.15685, Sec. 3) pick a diverse subset after an IFD (or quality)
filter. Here the subset maximises the facility-location function

    F(S) = sum_i max_{j in S} sim(i, j),   sim(i, j) = (1 + cos(e_i, e_j)) / 2  in [0, 1],

a monotone submodular function, so the greedy choice is within ``1 - 1/e`` of the best
(Nemhauser, Wolsey and Fisher, 1978). ``coverage = F(S) / F(V)`` (``F(V) = n``, each row
covering itself with similarity 1) says how much of the pool the subset represents.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Picked(NamedTuple):
    """The indices chosen, in the order greedy picked them, and the coverage ``F(S) / n`` in [0, 1]."""

    indices: list[int]
    coverage: float


def similarity(vectors: np.ndarray) -> np.ndarray:
    """Pairwise ``(1 + cosine) / 2`` of ``vectors`` ``[n, d]``; ``[n, n]`` float64 in [0, 1].

    A zero vector has similarity 0.5 (cosine 0) with everything but itself.
    """
    v = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    unit = np.divide(v, norms, out=np.zeros_like(v), where=norms > 0)
    sim = np.clip((1.0 + unit @ unit.T) / 2.0, 0.0, 1.0)
    np.fill_diagonal(sim, 1.0)
    return sim


def facility_location(vectors: np.ndarray, k: int) -> Picked:
    """Greedy facility location: ``k`` rows of ``vectors`` ``[n, d]`` that cover the rest best.

    Deterministic: ties go to the lowest index (callers order rows by ``id``). Memory is
    ``n x n`` float64 (8 n^2 bytes: 80 MB at 3 000 rows), fine for selection pools of the
    papers' size.

    Raises:
        ValueError: ``k < 0`` or ``vectors`` not 2-D.
    """
    v = np.asarray(vectors)
    if v.ndim != 2:
        raise ValueError(f"vectors must be [n, d], got shape {v.shape}")
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    n = v.shape[0]
    if n == 0 or k == 0:
        return Picked([], 0.0 if n else 1.0)
    sim = similarity(v)
    best = np.zeros(n)  # max similarity of each row to the chosen set so far
    chosen: list[int] = []
    available = np.ones(n, dtype=bool)
    for _ in range(min(k, n)):
        # gain of adding j: sum_i max(0, sim[i, j] - best[i])
        gains = np.maximum(sim - best[:, None], 0.0).sum(axis=0)
        gains[~available] = -1.0
        j = int(np.argmax(gains))  # first maximum: the lowest index wins a tie
        chosen.append(j)
        available[j] = False
        best = np.maximum(best, sim[:, j])
    return Picked(chosen, float(best.sum() / n))
