"""The select stage on real Alpaca rows (hand-built variants) with scores chosen to reach every v2 branch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from shipped import PARAMS, params_config

from reflection_tuning.infra.config import ConfigError
from reflection_tuning.infra.errors import UserError
from reflection_tuning.infra.io import read_jsonl, write_jsonl
from reflection_tuning.stages.select import Config, Inputs, Outputs, main, run

N = 8
# the shipped params, without the evaluation prompts (each test that checks them gives their directory)
PARAMS_ARGS = ["--params", str(PARAMS), "--eval-prompts-dir", "null"]


def cfg(**kw) -> Config:
    return params_config(Config, "select", **{"eval_prompts_dir": None, **kw})
VARIANTS = ("original", "instruction", "response", "both")


def teacher_row(orig: dict, variant: str, src: dict, status: str = "ok") -> dict:
    ok = status == "ok"
    return {"id": orig["id"], "variant": variant, "instruction": src["instruction"] if ok else None,
            "input": src["input"] if ok else None, "output": src["output"] if ok else None,
            "source": orig["source"], "status": status}


def s(ifd, rifd, status="ok"):
    return {"status": status, "ifd": ifd if status == "ok" else None, "rifd": rifd if status == "ok" else None}


# Per sample: scores of original, instruction, response, both; and the v2 branch they lead to.
CASES = [
    ((0.5, 0.8), (0.7, 0.6), (0.1, 0.1), (0.9, 0.5), "both"),
    ((0.5, 0.8), (0.7, 0.6), (0.1, 0.1), (0.9, 0.7), "both_not_easier"),
    ((0.5, 0.8), (0.7, 0.6), (0.1, 0.1), (1.3, 0.5), "both_filtered"),
    ((0.7, 0.6), (0.5, 0.8), (0.4, 0.5), (0.1, 0.1), "response"),
    ((0.7, 0.6), (0.5, 0.8), (0.4, 0.9), (0.1, 0.1), "response_not_easier"),
    ((0.7, 1.6), (0.5, 0.8), (0.4, 1.2), (0.1, 0.1), "response_filtered"),
    ((0.5, 0.8), (0.7, 0.6), (0.1, 0.1), "nan", "unscored"),
    ((0.5, 0.8), (0.7, 0.6), (0.1, 0.1), "unusable", "unscored"),  # the teacher failed on `both`
]


@pytest.fixture
def inputs(alpaca_rows, tmp_path) -> Inputs:
    orig = alpaca_rows[:N]
    files = {
        "original": orig,
        "instruction": [teacher_row(o, "instruction", alpaca_rows[N + k]) for k, o in enumerate(orig)],
        "response": [teacher_row(o, "response", {**o, "output": alpaca_rows[2 * N + k]["output"]})
                     for k, o in enumerate(orig)],
        "both": [teacher_row(o, "both", alpaca_rows[3 * N + k], "parse_error" if k == 7 else "ok")
                 for k, o in enumerate(orig)],
    }
    scores = []
    for o, case in zip(orig, CASES):
        for v, sc in zip(VARIANTS, case[:4]):
            scores.append({"id": o["id"], "variant": v, **(s(*sc) if isinstance(sc, tuple) else s(None, None, sc))})
    d = tmp_path / "data"
    for name, rows in files.items():
        write_jsonl(d / f"{name}.jsonl", rows)
    write_jsonl(d / "scores.jsonl", scores, sort_by=("id", "variant"))
    return Inputs(d / "scores.jsonl", *(d / f"{v}.jsonl" for v in VARIANTS))


def _out(tmp_path: Path) -> Outputs:
    return Outputs(tmp_path / "selected.jsonl", tmp_path / "select.json")


def test_v2_counts_every_branch(inputs, alpaca_rows, tmp_path):
    m = run(cfg(method="v2"), inputs, _out(tmp_path))
    assert m == json.loads((tmp_path / "select.json").read_text())
    assert m["read"] == N and m["kept"] == 2 == m["kept_before_rank"] and m["dropped_by_rank"] == 0
    branches = {k[len("branch_"):]: v for k, v in m.items() if k.startswith("branch_") and v}
    assert sum(branches.values()) == m["read"]
    assert "branch_original_fallback" in m  # every method's keys, for stable `dvc metrics diff`
    assert branches == {c[4]: (2 if c[4] == "unscored" else 1) for c in CASES}
    assert (m["kept_both"], m["kept_response"], m["kept_original"], m["kept_instruction"]) == (1, 1, 0, 0)

    rows = {r["variant"]: r for r in read_jsonl(tmp_path / "selected.jsonl")}
    both, resp = rows["both"], rows["response"]
    assert set(both) == {"id", "variant", "instruction", "input", "output", "source", "ifd", "rifd"}
    assert both["id"] == alpaca_rows[0]["id"] and both["output"] == alpaca_rows[3 * N]["output"]
    assert (both["ifd"], both["rifd"]) == (0.9, 0.5)
    assert resp["id"] == alpaca_rows[3]["id"] and resp["instruction"] == alpaca_rows[3]["instruction"]
    assert resp["output"] == alpaca_rows[2 * N + 3]["output"] and (resp["ifd"], resp["rifd"]) == (0.4, 0.5)


def test_v2_top_k_keeps_the_highest_ifd(inputs, tmp_path):
    m = run(cfg(method="v2", top_k=1), inputs, _out(tmp_path))
    assert (m["kept_before_rank"], m["dropped_by_rank"], m["kept"]) == (2, 1, 1)
    assert [r["variant"] for r in read_jsonl(tmp_path / "selected.jsonl")] == ["both"]  # IFD 0.9 > 0.4
    m = run(cfg(method="v2", ratio=0.5), inputs, _out(tmp_path))
    assert m["kept"] == 1


def test_top_k_drops_ifd_ge_1_before_ranking(inputs, tmp_path):
    """v1 keeps a row of every sample; case 2's `both` has IFD 1.3: dropped before ranking,
    never first in the IFD-descending order (Cherry LLM / Superfiltering). Case 6's score
    failed: unscored, never read as 0. Case 7 fell back to `instruction` (IFD 0.7)."""
    m = run(cfg(method="v1", top_k=3), inputs, _out(tmp_path))
    assert (m["kept_before_rank"], m["dropped_ifd_ge1"], m["dropped_unscored"]) == (N, 1, 1)
    assert m["kept"] == 3 and m["dropped_by_rank"] == 3
    assert m["kept_before_rank"] == (m["dropped_contaminated"] + m["dropped_ifd_ge1"] + m["dropped_unscored"]
                                     + m["dropped_by_rank"] + m["kept"])
    kept = read_jsonl(tmp_path / "selected.jsonl")
    assert sorted(r["ifd"] for r in kept) == [0.7, 0.9, 0.9]


def test_compatibility_outputs(inputs, tmp_path):
    out = Outputs(tmp_path / "selected.jsonl", tmp_path / "select.json", shift=tmp_path / "shift.csv",
                  compat=tmp_path / "compat.csv")
    m = run(cfg(method="v1"), inputs, out)  # the student's view does not depend on the method
    assert m["compat_both_samples"] == 3 and m["compat_response_samples"] == 3  # 2 unscored of 8
    assert m["compat_both_accepted_share"] == pytest.approx(1 / 3)
    lines = (tmp_path / "shift.csv").read_text().splitlines()
    assert lines[0] == "id,teacher,candidate,branch,accepted,ifd_shift,rifd_shift" and len(lines) == 7
    assert (tmp_path / "compat.csv").read_text().startswith("teacher,candidate,samples,accepted,accepted_share")


def test_v1_trains_on_recycled_pairs(inputs, alpaca_rows, tmp_path):
    m = run(cfg(method="v1"), inputs, _out(tmp_path))
    assert (m["read"], m["kept"], m["branch_both"], m["branch_instruction_fallback"]) == (N, N, N - 1, 1)
    assert (m["kept_both"], m["kept_instruction"]) == (N - 1, 1)
    fallback = next(r for r in read_jsonl(tmp_path / "selected.jsonl") if r["variant"] == "instruction")
    assert fallback["id"] == alpaca_rows[7]["id"] and fallback["instruction"] == alpaca_rows[N + 7]["instruction"]


def test_original_keeps_every_original(inputs, alpaca_rows, tmp_path):
    m = run(cfg(method="original"), inputs, _out(tmp_path))
    assert (m["kept"], m["kept_original"], m["branch_original"]) == (N, N, N)
    rows = read_jsonl(tmp_path / "selected.jsonl")
    assert {r["output"] for r in rows} == {r["output"] for r in alpaca_rows[:N]}


def test_main_paths_and_unknown_method(inputs, tmp_path, monkeypatch):
    monkeypatch.chdir(inputs.scores.parent.parent)
    Path("data").rename("alpaca")
    Path("data").mkdir()
    Path("alpaca").rename("data/alpaca")
    from reflection_tuning.score.embed import save_embeddings

    save_embeddings(Path("data/alpaca/embeddings.npz"), [], None)  # what score writes without score.embed
    assert main(["--dataset=alpaca", *PARAMS_ARGS, "--top-k", "1", "--log-level", "WARNING"]) == 0
    assert json.loads(Path("metrics/alpaca/select.json").read_text())["kept"] == 1
    assert len(read_jsonl("data/alpaca/selected.jsonl")) == 1
    assert Path("data/alpaca/select_rejects.jsonl").is_file()
    assert Path("metrics/alpaca/select_shift.csv").is_file() and Path("metrics/alpaca/select_compat.csv").is_file()
    # outside a dataset: every input as an option; metrics and rejects beside --output
    d = Path("data/alpaca")
    paths = [f"--{n}={d / f'{n}.jsonl'}" for n in ("scores", *VARIANTS)]
    assert main([*paths, *PARAMS_ARGS, "--method", "v1", "--output", "out/sel.jsonl"]) == 0
    assert json.loads(Path("out/sel.metrics.json").read_text())["kept"] == N
    assert Path("out/sel.rejects.jsonl").is_file() and len(read_jsonl("out/sel.jsonl")) == N
    with pytest.raises(SystemExit):
        main([*PARAMS_ARGS, "--output", "out/sel.jsonl"])  # no --dataset and no inputs
    with pytest.raises(ConfigError, match="method is 'v3'; expected one of"):
        main(["--dataset", "alpaca", *PARAMS_ARGS, "--method", "v3"])
    assert main(["--dataset", "alpaca", *PARAMS_ARGS, "--method", "random", "--budget", "2"]) == 0
    assert json.loads(Path("metrics/alpaca/select.json").read_text())["kept"] == 2
    Path("data/alpaca/scores.jsonl").unlink()
    # every declared input, whatever the method: v1 ranks nothing, and still reads the scores
    with pytest.raises(UserError, match=r"select: missing input data/alpaca/scores.jsonl \(--scores\)"):
        main(["--dataset", "alpaca", *PARAMS_ARGS, "--method", "v1"])
    with pytest.raises(ConfigError, match="not both"):
        cfg(top_k=1, ratio=0.5)


def test_decontamination_report_and_drop(inputs, alpaca_rows, shared_data, tmp_path):
    from reflection_tuning.decontamination import read_eval_sets

    vicuna = read_eval_sets(shared_data / "eval_prompts")["vicuna"]
    # the kept `both` row (sample 0) now answers with a Vicuna question in it
    both = read_jsonl(inputs.both)
    kept = next(r for r in both if r["id"] == alpaca_rows[0]["id"])
    kept["output"] = f"Here is a question: {vicuna[0]} And an answer."
    write_jsonl(inputs.both, both)
    prompts = shared_data / "eval_prompts"
    out = Outputs(tmp_path / "selected.jsonl", tmp_path / "select.json", tmp_path / "rejects.jsonl")

    m = run(cfg(method="v2", eval_prompts_dir=str(prompts)), inputs, out)  # report only
    assert (m["kept"], m["dropped_contaminated"], m["contaminated_rows"], m["contaminated_rows_vicuna"]) == (2, 0, 1, 1)
    assert m["contaminated_prompts_vicuna"] == 1 and m["eval_prompts_lima"] == 300
    assert read_jsonl(out.rejects) == []

    m = run(cfg(method="v2", eval_prompts_dir=str(prompts), decontaminate=True), inputs, out)
    assert (m["kept_before_rank"], m["dropped_contaminated"], m["dropped_by_rank"], m["kept"]) == (2, 1, 0, 1)
    assert [r["variant"] for r in read_jsonl(out.selected)] == ["response"]
    (reject,) = read_jsonl(out.rejects)
    assert (reject["variant"], reject["reason"]) == ("both", "contaminated")
    assert reject["eval_sets"] == ["lima", "vicuna"]  # LIMA's test set has the same question
    with pytest.raises(ConfigError, match="eval_prompts_dir"):
        cfg(decontaminate=True)


def test_baselines_at_the_budget_of_v2(inputs, alpaca_rows, tmp_path):
    """random and length keep as many original rows as v2 does ({match: v2}: 2 here)."""
    m = run(cfg(method="random", budget={"match": "v2"}, seed=3), inputs, _out(tmp_path))
    assert (m["budget"], m["kept"], m["kept_original"], m["dropped_by_budget"]) == (2, 2, 2, N - 2)
    first = read_jsonl(tmp_path / "selected.jsonl")
    run(cfg(method="random", budget=2, seed=3), inputs, _out(tmp_path))
    assert read_jsonl(tmp_path / "selected.jsonl") == first  # seeded
    originals = {r["id"]: r for r in alpaca_rows[:N]}
    assert all(r["output"] == originals[r["id"]]["output"] for r in first)

    m = run(cfg(method="length", budget=3), inputs, _out(tmp_path), count_tokens=len)
    longest = sorted(alpaca_rows[:N], key=lambda r: (-len(r["output"]), r["id"]))[:3]
    assert {r["id"] for r in read_jsonl(tmp_path / "selected.jsonl")} == {r["id"] for r in longest}
    assert m["kept"] == 3 and m["kept_before_rank"] == (m["dropped_contaminated"] + m["dropped_ifd_ge1"]
                                                        + m["dropped_unscored"] + m["dropped_by_rank"]
                                                        + m["dropped_by_budget"] + m["kept"])
    # v1 keeps every sample: cut to the budget by a seeded sample
    m = run(cfg(method="v1", budget=5), inputs, _out(tmp_path))
    assert (m["kept"], m["dropped_by_budget"], m["diversity_coverage"]) == (5, N - 5, None)


def test_diversity_picks_by_facility_location(inputs, tmp_path):
    """Embeddings in two clusters (v1 keeps `both` of samples 0-6 and `instruction` of 7): a budget
    of 2 takes one row from each cluster."""
    from reflection_tuning.score.embed import save_embeddings

    rows = read_jsonl(inputs.original)
    keys = [(r["id"], v) for r in rows for v in VARIANTS]
    cluster = {r["id"]: k < 5 for k, r in enumerate(rows)}  # samples 0-4 vs 5-7
    vectors = [[1.0, 0.01 * n] if cluster[i] else [-1.0, 0.01 * n] for n, (i, _) in enumerate(keys)]
    save_embeddings(tmp_path / "emb.npz", keys, vectors)
    inputs = Inputs(**{**inputs.__dict__, "embeddings": tmp_path / "emb.npz"})
    m = run(cfg(method="v1", budget=2, diversity="facility_location"), inputs, _out(tmp_path))
    picked = read_jsonl(tmp_path / "selected.jsonl")
    assert m["kept"] == 2 and {cluster[r["id"]] for r in picked} == {True, False}
    assert 0.9 < m["diversity_coverage"] <= 1.0
    # no embeddings: a clear error
    with pytest.raises(UserError, match="score.embed"):
        run(cfg(method="v1", budget=2, diversity="facility_location"),
            Inputs(**{**inputs.__dict__, "embeddings": tmp_path / "none.npz"}), _out(tmp_path))


@pytest.mark.parametrize("kw, match", [
    ({"method": "random"}, "needs select.budget"),
    ({"budget": -1}, "budget"),
    ({"budget": {"match": "v9"}}, "budget"),
    ({"diversity": "facility_location"}, "diversity needs"),
    ({"method": "length", "budget": 3, "diversity": "facility_location"}, "diversity needs"),
    ({"budget": 3, "diversity": "kmeans"}, "diversity"),
])
def test_bad_budget_config(kw, match):
    with pytest.raises(ConfigError, match=match):
        cfg(**kw)
