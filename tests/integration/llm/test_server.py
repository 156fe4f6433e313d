"""A real ``transformers serve`` that dies at start-up (the happy path runs in
tests/integration/stages/test_reflect.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from reflection_tuning.llm.server import embedded_server


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
