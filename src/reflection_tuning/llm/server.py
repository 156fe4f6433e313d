"""The embedded teacher: ``transformers serve`` on a free loopback port, for one stage.

``teacher.base_url: embedded`` runs the teacher locally with no key and no network: the
``transformers`` console script next to ``sys.executable`` serves ``teacher.model`` (a
transformers directory) with continuous batching, and is stopped when the stage ends.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from reflection_tuning.errors import UserError

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
# Continuous batching sizes its paged KV cache from free memory; on CPU that is host RAM,
# which gives a cache of many GB whose attention masks make every step ~10x slower. On CPU
# the cache is therefore sized from the work instead (``kv_cache_tokens``).
CB_PAGE_TOKENS = 256  # transformers' default page size
CB_MAX_BATCH_TOKENS = 1024


class ModelDirMissing(UserError, FileNotFoundError):
    """The embedded teacher's model directory does not exist."""


def free_port(host: str = HOST) -> int:
    """A TCP port that was free on ``host`` a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def transformers_cli() -> str:
    """The ``transformers`` console script of this interpreter's environment.

    Raises:
        FileNotFoundError: it is neither next to ``sys.executable`` nor on ``PATH``.
    """
    local = Path(sys.executable).parent / "transformers"
    if local.exists():
        return str(local)
    found = shutil.which("transformers")
    if found:
        return found
    raise FileNotFoundError("the `transformers` command was not found; install transformers[serving]")


def _default_device() -> str | None:
    try:
        import torch

        return None if torch.cuda.is_available() else "cpu"
    except ImportError:  # pragma: no cover - torch is a dependency
        return "cpu"


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no server log)"
    return "\n".join(text.splitlines()[-lines:])


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:  # loopback only
            return r.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _die_with_parent() -> None:  # pragma: no cover - runs in the child, between fork and exec
    # A stage killed with SIGKILL cannot stop its server in `finally`; on Linux the kernel
    # then kills the server (a graceful stop would wait for the dead client's requests)
    # instead of leaving it to hold the CPU and the port.
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _stop(proc: subprocess.Popen, grace: float = 10.0) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        log.warning("embedded teacher did not stop in %.0f s; killing it", grace)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=grace)


@dataclass(frozen=True)
class Served:
    """A running embedded server: its OpenAI base URL, process id and log file."""

    url: str
    pid: int
    log_path: Path


@contextmanager
def embedded_server(model_dir: str | Path, **kwargs: object) -> Iterator[str]:
    """:func:`serve_embedded`, yielding only the base URL (what the stages need)."""
    with serve_embedded(model_dir, **kwargs) as served:  # type: ignore[arg-type]
        yield served.url


@contextmanager
def serve_embedded(
    model_dir: str | Path,
    *,
    seed: int | None = 0,
    device: str | None = "auto",
    startup_timeout: float = 300.0,
    kv_cache_tokens: int | None = None,
    extra_args: tuple[str, ...] = (),
) -> Iterator[Served]:
    """Serve ``model_dir`` with ``transformers serve`` for the duration of the ``with`` block.

    Args:
        model_dir: a transformers model directory; requests must name it as given here.
        seed: the server's ``--default-seed`` (``None``: not passed).
        device: ``auto`` (``cpu`` unless CUDA is available), a device string, or ``None``
            (let the server choose).
        startup_timeout: seconds to wait for ``GET /health``.
        kv_cache_tokens: on CPU, the KV cache capacity in tokens (about ``2 × concurrency ×
            (prompt + completion tokens)``); ``None`` keeps the server's own sizing.
        extra_args: more ``transformers serve`` options (e.g. ``("--cb-num-blocks", "64")``).

    Yields:
        a :class:`Served`: the OpenAI base URL ``http://127.0.0.1:<port>/v1``, the server's
        pid (e.g. to read its CPU time) and its log file (deleted after a clean exit).

    Raises:
        ModelDirMissing: ``model_dir`` is not a directory (a UserError and a FileNotFoundError).
        FileNotFoundError: the ``transformers`` CLI is missing.
        RuntimeError: the server exited during start-up (the message has the log tail).
        TimeoutError: no healthy answer within ``startup_timeout`` (the message has the log tail).
    """
    model_dir = str(model_dir)
    if not Path(model_dir).is_dir():
        raise ModelDirMissing(f"embedded teacher model {model_dir!r} is not a directory; run `reflection-tuning models`")
    port = free_port()
    cmd = [transformers_cli(), "serve", model_dir, "--continuous-batching", "--host", HOST, "--port", str(port)]
    if device == "auto":
        device = _default_device()
    if device:
        cmd += ["--device", device]
    if seed is not None:
        cmd += ["--default-seed", str(seed)]
    if device == "cpu" and kv_cache_tokens:
        pages = -(-int(kv_cache_tokens) // CB_PAGE_TOKENS)
        cmd += ["--cb-num-blocks", str(pages), "--cb-max-batch-tokens", str(CB_MAX_BATCH_TOKENS)]
    cmd += list(extra_args)
    log_fd, log_name = tempfile.mkstemp(prefix="transformers-serve-", suffix=".log")
    log_path = Path(log_name)
    env = dict(os.environ)
    env.setdefault("HF_HUB_OFFLINE", "1")  # a local directory needs no hub
    log.info("starting embedded teacher: %s (log %s)", " ".join(cmd), log_path)
    with os.fdopen(log_fd, "wb") as log_file:
        proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, start_new_session=True, preexec_fn=_die_with_parent)
    clean_exit = False
    try:
        started = time.monotonic()
        health = f"http://{HOST}:{port}/health"
        while not _healthy(health):
            if proc.poll() is not None:
                raise RuntimeError(
                    f"embedded teacher exited with code {proc.returncode} during start-up; "
                    f"log {log_path}:\n{_tail(log_path)}"
                )
            if time.monotonic() - started > startup_timeout:
                raise TimeoutError(
                    f"embedded teacher not healthy at {health} after {startup_timeout:.0f} s; "
                    f"log {log_path}:\n{_tail(log_path)}"
                )
            time.sleep(0.5)
        log.info("embedded teacher ready on port %d after %.1f s", port, time.monotonic() - started)
        yield Served(f"http://{HOST}:{port}/v1", proc.pid, log_path)
        clean_exit = True
    finally:
        _stop(proc)
        log.debug("embedded teacher log tail:\n%s", _tail(log_path, 10))
        if clean_exit:  # keep the log of a failed start or run for inspection
            log_path.unlink(missing_ok=True)
