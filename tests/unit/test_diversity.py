from __future__ import annotations

import numpy as np
import pytest

from reflection_tuning.diversity import facility_location, similarity


def clusters(seed: int = 0) -> tuple[np.ndarray, list[int]]:
    """Three tight clusters of 5, 3 and 2 points around orthogonal directions; labels per row."""
    rng = np.random.default_rng(seed)
    centres = np.eye(3) * 10
    sizes = [5, 3, 2]
    points = np.concatenate([c + 0.1 * rng.standard_normal((s, 3)) for c, s in zip(centres, sizes)])
    labels = [i for i, s in enumerate(sizes) for _ in range(s)]
    return points, labels


def test_one_pick_per_cluster_biggest_first():
    points, labels = clusters()
    picked = facility_location(points, 3)
    assert [labels[i] for i in picked.indices] == [0, 1, 2]  # the known answer: one per cluster, by size
    assert picked.coverage > 0.99
    # deterministic
    assert facility_location(points, 3) == picked


def test_coverage_grows_and_reaches_one():
    points, _ = clusters()
    covs = [facility_location(points, k).coverage for k in range(1, 11)]
    assert all(a <= b + 1e-12 for a, b in zip(covs, covs[1:]))
    assert covs[-1] == pytest.approx(1.0)
    assert sorted(facility_location(points, 20).indices) == list(range(10))  # k > n: every row once


def test_ties_go_to_the_lowest_index_and_edges():
    same = np.ones((4, 2))
    assert facility_location(same, 2).indices == [0, 1]
    assert facility_location(np.zeros((0, 3)), 2) == ([], 1.0)
    assert facility_location(same, 0) == ([], 0.0)
    sim = similarity(np.array([[1.0, 0.0], [0.0, 0.0], [-1.0, 0.0]]))
    assert sim[0, 2] == 0.0 and sim[0, 1] == 0.5 and sim[1, 1] == 1.0
    with pytest.raises(ValueError):
        facility_location(np.ones(3), 1)
    with pytest.raises(ValueError):
        facility_location(same, -1)
