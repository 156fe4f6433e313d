"""score/pairs.py with the tiny model: the cap of a truncated pair's "alone" term, and a plain
rows file scored and written back (the stage's two modes: tests/integration/stages/test_score.py)."""

from __future__ import annotations

import pytest

from reflection_tuning import status as st
from reflection_tuning.infra.io import read_jsonl, write_jsonl
from reflection_tuning.rows import FIELDS
from reflection_tuning.score.pairs import score_file
from reflection_tuning.score.scorer import HFScorer
from reflection_tuning.templates import prompt


def test_truncated_rows_compare_like_with_like(alpaca_rows, tiny_model, tmp_path):
    """A truncated "A given Q" makes "A alone" cover as many target tokens, as in the reference."""
    from transformers import AutoTokenizer

    row = {k: alpaca_rows[0][k] for k in FIELDS}
    tok = AutoTokenizer.from_pretrained(tiny_model)
    n_prompt = len(tok(prompt("alpaca", row["instruction"], row["input"])).input_ids)
    assert len(tok(row["output"]).input_ids) > 20
    scorer = HFScorer.from_pretrained(tiny_model, "cpu", max_length=n_prompt + 10, progress=False)
    write_jsonl(tmp_path / "in.jsonl", [row])
    m = score_file(tmp_path / "in.jsonl", tmp_path / "out.jsonl", tmp_path / "m.json", scorer, "alpaca", "keep")
    (r,) = read_jsonl(tmp_path / "out.jsonl")
    assert {k: r[k] for k in FIELDS} == row  # the row comes back with its score fields
    assert r["truncated"] is True and r["tokens_a_given_q"] == 10 == r["tokens_a"]
    # the reverse prompt holds the whole response: no room is left for Q, an explicit failure
    # of the r-IFD alone; the IFD stands (the two are independent)
    assert r["tokens_q_given_a"] == 0 and r["status"] == st.EMPTY and r["rifd"] is None
    assert (r["ifd_status"], r["rifd_status"]) == (st.OK, st.EMPTY)
    assert r["ifd"] == pytest.approx(r["ppl_a_given_q"] / r["ppl_a"])
    assert m["original_truncated_share"] == 1.0 and m["original_status_empty"] == 1
    assert m["original_ifd_status_ok"] == 1 and m["original_rifd_status_empty"] == 1
    assert m["pairs"] == 4 and m["seconds"] > 0 and (tmp_path / "m.json").is_file()
