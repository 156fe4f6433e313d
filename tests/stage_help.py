"""``reflection-tuning <command> --help``, as the tests read it: the printed text, or the parser."""

from __future__ import annotations

import argparse
import contextlib
import io
from unittest import mock

from reflection_tuning import cli
from reflection_tuning.infra.command import COMMANDS, declaration

# Every command of the CLI, as the registry lists them.
ALL_COMMANDS = tuple(COMMANDS)


def help_text(stage: str) -> str:
    """The stage's ``--help`` output (argparse exits 0 after printing it)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            code = cli.main([stage, "--help"])
        except SystemExit as exit_:
            assert exit_.code == 0, f"{stage} --help exited {exit_.code}"
            return out.getvalue()
    raise AssertionError(f"{stage} --help returned {code} instead of printing the help and exiting")


class _Built(Exception):
    def __init__(self, parser: argparse.ArgumentParser):
        super().__init__(parser.prog)
        self.parser = parser


def command_parser(command: str) -> argparse.ArgumentParser:
    """The parser ``reflection-tuning <command>`` builds, with every option it adds (the command
    runs up to its ``parse_args``, which is stopped there: nothing is read or run)."""

    def stop(parser, *args, **kwargs):
        raise _Built(parser)

    with mock.patch.object(argparse.ArgumentParser, "parse_args", stop):
        try:
            cli.main([command])
        except _Built as built:
            return built.parser
    raise AssertionError(f"{command} returned without parsing its command line")


def command_stage(command: str):
    """The command's ``STAGE`` declaration (its params sections, paths and flags)."""
    return declaration(command)
