"""Logging set-up: the level from --log-level or LOG_LEVEL, one line per record, quiet HTTP clients."""

from __future__ import annotations

import logging

import pytest

from reflection_tuning.infra.logs import setup_logging


@pytest.fixture(autouse=True)
def _restore_logging():
    root = logging.getLogger()
    level, handlers = root.level, root.handlers[:]
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_level_from_the_option_else_the_environment(monkeypatch):
    monkeypatch.setenv("LOG_LEVEL", "warning")
    setup_logging()
    assert logging.getLogger().level == logging.WARNING
    setup_logging("debug")
    assert logging.getLogger().level == logging.DEBUG
    monkeypatch.delenv("LOG_LEVEL")
    setup_logging()
    assert logging.getLogger().level == logging.INFO


def test_one_line_per_record_and_http_clients_quiet(capsys):
    setup_logging("INFO")
    logging.getLogger("reflection_tuning.test").info("scored %d pairs", 3)
    logging.getLogger("httpx").info("HTTP Request: POST …")
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].endswith("INFO reflection_tuning.test: scored 3 pairs")
    assert logging.getLogger("httpx").level == logging.WARNING
