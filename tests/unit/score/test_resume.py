"""The resume cache of pair scores: one file per writer, every writer's file read back, a line cut
by a kill skipped, and a model fingerprint that follows the weights and the precision."""

from __future__ import annotations

from reflection_tuning.score.batching import PairScore, Request
from reflection_tuning.score.resume import PairCache, model_fingerprint

A, B = Request("### Response:", "Eat well."), Request("", "Give three tips for staying healthy.", 8)
SA, SB = PairScore(2.345678901234567, 3, 3, False, "ok"), PairScore(None, 0, 9, True, "empty")


def test_fingerprint_follows_files_and_precision(tmp_path):
    model = tmp_path / "m"
    model.mkdir()
    (model / "config.json").write_text("{}")
    first = model_fingerprint(model, "fp32")
    assert model_fingerprint(model, "fp32") == first != model_fingerprint(model, "bf16")
    (model / "config.json").write_text('{"x": 1}')
    assert model_fingerprint(model, "fp32") != first
    assert model_fingerprint("org/hub-model", "fp32") != model_fingerprint("org/other", "fp32")


def test_scores_written_by_two_ranks_are_read_back_exactly(tmp_path):
    r0, r1 = PairCache(tmp_path, "f" * 64, "rank0"), PairCache(tmp_path, "f" * 64, "rank1")
    ka, kb = r0.key(A, 1024), r0.key(B, 1024)
    assert len({ka, kb, r0.key(A, 512), r0.key(Request(A.prefix, A.target, 2), 1024)}) == 4
    r0.put([ka], [SA])
    r1.put([kb], [SB])
    r0.close()
    r1.close()
    assert sorted(p.name for p in r0.dir.iterdir()) == ["pairs.rank0.jsonl", "pairs.rank1.jsonl"]
    again = PairCache(tmp_path, "f" * 64)
    assert len(again) == 2 and again.get_all([ka, kb]) == [SA, SB]  # floats round-trip exactly
    assert again.get_all([ka, "missing"]) is None
    assert len(PairCache(tmp_path, "0" * 64)) == 0  # another model's scores are not read


def test_a_line_cut_by_a_kill_is_skipped_and_ended(tmp_path):
    cache = PairCache(tmp_path, "a" * 64)
    ka, kb = cache.key(A, 1024), cache.key(B, 1024)
    cache.put([ka], [SA])
    cache.close()
    with open(cache.path, "a", encoding="utf-8") as f:
        f.write('{"k": "' + kb + '", "v": [1.0, 2')  # the kill came mid-line
    resumed = PairCache(tmp_path, "a" * 64)
    assert resumed.get_all([ka]) == [SA] and resumed.get_all([kb]) is None
    resumed.put([kb], [SB])
    resumed.close()
    assert PairCache(tmp_path, "a" * 64).get_all([ka, kb]) == [SA, SB]
