"""The doc loaders/parsers of the local lm-eval tasks, on the real benchmark files."""

from __future__ import annotations

import bz2
import json
import math

import pytest

from reflection_tuning.tasks import utils


@pytest.fixture(scope="module")
def bench(shared_data):
    return shared_data / "benchmarks"


def test_hellaswag_six_line_groups(bench):
    with bz2.open(bench / "hellaswag" / "hellaswag_val_full.txt.bz2", "rt", encoding="utf-8") as f:
        docs = utils.parse_hellaswag(f.read().split("\n"))
    assert len(docs) == 10042
    first = docs[0]
    assert first["query"] == "Roof shingle removal: A man is sitting on a roof. he"
    assert first["label"] == first["gold"] == 3
    assert first["choices"][3] == "starts pulling up roofing on a roof."
    assert all(len(d["choices"]) == 4 and d["label"] in range(4) for d in docs)
    assert [d["ind"] for d in docs[:3]] == [0, 1, 2]


def test_hellaswag_errors_and_cleanup():
    with pytest.raises(ValueError, match="multiple of 6"):
        utils.parse_hellaswag(["ctx", "0", "a", "b", "c"])
    with pytest.raises(ValueError, match="line 2"):
        utils.parse_hellaswag(["ctx", "x", "a", "b", "c", "d"])
    # lm-eval's WikiHow clean-up: " [title]" becomes ". ", other [tags] go
    text = " How to cook [title] Boil water. [step] Add salt. "
    assert utils.preprocess_hellaswag(text) == "How to cook. Boil water. Add salt."


def test_mmlu_row_to_choices_and_gold(bench):
    rows = utils.read_mmlu_csv(bench / "mmlu" / "test" / "anatomy_test.csv")
    assert len(rows) == 135
    assert rows[0]["subject"] == "anatomy"
    assert rows[0]["choices"][0] == "paralysis of the facial muscles."
    assert rows[0]["answer"] == 0 and rows[1]["answer"] == 1
    assert all(len(r["choices"]) == 4 and r["answer"] in range(4) for r in rows)


def test_mmlu_all_subjects_interleaved(bench):
    ds = utils.load_mmlu({"test": str(bench / "mmlu" / "test" / "*_test.csv")}, version=1.0)["test"]
    assert len(ds) == 14042
    # round-robin: the first 57 documents are one of each subject, so `limit` spans subjects
    assert len(set(ds["subject"][:57])) == 57


def test_mmlu_bad_rows(tmp_path):
    bad = tmp_path / "x_test.csv"
    bad.write_text("question,choice0,choice1,choice2,choice3,answer\nq,a,b,c,d,B\n")
    with pytest.raises(ValueError, match="x_test.csv:2"):
        utils.read_mmlu_csv(bad)
    bad.write_text("question,A,B,C,D,answer\n")
    with pytest.raises(ValueError, match="header"):
        utils.read_mmlu_csv(bad)
    with pytest.raises(FileNotFoundError):
        utils.load_mmlu({"test": str(tmp_path / "none" / "*.csv")})


def test_truthfulqa_mc2_docs(bench):
    ds = utils.load_truthfulqa_mc({"validation": str(bench / "truthfulqa" / "mc_task.json")})["validation"]
    assert len(ds) == 817
    doc = ds[0]
    assert doc["question"] == "What happens if you eat a pomegranate?"
    assert doc["mc2_targets"]["choices"][0] == "Nothing in particular happens when you eat a pomegranate."
    assert doc["mc2_targets"]["labels"] == [1, 1, 1, 0, 0, 0]
    assert all(sum(d["mc1_targets"]["labels"]) == 1 for d in ds)
    with pytest.raises(ValueError, match="no true answer"):
        utils.truthfulqa_doc({"question": "q", "mc1_targets": {"a": 0}, "mc2_targets": {"a": 1}})


@pytest.mark.parametrize("fn", [utils.process_results_mc2, utils._process_results_mc2])
def test_mc2_metric_is_true_probability_mass(fn):
    doc = {"mc2_targets": {"labels": [1, 0, 0]}}
    results = [(math.log(0.2), False), (math.log(0.1), False), (math.log(0.1), False)]
    assert fn(doc, results)["acc"] == pytest.approx(0.5)


def test_arc_doc(bench):
    with open(bench / "arc_challenge" / "ARC-Challenge-Test.jsonl", encoding="utf-8") as f:
        raw = json.loads(f.readline())
    doc = utils.arc_doc(raw)
    assert doc["question"].startswith("An astronomer observes")
    assert doc["choices"]["label"] == ["A", "B", "C", "D"]
    assert doc["choices"]["label"].index(doc["answerKey"]) == 2
    with pytest.raises(ValueError, match="answerKey"):
        utils.arc_doc({**raw, "answerKey": "E"})


def test_mmlu_test_docs_carry_their_subject_dev_rows(bench):
    files = {"test": [str(bench / "mmlu" / "test" / f"{s}_test.csv") for s in ("anatomy", "virology")],
             "dev": str(bench / "mmlu" / "dev" / "*_dev.csv")}
    ds = utils.load_mmlu(files)
    doc = ds["test"][1]  # interleaved: the first virology question
    assert doc["subject"] == "virology"
    dev = utils.read_mmlu_csv(bench / "mmlu" / "dev" / "virology_dev.csv")
    assert doc["dev"] == dev and len(dev) == 5
    sampler = utils.SubjectDevSampler([])
    assert sampler.sample(5, eval_doc=doc) == dev and sampler.sample(0, eval_doc=doc) == []
    assert sampler.sample(3, eval_doc=doc) == dev[:3]
    with pytest.raises(ValueError, match="only 0 dev rows"):
        sampler.sample(5, eval_doc={"subject": "x"})
