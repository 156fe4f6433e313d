"""tasks/load.py: the local lm-eval tasks load from the real benchmark files, with their shots;
lm-eval's own task names are found in its index."""

from __future__ import annotations

import pytest
from shipped import params_config

from reflection_tuning.infra.errors import UserError
from reflection_tuning.stages.evaluate import Config
from reflection_tuning.tasks.load import available_tasks, fewshot_for, load_tasks, task_configs

DOCS = {"rt_arc_challenge": 1150, "rt_hellaswag": 10042, "rt_mmlu": 14042, "rt_truthfulqa_mc2": 817}
DEFAULT_TASKS = tuple(params_config(Config, "evaluate").tasks)  # the shipped tasks: the four local ones


def test_every_local_task_loads_the_real_files(shared_data):
    from lm_eval.tasks import TaskManager

    assert set(available_tasks()) == set(DEFAULT_TASKS) == set(DOCS)
    configs = task_configs(list(DEFAULT_TASKS), shared_data / "benchmarks")
    tasks = TaskManager(include_defaults=False).load(configs)["tasks"]
    for name, n in DOCS.items():
        docs = tasks[name].eval_docs
        assert len(docs) == n, name
        doc = docs[0]
        choices = tasks[name].doc_to_choice(doc)
        target = tasks[name].doc_to_target(doc)
        assert len(choices) >= 2 and 0 <= target < len(choices), name
        assert tasks[name].doc_to_text(doc).strip(), name


def test_task_config_errors(shared_data, tmp_path):
    with pytest.raises(UserError, match="unknown task"):
        task_configs(["hellaswag"], shared_data / "benchmarks")
    with pytest.raises(UserError, match="not found"):
        task_configs(["rt_mmlu"], tmp_path / "nowhere")
    with pytest.raises(UserError, match="rt_mmlu"):
        task_configs(["rt_mmlu"], tmp_path)  # the directory exists, the files do not


def test_mmlu_shots_are_the_dev_rows_of_the_question_subject(shared_data):
    from reflection_tuning.tasks.utils import read_mmlu_csv

    bench = shared_data / "benchmarks"
    names = ["rt_mmlu", "rt_arc_challenge", "rt_truthfulqa_mc2"]
    shots = fewshot_for(names, {"rt_mmlu": 5, "rt_arc_challenge": 25, "rt_truthfulqa_mc2": 0})
    tasks = load_tasks(task_configs(names, bench), [], shots)
    assert {n: tasks[n].get_config("num_fewshot") for n in names} == {"rt_mmlu": 5, "rt_arc_challenge": 25,
                                                                       "rt_truthfulqa_mc2": 0}
    mmlu = tasks["rt_mmlu"]
    for doc in list(mmlu.eval_docs)[:3]:  # three subjects (interleaved)
        context = mmlu.fewshot_context(doc, 5)
        dev = read_mmlu_csv(bench / "mmlu" / "dev" / f"{doc['subject']}_dev.csv")
        assert context.startswith(f"The following are multiple choice questions (with answers) about "
                                  f"{doc['subject'].replace('_', ' ')}.\n\n")
        positions = [context.index(row["question"].strip()) for row in dev]
        assert positions == sorted(positions)  # all five, in the dev file's order
        assert context.count("\nAnswer:") == 6 and context.endswith(mmlu.doc_to_text(doc))
    arc = tasks["rt_arc_challenge"]
    doc = list(arc.eval_docs)[0]
    assert arc.fewshot_context(doc, 25).count("Question: ") == 26


def test_fewshot_mapping_errors():
    assert fewshot_for(["a", "b"], 3) == {"a": 3, "b": 3}
    assert fewshot_for(["a", "b"], {"a": 5}) == {"a": 5, "b": None}
    with pytest.raises(UserError, match=r"\['c'\]"):
        fewshot_for(["a", "b"], {"c": 5})
    with pytest.raises(UserError, match="count"):
        fewshot_for(["a"], {"a": -1})


def test_hub_task_names_are_lm_eval_tasks():
    """The online preset's names exist in lm-eval's index (their data is not downloaded here)."""
    from lm_eval.tasks import TaskManager

    assert {"arc_challenge", "hellaswag", "mmlu", "truthfulqa_mc2"} <= set(TaskManager().all_tasks)
    with pytest.raises(UserError, match="neither local"):
        load_tasks([], ["rt_arc_challeng"])
