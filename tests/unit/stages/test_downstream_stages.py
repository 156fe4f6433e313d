"""The declarations of the stages downstream of ``select`` (finetune, finetune_baseline,
evaluate, generate, judge, report) and of the ``compress`` and ``push`` tools: options,
``--dataset=K`` and ``--dataset K``, paths from the templates or beside ``--output``, configs
from params.yaml only. Nothing is run: :meth:`Stage.parse` alone."""

from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path

import pytest
from shipped import PARAMS, link_prompt_files, params_config

from reflection_tuning import hub
from reflection_tuning.infra.command import STAGES
from reflection_tuning.infra.config import ConfigError
from reflection_tuning.llm.config import EndpointConfig
from reflection_tuning.stages import compress, evaluate, finetune, finetune_baseline, generate, judge, report

DECLARED = {"finetune": finetune, "finetune_baseline": finetune_baseline, "evaluate": evaluate,
            "generate": generate, "judge": judge, "report": report}
# the params sections of each stage's own config, and the config classes of the tools
SECTIONS = {"finetune": finetune.Config, "evaluate": evaluate.Config, "generate": generate.Config,
            "judge_step": judge.Config, "report": report.Config, "compress": compress.Config}


@pytest.fixture(autouse=True)
def _inputs(tmp_path, monkeypatch):
    """A working directory that holds every declared input of dataset ``alpaca``, and the
    paths the tests give as options: :meth:`Stage.parse` checks that the inputs exist."""
    monkeypatch.chdir(tmp_path)
    link_prompt_files(tmp_path)  # the judge's prompt files
    given = ["rows.jsonl", "a.jsonl", "m", "b", "elsewhere", "m/x"]
    templates = [spec.template.format(dataset="alpaca") for module in DECLARED.values()
                 for key, spec in module.STAGE.paths().items() if key in module.STAGE.inputs]
    for name in given + templates:
        path = Path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix:
            path.touch()
        else:
            path.mkdir(exist_ok=True)


def _parse(module, *argv: str):
    return module.STAGE.parse(["--params", str(PARAMS), *argv])


@pytest.mark.parametrize("name", sorted(DECLARED))
@pytest.mark.parametrize("form", ["equals", "space"])
def test_dataset_option_in_both_forms_fills_every_template(name, form):
    module = DECLARED[name]
    argv = ["--dataset=alpaca"] if form == "equals" else ["--dataset", "alpaca"]
    call = _parse(module, *argv)
    assert module.STAGE.name == name and name in STAGES
    assert call.dataset == "alpaca"
    for field, spec in module.STAGE.paths().items():
        path = {**call.inputs, **call.outputs}[field]
        assert path == Path(spec.template.format(dataset="alpaca")), (name, field)
    for s, cfg in zip(module.STAGE.sections, call.configs, strict=True):
        assert cfg == params_config(s.cls, s.name), (name, s.name)  # params.yaml's values, nothing else


@pytest.mark.parametrize("name", sorted(DECLARED))
def test_without_dataset_the_required_paths_are_options(name):
    with pytest.raises(SystemExit):
        _parse(DECLARED[name])


def test_the_two_finetune_arms_differ_only_in_their_paths():
    recycled = _parse(finetune, "--dataset=alpaca")
    baseline = _parse(finetune_baseline, "--dataset=alpaca")
    assert recycled.configs == baseline.configs
    assert baseline.inputs == {"rows": Path("data/alpaca/original.jsonl")}
    assert baseline.outputs == {"model_dir": Path("models/alpaca/baseline-sft"),
                                "metrics": Path("metrics/alpaca/finetune_baseline.json"),
                                "loss_plot": Path("metrics/alpaca/finetune_baseline_dvclive")}
    assert recycled.outputs["model_dir"] == Path("models/alpaca/student-sft")


def test_sidecars_go_beside_the_output_given():
    call = _parse(finetune, "--input", "rows.jsonl", "--output", "runs/sft")
    assert call.outputs == {"model_dir": Path("runs/sft"), "metrics": Path("runs/sft.metrics.json"),
                            "loss_plot": Path("runs/sft.loss_plot")}  # a DVCLive directory
    call = _parse(judge, "--input", "a.jsonl", "--output", "runs/j.jsonl")
    assert (call.outputs["metrics"], call.outputs["plot"]) == (Path("runs/j.metrics.json"), Path("runs/j.plot.csv"))
    call = _parse(generate, "--model-dir", "m", "--output", "runs/answers.jsonl")
    assert call.outputs["alpaca_eval_dir"] == Path("runs/answers.alpaca_eval")
    assert call.inputs == {"sft_model": Path("m"), "baseline_sft": None}  # optional: none without --dataset


def test_generate_declares_the_baseline_sft_and_takes_the_template_as_an_option():
    call = generate.STAGE.parse(["--params", str(PARAMS), "--dataset=alpaca", "--template", "alpaca"])
    assert call.inputs["baseline_sft"] == Path("models/alpaca/baseline-sft")
    assert call.args.train_template == "alpaca"
    call = _parse(generate, "--model-dir", "m", "--output", "a.jsonl", "--baseline-dir", "b")
    assert call.inputs["baseline_sft"] == Path("b")


def test_evaluate_reads_both_arms():
    call = _parse(evaluate, "--dataset=alpaca", "--baseline-dir", "elsewhere")
    assert call.inputs == {"model_dir": Path("models/alpaca/student-sft"), "baseline_model": Path("elsewhere")}


def test_report_page_only_with_a_dataset_or_its_options():
    call = _parse(report, "--metrics-dir", "m/x", "--output", "r.md")
    assert call.inputs["data_dir"] is None and call.outputs["html"] is None
    call = _parse(report, "--dataset=alpaca")
    assert call.inputs["data_dir"] == Path("data/alpaca") and call.outputs["html"] == Path("reports/alpaca.html")
    assert call.configs[1].method == params_config(type(call.configs[1]), "select").method


def test_tools_are_not_stages():
    assert "compress" not in STAGES and "push" not in STAGES
    assert not compress.STAGE.dataset and not compress.STAGE.paths()
    assert hub.STAGE.paths()["folder"].template == "data/{dataset}/export"


@pytest.mark.parametrize("section", sorted(SECTIONS))
def test_configs_have_no_defaults_and_params_lists_every_key(section):
    """Values live in params.yaml only: no field default, every key in the shipped file."""
    import yaml

    cls = SECTIONS[section]
    assert all(f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
               for f in dataclasses.fields(cls)), section
    written = yaml.safe_load(PARAMS.read_text())[section]
    assert set(written) == {f.name for f in dataclasses.fields(cls)}, section
    with pytest.raises(ConfigError, match="missing keys"):
        params_config(cls, "nowhere")


def test_params_win_where_the_old_defaults_disagreed():
    assert params_config(evaluate.Config, "evaluate").limit == 10
    assert params_config(finetune.Config, "finetune").warmup_ratio == 0.0
    j = params_config(EndpointConfig, "judge")  # every teacher key: structured replies, one re-ask
    assert (j.reask, j.reask_temperature, j.reask_feedback, j.mode, j.reply_format, j.price) == (
        1, 0.7, False, "online", "auto", None)


def test_a_missing_params_file_is_a_user_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        finetune.STAGE.parse(["--params", str(tmp_path / "none.yaml"), "--dataset=alpaca"])


@pytest.mark.parametrize("name", sorted(DECLARED))
def test_cli_user_error_exits_2(name, tmp_path, capsys):
    from reflection_tuning import cli

    assert cli.main([name, "--params", str(tmp_path / "none.yaml"), "--dataset=alpaca"]) == 2
    assert "Traceback" not in capsys.readouterr().err
    assert importlib.import_module(f"reflection_tuning.stages.{name}").STAGE.name == name


def test_generate_template_from_the_command_line_else_the_params_file(monkeypatch):
    seen: list[str] = []
    monkeypatch.setattr(generate, "run", lambda cfg, template, inputs, outputs, base, dataset: seen.append(template))
    assert generate.main(["--params", str(PARAMS), "--dataset=alpaca", "--train-template", "alpaca"]) == 0
    assert generate.main(["--params", str(PARAMS), "--dataset", "alpaca", "--template", "wizardlm"]) == 0  # old name
    assert generate.main(["--params", str(PARAMS), "--dataset=alpaca"]) == 0
    assert seen == ["alpaca", "wizardlm", params_config(finetune.Config, "finetune").template]
    with pytest.raises(SystemExit):
        generate.main(["--params", str(PARAMS), "--dataset=alpaca", "--train-template", "vicunna"])
