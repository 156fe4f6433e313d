"""The user-error classes: what the CLI prints as one line (tests/unit/test_cli.py) is a ``UserError``."""

from __future__ import annotations

import pytest

from reflection_tuning.infra.errors import SourceError, UserError


def test_source_errors_are_user_errors_and_not_os_errors():
    assert issubclass(SourceError, UserError) and issubclass(UserError, Exception)
    assert not issubclass(UserError, (OSError, ValueError))  # a bug's FileNotFoundError is not a user error
    with pytest.raises(UserError, match="run `reflection-tuning fetch`"):
        raise SourceError("data/alpaca/original.jsonl is missing; run `reflection-tuning fetch`")
