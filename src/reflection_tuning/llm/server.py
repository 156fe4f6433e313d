"""The embedded LLM server: llama.cpp's own C++ server, serving a GGUF file on a free loopback
port for the duration of one stage.

``base_url: embedded`` (teacher, judge, ``compress``) runs the model locally with no key and
no network. llama.cpp's server comes from the PyPI package ``xllamacpp`` (prebuilt wheels,
no compiler); it runs in a child process of its own, so a crash in it is a failed request
for the client (retried, then a ``request_error`` row), not a dead stage. It decodes
``n_parallel`` requests at once (continuous batching), honours each request's seed,
temperature and penalties, constrains replies to a JSON schema (``response_format``), and
stops generating for a stream whose client went away.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from reflection_tuning.infra.errors import UserError
from reflection_tuning.llm.cache import Messages

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
CTX_ROUND = 256  # tokens: a slot's context is rounded up to this


class ModelFileMissing(UserError, FileNotFoundError):
    """The embedded server's GGUF file does not exist."""


def free_port(host: str = HOST) -> int:
    """A TCP port that was free on ``host`` a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def cpu_cores() -> int:
    """The cores this process may run on (its affinity mask, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def decode_threads() -> int:
    """The server's decoding threads: one per core. llama.cpp's threads meet at a barrier after
    every operation, so on a machine busy with other work a thread that waits for its core
    stalls the others; there, fewer threads decode faster (benchmarks/README.md)."""
    return cpu_cores()


def slot_context(batch: Sequence[Messages], max_tokens: int, *, feedback: bool = False) -> int:
    """Context tokens one request of ``batch`` needs in a server slot: the longest one's.

    The prompt is estimated at 3 characters a token (an over-estimate for English text with
    the usual BPE vocabularies) plus 64 tokens of chat template. A re-ask with feedback also
    carries the failed reply, up to ``max_tokens`` more.

    Args:
        batch: the requests' chat messages.
        max_tokens: completion tokens allowed per reply.
        feedback: a request may be a re-ask that carries a failed reply.

    Returns:
        tokens, rounded up to a multiple of :data:`CTX_ROUND`.
    """
    prompt_chars = max((sum(len(m["content"]) for m in msgs) for msgs in batch), default=0)
    tokens = prompt_chars // 3 + 64 + max_tokens * (2 if feedback else 1)
    return -(-tokens // CTX_ROUND) * CTX_ROUND


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
    # then kills the server instead of leaving it to hold the CPU and the port.
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
        log.warning("embedded server did not stop in %.0f s; killing it", grace)
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=grace)


@dataclass(frozen=True)
class Served:
    """A running embedded server: its OpenAI base URL, process id and log file."""

    url: str
    pid: int
    log_path: Path

    @property
    def root(self) -> str:
        """The server's own root URL (``/health``, ``/slots``, ``/metrics`` live there)."""
        return self.url.removesuffix("/v1")


@contextmanager
def embedded_server(model: str | Path, **kwargs: object) -> Iterator[str]:
    """:func:`serve_embedded`, yielding only the base URL (what the stages need)."""
    with serve_embedded(model, **kwargs) as served:  # type: ignore[arg-type]
        yield served.url


@contextmanager
def serve_embedded(
    model: str | Path,
    *,
    parallel: int = 4,
    slot_ctx: int = 4096,
    threads: int | None = None,
    startup_timeout: float = 120.0,
) -> Iterator[Served]:
    """Serve the GGUF file ``model`` with llama.cpp's server for the duration of the ``with`` block.

    Args:
        model: a GGUF file (e.g. ``models/smollm2-135m-instruct.gguf``, or any GGUF a user has).
        parallel: requests decoded at once (server slots); the stages pass ``max_concurrency``.
        slot_ctx: context tokens of each slot (:func:`slot_context`); the server holds
            ``parallel × slot_ctx`` tokens of KV cache.
        threads: CPU threads for decoding (``None``: :func:`decode_threads`).
        startup_timeout: seconds to wait for ``GET /health``.

    Yields:
        a :class:`Served`: the OpenAI base URL ``http://127.0.0.1:<port>/v1``, the server's pid
        and its log file (deleted after a clean exit, kept after a failure).

    Raises:
        ModelFileMissing: ``model`` is not a file (a UserError and a FileNotFoundError).
        RuntimeError: the server exited during start-up (the message has the log tail).
        TimeoutError: no healthy answer within ``startup_timeout`` (the message has the log tail).
    """
    model = Path(model)
    if not model.is_file():
        raise ModelFileMissing(f"embedded model {str(model)!r} is not a GGUF file; run `reflection-tuning models`, "
                               "or set the model to a GGUF path")
    port = free_port()
    cmd = [sys.executable, "-m", __name__, "--model", str(model), "--port", str(port),
           "--parallel", str(parallel), "--slot-ctx", str(slot_ctx), "--threads", str(threads or decode_threads())]
    log_fd, log_name = tempfile.mkstemp(prefix="llama-server-", suffix=".log")
    log_path = Path(log_name)
    log.info("starting the embedded server: %s (log %s)", " ".join(cmd[3:]), log_path)
    with os.fdopen(log_fd, "wb") as log_file:
        proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, preexec_fn=_die_with_parent)
    clean_exit = False
    try:
        started = time.monotonic()
        health = f"http://{HOST}:{port}/health"
        while not _healthy(health):
            if proc.poll() is not None:
                raise RuntimeError(f"embedded server exited with code {proc.returncode} during start-up; "
                                   f"log {log_path}:\n{_tail(log_path)}")
            if time.monotonic() - started > startup_timeout:
                raise TimeoutError(f"embedded server not healthy at {health} after {startup_timeout:.0f} s; "
                                   f"log {log_path}:\n{_tail(log_path)}")
            time.sleep(0.2)
        log.info("embedded server ready on port %d after %.1f s (%d slots of %d tokens)", port,
                 time.monotonic() - started, parallel, slot_ctx)
        yield Served(f"http://{HOST}:{port}/v1", proc.pid, log_path)
        clean_exit = True
    finally:
        _stop(proc)
        log.debug("embedded server log tail:\n%s", _tail(log_path, 10))
        if clean_exit:  # keep the log of a failed start or run for inspection
            log_path.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:  # pragma: no cover - the child process; tested through serve_embedded
    """The child process: build llama.cpp's server from the options and serve until killed."""
    p = argparse.ArgumentParser(prog=f"python -m {__name__}", description="llama.cpp's server on loopback")
    p.add_argument("--model", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--parallel", type=int, default=4)
    p.add_argument("--slot-ctx", type=int, default=4096)
    p.add_argument("--threads", type=int, default=decode_threads())
    args = p.parse_args(argv)

    import threading

    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = args.model
    params.hostnames = [HOST]
    params.port = args.port
    params.n_parallel = args.parallel
    params.n_ctx = args.parallel * args.slot_ctx  # split evenly between the slots
    params.cpuparams.n_threads = args.threads
    params.cpuparams_batch.n_threads = args.threads
    params.endpoint_slots = True
    params.endpoint_metrics = True
    server = xllamacpp.Server(params)  # serves on its own threads from here on
    print(f"listening on {server.listening_address}", flush=True)
    threading.Event().wait()  # until SIGTERM (the default action ends the process)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
