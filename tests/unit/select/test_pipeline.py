"""One selection on rows in memory: the steps in order, and metrics that account for every row."""

from __future__ import annotations

import pytest
from shipped import params_config

from reflection_tuning.rows import VARIANTS
from reflection_tuning.select.config import Config
from reflection_tuning.select.pipeline import select
from reflection_tuning.select.rules import BRANCHES


def cfg(**kw) -> Config:
    return params_config(Config, "select", **{"eval_prompts_dir": None, "top_k": None, "ratio": None,
                                              "budget": None, "diversity": None, **kw})


def s(ifd, rifd):
    return {"status": "ok", "ifd": ifd, "rifd": rifd}


# v2 keeps `both` of a (IFD 0.9), `response` of b (IFD 0.4), nothing of c (both not easier)
SCORES = {"a": (s(0.5, 0.8), s(0.7, 0.6), s(0.1, 0.1), s(0.9, 0.5)),
          "b": (s(0.7, 0.6), s(0.5, 0.8), s(0.4, 0.5), s(0.1, 0.1)),
          "c": (s(0.5, 0.8), s(0.7, 0.6), s(0.1, 0.1), s(0.9, 0.7))}
PROMPT = "what is the capital city of france and why did it become the capital of the whole country"


@pytest.fixture
def data():
    variants = {v: {i: {"id": i, "instruction": f"{v} question {i}", "input": "", "output": f"{v} answer {i}",
                        "source": "t", "status": "ok"} for i in SCORES} for v in VARIANTS}
    variants["both"]["a"]["output"] = f"Here: {PROMPT}."  # contaminated: holds an evaluation prompt
    scores = {(i, v): row for i, rows in SCORES.items() for v, row in zip(VARIANTS, rows)}
    return variants, scores


def test_v2_metrics_account_for_every_row(data):
    out = select(cfg(method="v2"), *data)
    m = out.metrics
    assert [(r["id"], r["variant"]) for r in out.rows] == [("a", "both"), ("b", "response")]
    assert (m["read"], m["kept_before_rank"], m["kept"], m["budget"], m["diversity_coverage"]) == (3, 2, 2, None, None)
    assert sum(m[f"branch_{b}"] for b in BRANCHES["v2"]) == m["read"]
    assert {k for k in m if k.startswith("branch_")} == {f"branch_{b}" for bs in BRANCHES.values() for b in bs}
    assert (m["kept_both"], m["kept_response"], m["kept_original"]) == (1, 1, 0)
    assert m["compat_both_samples"] == 2 and out.rejects == [] and len(out.shifts) == 3


def test_decontaminate_then_rank_then_budget(data):
    out = select(cfg(method="v1", eval_prompts_dir="sets", decontaminate=True, top_k=2, budget=1, seed=0), *data,
                 eval_sets={"vicuna": [PROMPT]})
    m = out.metrics
    assert [(r["id"], r["reason"], r["eval_sets"]) for r in out.rejects] == [("a", "contaminated", ["vicuna"])]
    assert (m["kept_before_rank"], m["dropped_contaminated"], m["dropped_ifd_ge1"]) == (3, 1, 0)
    assert (m["dropped_unscored"], m["dropped_by_rank"], m["dropped_by_budget"], m["kept"]) == (0, 0, 1, 1)
    assert m["contaminated_rows_vicuna"] == 1
    assert m["kept_before_rank"] == sum(m[k] for k in ("dropped_contaminated", "dropped_ifd_ge1", "dropped_unscored",
                                                       "dropped_by_rank", "dropped_by_budget", "kept"))


def test_budget_matches_what_v2_keeps(data):
    out = select(cfg(method="length", budget={"match": "v2"}), *data, count_tokens=len)
    assert out.metrics["budget"] == 2 and [r["variant"] for r in out.rows] == ["original", "original"]
    assert select(cfg(method="v2", budget={"match": "v2"}), *data).metrics["dropped_by_budget"] == 0
