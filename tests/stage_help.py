"""``reflection-tuning <stage> --help``, as the tests read it."""

from __future__ import annotations

import contextlib
import io

from reflection_tuning import cli


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

