"""Data-parallel scoring under ``torchrun`` / ``accelerate launch``: who this process is, and the collectives.

Every rank tokenizes and batches all requests the same way; :func:`batching.assign_batches`
gives each batch to one rank; ranks exchange their results with ``all_gather_object``
(gloo: results are small Python objects, so no GPU collective is needed). Rank 0 then
writes the outputs. Since whole batches move, each pair is computed exactly as one process
computes it, and the merged output is byte-identical to a single-process run.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Shard:
    """This process's place in a data-parallel job (``world == 1``: a plain single process)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def shard_from_env(env: Mapping[str, str]) -> Shard:
    """The shard from the launcher's variables (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``; set by
    ``torchrun`` and ``accelerate launch``). Absent variables mean a single process.

    Raises:
        ValueError: the variables are inconsistent (rank outside ``[0, world)``).
    """
    world = int(env.get("WORLD_SIZE", "1"))
    rank = int(env.get("RANK", "0"))
    local = int(env.get("LOCAL_RANK", str(rank)))
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"bad launcher environment: RANK={rank} WORLD_SIZE={world}")
    return Shard(rank, world, local)


def start(shard: Shard) -> None:
    """Join the process group (gloo, via the launcher's ``MASTER_ADDR``/``MASTER_PORT``) if distributed."""
    import torch.distributed as dist

    if shard.distributed and not dist.is_initialized():
        dist.init_process_group("gloo", rank=shard.rank, world_size=shard.world)
        log.info("rank %d of %d joined", shard.rank, shard.world)


def stop(shard: Shard) -> None:
    """Wait for every rank, then leave the process group."""
    import torch.distributed as dist

    if shard.distributed and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def gather(obj: Any, shard: Shard) -> list[Any]:
    """Every rank's ``obj``, in rank order (``[obj]`` in a single process)."""
    if not shard.distributed:
        return [obj]
    import torch.distributed as dist

    out: list[Any] = [None] * shard.world
    dist.all_gather_object(out, obj)
    return out
