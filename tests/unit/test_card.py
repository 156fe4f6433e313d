"""The dataset card's pure parts: size categories and score distributions."""

from __future__ import annotations

import pytest

from reflection_tuning.card import distributions, size_category


@pytest.mark.parametrize(("n", "name"), [(0, "n<1K"), (999, "n<1K"), (1000, "1K<n<10K"), (52_002, "10K<n<100K"),
                                         (3_000_000, "1M<n<10M")])
def test_size_category(n, name):
    assert size_category(n) == name


def test_distributions_leave_out_rows_without_a_score():
    rows = [{"variant": "original", "ifd": x / 10, "rifd": None} for x in range(1, 11)]
    rows.append({"variant": "original", "ifd": None, "rifd": None})
    table = {(r["variant"], r["measure"]): r for r in distributions(rows)}
    ifd = table[("original", "IFD")]
    assert ifd["n"] == 10 and ifd["mean"] == "0.55" and ifd["median"] == "0.55"
    assert ifd["p10"] == "0.19" and ifd["p90"] == "0.91"
    assert table[("original", "r-IFD")]["n"] == 0 and table[("both", "IFD")]["mean"] == "–"
