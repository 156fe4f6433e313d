"""Pure parts of scaling and reporting: quantiles, histograms, plot files, batch assignment, the cache."""

from __future__ import annotations

import csv

import pytest

from reflection_tuning.score.batching import PairScore, Request, ScorerStats, assign_batches
from reflection_tuning.score.resume import PairCache, model_fingerprint
from reflection_tuning.score.shard import Shard, shard_from_env
from reflection_tuning.score.summary import BIN_WIDTH, HIST_MAX, histogram, quantile, score_metrics, write_plots

VARIANTS = ("original", "instruction", "response", "both")


def test_quantile_interpolates_like_numpy():
    xs = [4.0, 1.0, 3.0, 2.0]
    assert quantile(xs, 0.5) == 2.5 and quantile(xs, 0.0) == 1.0 and quantile(xs, 1.0) == 4.0
    assert quantile(xs, 0.1) == pytest.approx(1.3)
    assert quantile([7.0], 0.9) == 7.0 and quantile([], 0.5) is None


def test_histogram_has_fixed_bins_and_an_overflow_bin():
    counts = histogram([0.0, 0.049, 0.05, 0.99, 2.0, 17.0])
    assert len(counts) == round(HIST_MAX / BIN_WIDTH) + 1 and sum(counts) == 6
    assert counts[0] == 2 and counts[1] == 1 and counts[19] == 1 and counts[-1] == 2


def _rows():
    rows = []
    for i, (a, b) in enumerate([(0.5, 0.9), (1.2, 0.4), (0.8, 1.1)]):
        rows.append({"id": f"r{i}", "variant": "original", "status": "ok", "ifd": a, "rifd": b, "truncated": i == 0})
        rows.append({"id": f"r{i}", "variant": "response", "status": "ok", "ifd": a / 2, "rifd": b, "truncated": False})
    rows.append({"id": "r3", "variant": "original", "status": "nan", "ifd": None, "rifd": None, "truncated": False})
    # r-IFD failed, IFD ok: counts in the IFD statistics, not in the r-IFD ones
    rows.append({"id": "r4", "variant": "instruction", "status": "empty", "ifd_status": "ok", "rifd_status": "empty",
                 "ifd": 0.7, "rifd": None, "truncated": True})
    rows.append({"id": "r3", "variant": "both", "status": "unusable", "ifd": None, "rifd": None, "truncated": None})
    return rows


def test_metrics_keys_are_flat_and_stable():
    m = score_metrics(_rows(), VARIANTS)
    assert m["original_ifd_p50"] == pytest.approx(0.8) and m["original_ifd_mean"] == pytest.approx(2.5 / 3)
    assert m["original_ifd_lt1_share"] == pytest.approx(2 / 3) and m["original_truncated_share"] == 0.25
    assert m["original_failed"] == 1 and m["both_status_unusable"] == 1
    for v in VARIANTS:  # every key exists for every variant, null without ok rows
        for key in ("ifd", "rifd"):
            assert all(f"{v}_{key}_p{q}" in m for q in (10, 25, 50, 75, 90))
    assert m["instruction_rifd_p90"] is None and not any(isinstance(x, (dict, list)) for x in m.values())
    assert m["instruction_ifd_mean"] == 0.7 and m["instruction_ifd_lt1_share"] == 1.0
    counts = ("instruction_status_empty", "instruction_ifd_status_ok", "instruction_rifd_status_empty")
    assert [m[k] for k in counts] == [1, 1, 1]
    assert m["original_ifd_status_nan"] == m["original_rifd_status_nan"] == 1  # old rows: status stands for both


def test_histogram_counts_each_ratio_where_it_is_ok(tmp_path):
    paths = [tmp_path / f for f in ("ifd.csv", "hist.csv", "reflected.csv")]
    write_plots(*paths, _rows(), VARIANTS)
    hist = list(csv.DictReader(paths[1].read_text(encoding="utf-8").splitlines()))
    count = {m: sum(int(r["count"]) for r in hist if r["measure"] == m and r["variant"] == "instruction")
             for m in ("ifd", "rifd")}
    assert count == {"ifd": 1, "rifd": 0}


def test_plot_files(tmp_path):
    paths = [tmp_path / f for f in ("ifd.csv", "hist.csv", "reflected.csv")]
    write_plots(*paths, _rows(), VARIANTS)
    read = [list(csv.DictReader(p.read_text(encoding="utf-8").splitlines())) for p in paths]
    assert len(read[0]) == 6
    hist = read[1]
    assert len(hist) == 2 * len(VARIANTS) * (round(HIST_MAX / BIN_WIDTH) + 1)
    assert sum(int(r["count"]) for r in hist if r["measure"] == "ifd" and r["variant"] == "original") == 3
    refl = read[2]
    assert [(r["id"], r["variant"]) for r in refl] == [("r0", "response"), ("r1", "response"), ("r2", "response")]
    assert float(refl[1]["ifd_reflected"]) == 0.6 and float(refl[1]["ifd_original"]) == 1.2


def test_batches_go_to_the_least_loaded_rank():
    assert assign_batches([100, 80, 60, 50, 10], 2) == [0, 1, 1, 0, 1]
    assert assign_batches([5, 5, 5], 1) == [0, 0, 0]
    merged = ScorerStats.merge([ScorerStats(pairs=10, unique_pairs=8, batches=2, tokens_forward=50, tokens_padded=60),
                                ScorerStats(pairs=10, unique_pairs=8, batches=3, tokens_forward=40, tokens_padded=40)])
    assert (merged.pairs, merged.unique_pairs, merged.batches, merged.tokens_forward) == (10, 8, 5, 90)
    assert merged.padding_fraction == pytest.approx(0.1)


def test_shard_from_env():
    assert shard_from_env({}) == Shard(0, 1, 0)
    assert shard_from_env({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"}) == Shard(3, 4, 1)
    with pytest.raises(ValueError):
        shard_from_env({"RANK": "4", "WORLD_SIZE": "4"})


def test_cache_survives_a_line_cut_by_a_kill(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    fp = model_fingerprint(tmp_path / "model", "fp32")
    assert fp != model_fingerprint(tmp_path / "model", "bf16-autocast")
    cache = PairCache(tmp_path / "cache", fp)
    reqs = [Request("p", "t"), Request("", "t"), Request("p", "t", 3)]
    keys = [cache.key(r, 1024) for r in reqs]
    assert len(set(keys)) == 3 and cache.key(reqs[0], 512) != keys[0]
    scores = [PairScore(1 / 3, 5, 5, False, "ok"), PairScore(None, 0, 0, False, "empty")]
    cache.put(keys[:2], scores)
    cache.close()
    with open(cache.path, "a") as f:
        f.write('{"k": "' + keys[2] + '", "v": [0.1, ')  # killed mid-line
    again = PairCache(tmp_path / "cache", fp, writer="rank1")
    assert len(again) == 2 and again.get_all(keys[:2]) == scores and again.get_all(keys) is None
    assert again.get_all(keys[:1])[0].loss == 1 / 3  # floats round-trip exactly
    resumed = PairCache(tmp_path / "cache", fp)  # the writer whose last line was cut appends again
    resumed.put(keys[2:], [PairScore(0.25, 3, 5, True, "ok")])
    resumed.close()
    assert len(PairCache(tmp_path / "cache", fp)) == 3
