"""Distributed runs (torchrun): the process group, gradient all-reduce, sums over ranks.

Every rank runs the same loop on its shard of each split; gradients are averaged with
all-reduce; `batch_size` is the global batch; rank 0 writes the files. One process
(`_Dist()`, world 1) makes every operation a no-op.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch


@dataclass
class _Dist:
    rank: int = 0
    world: int = 1

    @property
    def active(self) -> bool:
        return self.world > 1

    def all_reduce_grads(self, params: list[torch.nn.Parameter]) -> None:
        if not self.active:
            return
        grads = [p.grad for p in params if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        torch.distributed.all_reduce(flat)
        flat /= self.world
        i = 0
        for g in grads:
            g.copy_(flat[i:i + g.numel()].view_as(g))
            i += g.numel()

    def sum(self, values: list[float]) -> list[float]:
        if not self.active:
            return values
        t = torch.tensor(values, dtype=torch.float64)
        torch.distributed.all_reduce(t)
        return t.tolist()

    def barrier(self) -> None:
        if self.active:
            torch.distributed.barrier()


def _init_distributed(device: str) -> _Dist:
    """Use the process group if one exists, else create one when torchrun launched us."""
    dist = torch.distributed
    if not dist.is_available():
        return _Dist()
    if not dist.is_initialized():
        if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
            return _Dist()
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
    return _Dist(dist.get_rank(), dist.get_world_size())
