"""``reflection-tuning <stage> --help``: the options every stage has, and one per path it declares."""

from __future__ import annotations

import contextlib
import importlib
import io
import re

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


def check_help_lists_path_options(stage: str) -> str:
    """``--params``, ``--dataset`` and the path options: every path of the stage's ``STAGE``
    declaration, or, for a stage not declared yet, its ``--output…`` and ``--metrics``."""
    text = help_text(stage)
    options = set(re.findall(r"(--[a-z][a-z0-9-]*)", text))
    module = importlib.import_module(f"reflection_tuning.stages.{stage}")
    declaration = getattr(module, "STAGE", None)
    if declaration is not None:
        flags = ["--params"] + (["--dataset"] if declaration.dataset else [])
        flags += ["--" + declaration.flag(name).replace("_", "-") for name in declaration.paths()]
    else:  # transitional, until every stage declares a STAGE
        flags = ["--params", "--dataset", "--metrics"]
        assert any(o.startswith("--output") for o in options), f"{stage} --help has no --output option"
    missing = [f for f in flags if f not in options]
    assert not missing, f"{stage} --help lacks {missing}:\n{text}"
    return text
