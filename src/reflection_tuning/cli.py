"""``reflection-tuning <command> …``: one subcommand per command of
:data:`reflection_tuning.infra.command.COMMANDS`.

Each subcommand is the ``main`` of its module, so the stage ``score`` in ``dvc.yaml`` is
``reflection-tuning score`` and ``stages/score.py``.
"""

from __future__ import annotations

import importlib
import logging
import sys

from reflection_tuning.infra.command import COMMANDS
from reflection_tuning.infra.errors import UserError


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: reflection-tuning <command> [options]\n\ncommands:\n  " + "\n  ".join(COMMANDS))
        print("\nRun 'reflection-tuning <command> --help' for a command's options.")
        return 0 if argv else 2
    command = argv[0].replace("-", "_")
    if command not in COMMANDS:
        print(f"reflection-tuning: unknown command {argv[0]!r}; expected one of {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    try:
        return int(importlib.import_module(COMMANDS[command]).main(argv[1:]) or 0)
    except UserError as e:
        # One line the user can act on; the traceback only at DEBUG (--log-level DEBUG).
        log = logging.getLogger("reflection_tuning")
        log.error("%s", e, exc_info=log.isEnabledFor(logging.DEBUG))
        return USER_ERROR


# The exit status of a user error (as argparse's for a bad option): the message says what to do.
USER_ERROR = 2


if __name__ == "__main__":
    sys.exit(main())
