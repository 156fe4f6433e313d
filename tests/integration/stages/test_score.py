"""The score stage on real Alpaca rows, with hand-built reflected variants (swapped real texts)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from shipped import PARAMS, params_config

from reflection_tuning.infra.config import ConfigError
from reflection_tuning.infra.errors import UserError
from reflection_tuning.infra.io import read_jsonl, write_jsonl
from reflection_tuning.score.ifd import TERMS
from reflection_tuning.stages.score import Config, main

N = 4
# the shipped params, with no resume cache
PARAMS_ARGS = ["--params", str(PARAMS), "--cache-dir", "null"]


def cfg(**kw) -> Config:
    return params_config(Config, "score", **{"cache_dir": None, **kw})


def teacher_row(orig: dict, variant: str, instruction, input, output, status: str = "ok") -> dict:
    if status != "ok":
        instruction = input = output = None
    return {"id": orig["id"], "variant": variant, "instruction": instruction, "input": input, "output": output,
            "source": orig["source"], "status": status}


def build_variants(rows: list[dict], data: Path) -> None:
    """original = rows[:N]; instruction = texts of rows[N+k]; response = Q with rows[2N+k]'s output;
    both = the instruction variant's Q with rows[3N+k]'s output. ``both`` of row 3 failed to parse
    and ``response`` of row 2 is missing altogether."""
    orig = rows[:N]
    ins = [teacher_row(o, "instruction", rows[N + k]["instruction"], rows[N + k]["input"], rows[N + k]["output"])
           for k, o in enumerate(orig)]
    resp = [teacher_row(o, "response", o["instruction"], o["input"], rows[2 * N + k]["output"])
            for k, o in enumerate(orig) if k != 2]
    both = [teacher_row(o, "both", ins[k]["instruction"], ins[k]["input"], rows[3 * N + k]["output"],
                        status="parse_error" if k == 3 else "ok") for k, o in enumerate(orig)]
    for name, rs in (("original", orig), ("instruction", ins), ("response", resp), ("both", both)):
        write_jsonl(data / f"{name}.jsonl", rs)


def test_pipeline_mode(alpaca_rows, tiny_model, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    build_variants(alpaca_rows, tmp_path / "data" / "alpaca")
    # the student is a directory that does not exist: the proxy scorer is the one loaded
    assert main(["--dataset=alpaca", *PARAMS_ARGS, "--model", "no/such/student", "--device", "cpu",
                 "--proxy-model", str(tiny_model), "--batch-tokens", "4096", "--embed", "true",
                 "--train-template", "alpaca",  # as dvc.yaml passes finetune.template
                 "--log-level", "WARNING"]) == 0

    rows = read_jsonl("data/alpaca/scores.jsonl")
    assert len(rows) == 4 * N
    assert [(r["id"], r["variant"]) for r in rows] == sorted((r["id"], r["variant"]) for r in rows)
    by = {(r["id"], r["variant"]): r for r in rows}
    ids = [r["id"] for r in alpaca_rows[:N]]
    assert by[ids[3], "both"]["status"] == "unusable" and by[ids[2], "response"]["status"] == "unusable"
    for key in ((ids[3], "both"), (ids[2], "response")):
        assert by[key]["ifd"] is None and by[key]["rifd"] is None and by[key]["ppl_a"] is None
    ok = [r for r in rows if r["status"] == "ok"]
    assert len(ok) == 4 * N - 2
    for r in ok:
        assert r["ifd"] == pytest.approx(r["ppl_a_given_q"] / r["ppl_a"])
        assert r["rifd"] == pytest.approx(r["ppl_q_given_a"] / r["ppl_q"])
        assert all(r[f"tokens_{t}"] > 0 for t in TERMS) and r["truncated"] is False
    # original and response share Q; instruction and both share Q*: the same "Q alone" scores
    assert by[ids[0], "original"]["loss_q"] == by[ids[0], "response"]["loss_q"]
    assert by[ids[0], "instruction"]["loss_q"] == by[ids[0], "both"]["loss_q"]

    m = json.loads(Path("metrics/alpaca/score.json").read_text())
    assert m["rows"] == 16 and m["original_rows"] == m["both_rows"] == N
    assert m["both_status_unusable"] == 1 and m["both_status_ok"] == N - 1 and m["both_failed"] == 0
    assert m["original_status_ok"] == N and m["original_truncated_share"] == 0
    assert m["pairs"] == 4 * (4 * N - 2)
    assert m["pairs_unique"] == m["pairs"] - 6  # 3 shared Q, 3 shared Q*
    assert 0 <= m["padding_fraction"] < 1 and m["tokens_scored"] > 0 and m["seconds"] > 0
    assert m["original_ifd_mean"] == pytest.approx(sum(by[i, "original"]["ifd"] for i in ids) / N)

    emb = np.load("data/alpaca/embeddings.npz")  # one mean-pooled vector per scored row, sorted
    keys = list(zip(emb["ids"].tolist(), emb["variants"].tolist()))
    assert keys == sorted((r["id"], r["variant"]) for r in rows if r["status"] != "unusable")
    assert emb["vectors"].shape == (4 * N - 2, 64) and np.isfinite(emb["vectors"]).all()
    assert not np.allclose(emb["vectors"][0], emb["vectors"][1])

    with open("metrics/alpaca/score_ifd.csv", newline="") as f:
        plot = list(csv.DictReader(f))
    assert len(plot) == len(ok) and set(plot[0]) == {"id", "variant", "ifd", "rifd"}
    assert float(plot[0]["ifd"]) == pytest.approx(by[plot[0]["id"], plot[0]["variant"]]["ifd"])


def test_plain_mode(alpaca_rows, tiny_model, tmp_path):
    plain = [{k: r[k] for k in ("instruction", "input", "output")} for r in alpaca_rows[20:23]]
    plain.append({"instruction": "Say nothing.", "input": "", "output": ""})
    write_jsonl(tmp_path / "in.jsonl", plain)
    assert main(["--input", str(tmp_path / "in.jsonl"), "--output", str(tmp_path / "out.jsonl"),
                 "--model", str(tiny_model), "--template", "vicuna", *PARAMS_ARGS,
                 "--metrics", str(tmp_path / "m.json"), "--log-level", "WARNING"]) == 0
    out = read_jsonl(tmp_path / "out.jsonl")
    assert [r["instruction"] for r in out] == [r["instruction"] for r in plain]  # input order kept
    assert [r["status"] for r in out] == ["ok", "ok", "ok", "empty"]
    assert out[3]["ifd"] is None and out[3]["tokens_a_given_q"] == 0  # empty output: a status, never 0
    assert json.loads((tmp_path / "m.json").read_text())["original_status_empty"] == 1


class Recording:
    """The real scorer, recording the requests it is given."""

    def __init__(self, scorer):
        self.inner, self.requests = scorer, []
        self.tokenizer, self.stats = scorer.tokenizer, scorer.stats

    def score(self, requests):
        self.requests += list(requests)
        return self.inner.score(requests)


def test_template_defaults_to_the_training_template_and_input_is_merged(alpaca_rows, tiny_model, tmp_path):
    from reflection_tuning.rows import merge_input
    from reflection_tuning.score.scorer import HFScorer
    from reflection_tuning.stages.score import run_plain, template_of
    from reflection_tuning.student import StudentConfig
    from reflection_tuning.templates import prompt

    row = next(r for r in alpaca_rows if r["input"])
    write_jsonl(tmp_path / "in.jsonl", [{k: row[k] for k in ("instruction", "input", "output")}])
    assert cfg().template is None and cfg().max_length == 2048 and cfg().input_mode == "merge"  # shipped
    assert template_of(cfg()) == "vicuna" and template_of(cfg(), "alpaca") == "alpaca"
    assert template_of(cfg(template="bare"), "alpaca") == "bare"
    merged = merge_input(row["instruction"], row["input"])
    for train_template, expected in ((None, "vicuna"), ("alpaca", "alpaca")):
        scorer = Recording(HFScorer.from_pretrained(tiny_model, "cpu"))
        run_plain(cfg(device="cpu"), StudentConfig(str(tiny_model)), tmp_path / "in.jsonl",
                  tmp_path / "out.jsonl", scorer=scorer, train_template=train_template)
        prefixes = {r.prefix for r in scorer.requests}
        # the original is scored in the no-input shape, its input merged as rows.merge_input does
        assert prompt(expected, merged) in prefixes
        assert read_jsonl(tmp_path / "out.jsonl")[0]["ifd_status"] == "ok"


def test_bad_config():
    with pytest.raises(ConfigError, match="template is 'llama'; expected one of"):
        cfg(template="llama")
    with pytest.raises(ConfigError, match="input_mode is 'drop'"):
        cfg(input_mode="drop")
    with pytest.raises(ConfigError, match="max_length"):
        cfg(max_length=1)
    with pytest.raises(UserError, match=r"score: missing input data/nowhere/original.jsonl \(--original\)"):
        main(["--dataset", "nowhere", *PARAMS_ARGS])
    with pytest.raises(SystemExit):
        main([*PARAMS_ARGS, "--input", str(PARAMS)])  # plain mode needs --output too (the input exists)
    with pytest.raises(SystemExit):
        main([*PARAMS_ARGS, "--output", "x.jsonl"])  # pipeline mode needs --dataset (or every path)
