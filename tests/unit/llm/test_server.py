"""The embedded server's helpers and its errors before a process starts (a real start: tests/integration/llm/test_server.py)."""

from __future__ import annotations

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
