"""Who this process is under torchrun / accelerate launch, and a single process's collectives
(two real gloo ranks: tests/integration/score/test_shard.py)."""

from __future__ import annotations

import pytest

from reflection_tuning.score.shard import Shard, gather, shard_from_env, start, stop


def test_no_launcher_is_one_process():
    shard = shard_from_env({})
    assert shard == Shard(0, 1, 0) and not shard.distributed and shard.is_main
    assert gather({"rows": 3}, shard) == [{"rows": 3}]
    start(shard)  # nothing to join, nothing to leave
    stop(shard)


def test_launcher_variables():
    shard = shard_from_env({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"})
    assert (shard.rank, shard.world, shard.local_rank, shard.distributed, shard.is_main) == (3, 4, 1, True, False)
    assert shard_from_env({"RANK": "1", "WORLD_SIZE": "2"}).local_rank == 1  # one node: local = global


@pytest.mark.parametrize("env", [{"RANK": "2", "WORLD_SIZE": "2"}, {"RANK": "-1", "WORLD_SIZE": "2"},
                                 {"WORLD_SIZE": "0"}])
def test_inconsistent_launcher_variables_fail(env):
    with pytest.raises(ValueError, match="bad launcher environment"):
        shard_from_env(env)
