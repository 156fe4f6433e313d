"""Logging set-up, called once by each command's ``main`` (never by library code)."""

from __future__ import annotations

import logging
import os


def setup_logging(level: str | None = None) -> None:
    """Configure the root logger: one line per record, level from ``--log-level`` or ``LOG_LEVEL``."""
    logging.basicConfig(
        level=(level or os.environ.get("LOG_LEVEL", "INFO")).upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        force=True,
    )
    # httpx logs every request at INFO; one line per teacher call drowns the progress bar.
    for name in ("httpx", "httpx2"):  # openai 3.x ships httpx2
        logging.getLogger(name).setLevel(logging.WARNING)
