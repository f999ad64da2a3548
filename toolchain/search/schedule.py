"""The search's schedules and data order: seeds, the held-out split, batches, rates, τ.

Every random draw comes from the run's `seed` through `_seed_for(seed, purpose, ...)`.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

import numpy as np
import torch
from torch.utils.data import DistributedSampler

from hqc.data import Split
from hqc.search.distributed import _Dist


def _seed_for(seed: int, *parts: Any) -> int:
    h = hashlib.sha256(json.dumps([seed, *parts]).encode()).digest()
    return int.from_bytes(h[:8], "little") & ((1 << 63) - 1)


def holdout_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified (train indices, held-out indices) of labels y; deterministic in seed.

    Each class holds out round(fraction * n) of its n samples, at least 1 and at most
    n - 1: a class of 2 samples gives one to each side, a class of 1 stays in training.
    """
    rng = np.random.default_rng(_seed_for(seed, "holdout"))
    keep, held = [], []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        idx = idx[rng.permutation(idx.size)]
        k = min(max(1, int(round(fraction * idx.size))), idx.size - 1)
        held.append(idx[:k])
        keep.append(idx[k:])
    return np.sort(np.concatenate(keep)), np.sort(np.concatenate(held))


def _subset(split: Split, idx: np.ndarray) -> Split:
    return Split(split.x[idx], split.y[idx])


def _batches(n: int, batch: int, seed: int, epoch: int, dist: _Dist) -> list[list[int]]:
    sampler = DistributedSampler(range(n), num_replicas=dist.world, rank=dist.rank,
                                 shuffle=True, seed=seed, drop_last=False)
    sampler.set_epoch(epoch)
    idx = list(sampler)
    per_rank = max(1, -(-batch // dist.world))
    return [idx[i:i + per_rank] for i in range(0, len(idx), per_rank)]


def _lr_at(step: int, total: int, warmup: int, peak: float, floor: float) -> float:
    """Linear warm-up from peak/10 to peak over `warmup` steps, then cosine to `floor`."""
    if warmup and step < warmup:
        return peak * (0.1 + 0.9 * step / warmup)
    span = max(1, total - warmup)
    t = min(1.0, (step - warmup) / span)
    return floor + 0.5 * (peak - floor) * (1 + math.cos(math.pi * t))


def _tau_at(step: int, total: int, start: float, end: float) -> float:
    if total <= 1:
        return end
    return start * (end / start) ** (step / (total - 1))


def _tensor(split: Split, idx: list[int] | np.ndarray, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    return (torch.from_numpy(split.x[idx]).to(device), torch.from_numpy(split.y[idx]).to(device))
