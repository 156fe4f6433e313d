"""The embedded server's start-up errors (the happy path runs in tests/stages/test_reflect.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from reflection_tuning.llm.server import embedded_server, free_port, transformers_cli


def test_helpers():
    assert 1024 <= free_port() <= 65535
    assert Path(transformers_cli()).name == "transformers"


def test_missing_model_dir_is_a_clear_error(tmp_path):
    server = embedded_server(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="not a directory; run `reflection-tuning models`"):
        server.__enter__()


def test_server_that_dies_at_start_reports_its_log_tail(tmp_path):
    (tmp_path / "empty-model").mkdir()
    server = embedded_server(tmp_path / "empty-model", startup_timeout=120)
    with pytest.raises(RuntimeError) as err:
        server.__enter__()
    message = str(err.value)
    assert "exited with code" in message and "empty-model" in message
    log = re.search(r"log (\S+\.log):", message)
    assert log and Path(log.group(1)).exists()  # kept for inspection after a failure
    Path(log.group(1)).unlink()
