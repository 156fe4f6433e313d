"""Two real ranks (spawned processes, gloo on loopback) join, gather every rank's result in rank
order, and leave (the single-process cases: tests/unit/score/test_shard.py)."""

from __future__ import annotations

import multiprocessing
import socket

from reflection_tuning.score.shard import gather, shard_from_env, start, stop


def _rank(rank: int, port: int, results) -> None:
    import os

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    shard = shard_from_env({"RANK": str(rank), "WORLD_SIZE": "2"})
    start(shard)
    got = gather({"rank": shard.rank, "losses": [0.5 * shard.rank]}, shard)
    stop(shard)
    results.put((rank, got))


def test_two_ranks_gather_every_result_in_rank_order():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    procs = [ctx.Process(target=_rank, args=(r, port, results)) for r in (1, 0)]
    for p in procs:
        p.start()
    got = dict(results.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    expected = [{"rank": 0, "losses": [0.0]}, {"rank": 1, "losses": [0.5]}]
    assert got == {0: expected, 1: expected}
