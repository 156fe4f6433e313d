"""``reflection-tuning <command>``: the command list, dispatch, and the one-line user-error boundary."""

from __future__ import annotations

import ast
import importlib
import inspect
import logging
import re
import sys
import types

import pytest
from stage_help import help_text

from reflection_tuning import cli
from reflection_tuning.infra.command import COMMANDS, declaration
from reflection_tuning.infra.errors import SourceError


@pytest.fixture
def tool(monkeypatch):
    """A command ``probe`` whose ``main`` does what the test sets in ``tool.behaviour``."""
    module = types.ModuleType("rt_probe_command")
    module.calls = []
    module.behaviour = lambda argv: 0

    def main(argv):
        module.calls.append(argv)
        return module.behaviour(argv)

    module.main = main
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setitem(COMMANDS, "probe_cmd", module.__name__)
    return module


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_dispatches_to_its_stage_help(command):
    """``reflection-tuning <command> --help`` reaches the command's own parser: it exits 0 and
    names the command, the options every command has, one option per declared path and flag."""
    stage = declaration(command)
    out = help_text(command.replace("_", "-"))  # the dashed spelling too
    assert f"reflection-tuning {command}" in out
    flags = ["--dataset", "--log-level"] + ["--" + stage.flag(n).replace("_", "-") for n in stage.paths()]
    flags += ["--params"] if stage.sections else []  # a command that reads no section reads no params file
    flags += [name for flag in stage.flags for name in flag.names]
    assert set(flags) <= set(re.findall(r"--[a-z][a-z0-9-]*", out)), out


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_is_declared_once_and_its_main_is_one_line(command):
    """Each command's module declares it (``STAGE``, named after it) and its ``main`` is the one line
    ``return STAGE.main(argv)``: parsing, the input check and the call of ``run`` are the declaration's."""
    module = importlib.import_module(COMMANDS[command])
    assert module.STAGE.name == command and module.STAGE.invoke is not None
    (func,) = ast.parse(inspect.getsource(module.main)).body
    assert [ast.unparse(s) for s in func.body] == ["return STAGE.main(argv)"], inspect.getsource(module.main)


def test_usage_lists_the_registry_and_nothing_else(capsys):
    """One registry: the commands the usage lists are exactly ``COMMANDS``, in its order."""
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    listed = out.split("commands:\n")[1].split("\n\n")[0].split()
    assert listed == list(COMMANDS)
    assert cli.main([]) == 2  # no command: the usage, as an error


def test_unknown_command_names_the_known_ones(capsys):
    assert cli.main(["sore"]) == 2
    err = capsys.readouterr().err
    assert "unknown command 'sore'" in err and "score" in err and "estimate" in err


def test_dashes_name_the_same_command_and_argv_is_passed_on(tool):
    assert cli.main(["probe-cmd", "--dataset=alpaca", "-x"]) == 0
    assert cli.main(["probe_cmd"]) == 0
    assert tool.calls == [["--dataset=alpaca", "-x"], []]
    tool.behaviour = lambda argv: None  # a main that returns nothing succeeded
    assert cli.main(["probe-cmd"]) == 0
    tool.behaviour = lambda argv: 3
    assert cli.main(["probe-cmd"]) == 3


def test_user_error_is_one_line_and_exit_2_with_the_traceback_only_at_debug(tool, caplog):
    def fail(argv):
        raise SourceError("source data/x.json is missing: run `reflection-tuning fetch` first")

    tool.behaviour = fail
    with caplog.at_level(logging.INFO, logger="reflection_tuning"):
        assert cli.main(["probe-cmd"]) == cli.USER_ERROR == 2
    (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert record.getMessage() == "source data/x.json is missing: run `reflection-tuning fetch` first"
    assert not record.exc_info  # no traceback
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="reflection_tuning"):
        assert cli.main(["probe-cmd"]) == 2
    (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert record.exc_info and record.exc_info[0] is SourceError


def test_other_errors_are_not_swallowed(tool):
    def crash(argv):
        raise RuntimeError("a bug, with its traceback")

    tool.behaviour = crash
    with pytest.raises(RuntimeError, match="a bug"):
        cli.main(["probe-cmd"])


def test_a_real_command_reaches_its_own_parser(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["compare", "--help"])
    assert exit_.value.code == 0 and "usage:" in capsys.readouterr().out
