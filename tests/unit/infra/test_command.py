"""infra.command: a Stage declaration (options, help, paths from templates, sidecars beside --output)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from reflection_tuning.infra.command import COMMANDS, PathSpec, Section, Stage, beside, summary
from reflection_tuning.infra.config import ConfigError
from reflection_tuning.infra.errors import UserError


def test_beside_names():
    assert beside(Path("a/out.jsonl"), "metrics", "metrics/x/fetch.json") == Path("a/out.metrics.json")
    assert beside(Path("models/sft"), "loss_plot", "m/x.csv") == Path("models/sft.loss_plot.csv")
    assert beside(Path("answers.jsonl"), "alpaca_eval_dir", "data/x/alpaca_eval") == Path("answers.alpaca_eval")


# -- the Stage declaration ------------------------------------------------------------------

@dataclass(frozen=True)
class _Knobs:
    limit: int
    method: str


TOY = Stage("toy", "Stage ``toy``: a declaration for the tests.\n\nMore text.", sections=(Section(_Knobs, "toy"),),
            inputs={"rows": PathSpec("data/{dataset}/original.jsonl", flag="input")},
            outputs={"selected": PathSpec("data/{dataset}/selected.jsonl", flag="output"),
                     "metrics": "metrics/{dataset}/toy.json"})


@pytest.fixture
def params(tmp_path, monkeypatch):
    """The toy's params file, in a working directory that holds its input (and ``in.jsonl``)."""
    monkeypatch.chdir(tmp_path)
    for name in ("data/alpaca/original.jsonl", "data/a/original.jsonl", "in.jsonl"):
        Path(name).parent.mkdir(parents=True, exist_ok=True)
        Path(name).write_text("")
    path = tmp_path / "params.yaml"
    path.write_text("toy:\n  limit: 3\n  method: v2\n")
    return path


@pytest.mark.parametrize("dataset", [["--dataset=alpaca"], ["--dataset", "alpaca"]])
def test_a_declared_stage_fills_its_templates_from_the_dataset(params, dataset):
    call = TOY.parse(["--params", str(params), *dataset, "--limit", "5"])
    assert call.dataset == "alpaca" and call.configs == (_Knobs(limit=5, method="v2"),)
    assert call.inputs == {"rows": Path("data/alpaca/original.jsonl")}
    assert call.outputs == {"selected": Path("data/alpaca/selected.jsonl"), "metrics": Path("metrics/alpaca/toy.json")}


def test_a_declared_stage_writes_its_sidecars_beside_the_output_given(params):
    call = TOY.parse(["--params", str(params), "--input", "in.jsonl", "--output", "runs/out.jsonl"])
    assert call.outputs == {"selected": Path("runs/out.jsonl"), "metrics": Path("runs/out.metrics.json")}
    with pytest.raises(SystemExit):  # no --dataset and no --input: nothing to fill the template with
        TOY.parse(["--params", str(params), "--output", "runs/out.jsonl"])


def test_a_missing_input_is_one_error_naming_it_and_its_option(params):
    Path("data/alpaca/original.jsonl").unlink()
    with pytest.raises(UserError, match=r"toy: missing input data/alpaca/original.jsonl \(--input\)"):
        TOY.parse(["--params", str(params), "--dataset", "alpaca"])
    with pytest.raises(UserError, match=r"missing input elsewhere.jsonl \(--input\)"):
        TOY.parse(["--params", str(params), "--input", "elsewhere.jsonl", "--output", "out.jsonl"])


def test_without_a_params_file_every_key_is_an_option(params, tmp_path):
    missing = tmp_path / "none.yaml"
    call = TOY.parse(["--params", str(missing), "--dataset", "a", "--limit", "1", "--method", "top_k"])
    assert call.configs == (_Knobs(limit=1, method="top_k"),)
    with pytest.raises(ConfigError, match=r"none.yaml not found and the options do not give every key.*method"):
        TOY.parse(["--params", str(missing), "--dataset", "a", "--limit", "1"])


def test_the_help_comes_from_the_declaration(capsys):
    with pytest.raises(SystemExit) as exit_:
        TOY.parse(["--help"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0 and "reflection-tuning toy" in out and "Stage `toy`" in out
    for option in ("--params", "--dataset", "--input", "--output", "--metrics", "--limit", "--method"):
        assert option in out
    assert "data/{dataset}/selected.jsonl" in out


def test_the_description_is_the_docstring_first_paragraph():
    doc = """
    ``reflection-tuning estimate``: the tokens and USD a run will cost,
    before anything is sent.

    More text.
    """
    assert summary(doc) == "`reflection-tuning estimate`: the tokens and USD a run will cost, before anything is sent."
    assert summary(None) is None and summary("  ") is None


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_takes_dataset_in_both_spellings(name, monkeypatch, tmp_path):
    """``reflection-tuning <command> --dataset=alpaca`` and ``--dataset alpaca`` parse the same,
    with the shipped params.yaml, and every declared path of a per-dataset stage names the dataset."""
    from shipped import PARAMS, link_prompt_files

    from reflection_tuning.infra.command import declaration

    monkeypatch.chdir(tmp_path)
    link_prompt_files(tmp_path)
    stage = declaration(name)
    for key in stage.inputs:  # the inputs exist: a file, or a directory (a model, metrics/K)
        path = Path(stage.paths()[key].template.format(dataset="alpaca"))
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix:
            path.touch()
        else:
            path.mkdir(exist_ok=True)
    given = ["--params", str(PARAMS)] if stage.sections else []
    for flag in (f for f in stage.flags if f.options.get("required")):  # compress --input, push --repo
        Path(f"{flag.dest}.json").touch()
        given += [flag.names[0], f"{flag.dest}.json"]
    joined = stage.parse(["--dataset=alpaca", *given])
    split = stage.parse(["--dataset", "alpaca", *given])
    assert (joined.configs, joined.inputs, joined.outputs) == (split.configs, split.inputs, split.outputs)
    if stage.dataset:
        paths = {**joined.inputs, **joined.outputs}
        assert all(p is not None and "alpaca" in p.parts[-2:] + (p.stem,) for p in paths.values()), paths


def test_the_one_input_check_names_the_stage_to_run_first(tmp_path, monkeypatch):
    """A missing input is named with the stage whose declaration writes it; a missing ``*_file`` key
    and a missing file of a ``reads`` flag are found by the same check, before anything runs."""
    from shipped import PARAMS, link_prompt_files

    from reflection_tuning.stages import reflect_response, score

    monkeypatch.chdir(tmp_path)
    link_prompt_files(tmp_path)
    Path("data/a").mkdir(parents=True)
    Path("data/a/original.jsonl").touch()
    with pytest.raises(UserError, match=r"reflect_response: missing input data/a/instruction.jsonl \(--instruction\); "
                                        r"run reflect_instruction first \(dvc repro"):
        reflect_response.STAGE.parse(["--dataset", "a", "--params", str(PARAMS)])
    Path("data/a/instruction.jsonl").touch()
    with pytest.raises(UserError, match=r"missing input none.j2 \(reflect_response.prompt_file\); give the path"):
        reflect_response.STAGE.parse(["--dataset", "a", "--params", str(PARAMS), "--prompt-file", "none.j2"])
    assert reflect_response.STAGE.parse(["--dataset", "a", "--params", str(PARAMS)]).inputs["instruction"]
    with pytest.raises(UserError, match=r"score: missing input rows.jsonl \(--input\); give the path"):
        score.STAGE.parse(["--params", str(PARAMS), "--input", "rows.jsonl", "--output", "s.jsonl"])
