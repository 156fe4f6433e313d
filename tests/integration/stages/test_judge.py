"""judge on 2 real Vicuna prompts against the REAL embedded judge (llama.cpp's server with
SmolLM2-135M-Instruct on CPU).

Replies are cut at 8 tokens to keep the test short, so no outcome is expected in
particular: what is checked is the contract (one row per prompt, both orders judged, an
explicit status per judgement, failed pairs never counted as ties, metrics that add up,
the cache, and the key never written).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reflection_tuning.infra.io import read_jsonl, write_jsonl
from reflection_tuning.llm.server import embedded_server
from reflection_tuning.stages import judge
from reflection_tuning.steps import judge as core

pytestmark = pytest.mark.slow  # a real llama.cpp server: about a minute on 2 CPU cores

REPO = Path(__file__).resolve().parents[3]
SECRET = "sk-fake-judge-key-never-written-1a2b"
SETS = ["vicuna", "koala", "wizardlm", "lima", "sinstruct"]


def _answers(shared_data) -> list[dict]:
    with open(shared_data / "eval_prompts/vicuna_test_set.jsonl", encoding="utf-8") as f:
        questions = [json.loads(next(f))["text"] for _ in range(2)]
    sft = ["Make a list of tasks, set priorities, and block time for each one in your calendar.",
           ""]
    baseline = ["Time.", "Stress is bad."]
    rows = []
    for n, (q, s, b) in enumerate(zip(questions, sft, baseline)):
        common = {"id": f"vicuna-{n:04d}", "set": "vicuna", "source_id": n + 1, "instruction": q, "input": "",
                  "prompt": q}
        rows += [{**common, "role": "sft", "answer": s}, {**common, "role": "baseline", "answer": b}]
    return rows


@pytest.fixture(scope="module")
def runs(tmp_path_factory, embedded_gguf, shared_data):
    tmp = tmp_path_factory.mktemp("judge")
    write_jsonl(tmp / "answers.jsonl", _answers(shared_data), sort_by=("id", "role"))
    mp = pytest.MonkeyPatch()
    mp.setenv("RT_FAKE_JUDGE_KEY", SECRET)

    def once(base_url: str, tag: str) -> dict:
        assert judge.main([
            "--params", str(REPO / "params.yaml"), "--base-url", base_url, "--model", str(embedded_gguf),
            "--api-key-env", "RT_FAKE_JUDGE_KEY", "--max-tokens", "8", "--timeout", "240",
            "--length-bounds", "always",  # the same requests by URL or as embedded: the rerun hits the cache
            "--cache-dir", str(tmp / "cache"), "--prompt-file", str(core.JudgeStep.template_files()[0]),
            "--system-file", str(core.JudgeStep.template_files()[1]), "--input", str(tmp / "answers.jsonl"),
            "--output", str(tmp / f"judgements_{tag}.jsonl"), "--metrics", str(tmp / f"judge_{tag}.json"),
            "--plot", str(tmp / f"plot_{tag}.csv"),
        ]) == 0
        return json.loads((tmp / f"judge_{tag}.json").read_text())

    try:
        with embedded_server(embedded_gguf, parallel=4, slot_ctx=4096) as url:
            first = once(url, "first")
        second = once("embedded", "second")  # all cached: nothing sent, no server started
    finally:
        mp.undo()
    return {"dir": tmp, "first": first, "second": second, "rows": read_jsonl(tmp / "judgements_first.jsonl")}


def test_every_pair_is_judged_in_both_orders_with_an_explicit_status(runs):
    rows = runs["rows"]
    assert [r["id"] for r in rows] == ["vicuna-0000", "vicuna-0001"]
    for r in rows:
        assert [j["order"] for j in r["judgements"]] == list(core.ORDERS)
        assert r["outcome"] in core.OUTCOMES and len(r["template_hash"]) == 12
        for j in r["judgements"]:
            assert j["status"] in core.JUDGEMENT_STATUSES
            if j["status"] == "ok":
                assert j["score_1"] is not None and j["score_2"] is not None and j["error"] is None
            else:
                assert j["score_1"] is None and j["score_2"] is None and j["error"]
            if j["status"] != "request_error":
                assert j["raw_reply"] is not None and j["finish_reason"]
        ok = [j["status"] == "ok" for j in r["judgements"]]
        assert (r["outcome"] == "failed") == (not all(ok))
        if all(ok):
            assert r["outcome"] == core.combine(*zip(r["sft_scores"], r["baseline_scores"]))


def test_metrics_add_up(runs):
    m = runs["first"]
    assert m["judge_pairs"] == m["judge_vicuna_pairs"] == 2
    assert sum(m[f"judge_{o}"] for o in core.OUTCOMES) == 2
    assert sum(m[f"judgements_{s}"] for s in core.JUDGEMENT_STATUSES) == 4
    assert m["judge_failed"] == sum(r["outcome"] == "failed" for r in runs["rows"])
    assert all(m[f"judge_{s}_pairs"] == 0 for s in SETS if s != "vicuna")  # stable keys for every set
    assert m["judge_requests_sent"] >= 4
    plot = (runs["dir"] / "plot_first.csv").read_text().splitlines()
    assert plot[0] == "label,count,set,outcome" and len(plot) == 1 + 4 * (len(SETS) + 1)


def test_rerun_is_served_from_the_cache(runs):
    first, second = runs["first"], runs["second"]
    # every request of the first run is answered from the cache: 4 first asks and their re-asks
    assert (second["judge_requests_sent"], second["judge_cache_hits"]) == (0, 4 + first["judge_requests_reasked"])
    counters = ("judge_requests", "judge_retries", "judge_cache", "judge_max")  # what was sent, not what came of it
    assert {k: v for k, v in second.items() if not k.startswith(counters)} == \
        {k: v for k, v in first.items() if not k.startswith(counters)}


def test_key_is_never_written(runs):
    for f in runs["dir"].rglob("*"):
        if f.is_file():
            assert SECRET.encode() not in f.read_bytes(), f
