"""The search's checkpoint: search.ckpt, one file across the search and the fine-tune.

Written atomically (state dicts only) after every epoch of either phase; `run_key`
names the run (imported weights, data, target, candidates, options, world size), so a
resumed run refuses the checkpoint of another one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from hqc.backend import TorchModel
from hqc.choices import QuantChoice
from hqc.errors import ConfigError
from hqc.outdir import atomic_file
from hqc.search.config import SearchConfig

CHECKPOINT_VERSION = 1


def _atomic_save(obj: Any, path: Path) -> None:
    with atomic_file(path) as tmp:
        torch.save(obj, tmp)


def _weights_digest(model: TorchModel) -> str:
    h = hashlib.sha256()
    for name in model.weight_names:
        h.update(name.encode())
        h.update(model.parameter(name).detach().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def _plan_names(plan: Mapping[str, QuantChoice]) -> dict[str, str]:
    return {k: v.name for k, v in plan.items()}


def run_key(model: TorchModel, data_fingerprint: str, target: str,
            candidates: Mapping[str, tuple[QuantChoice, ...]], cfg: SearchConfig,
            user_plan: Mapping[str, QuantChoice] | None, world: int) -> str:
    """What a checkpoint must match to be resumed (the device may differ)."""
    return hashlib.sha256(json.dumps({
        "weights": _weights_digest(model), "data": data_fingerprint, "target": target,
        "candidates": {k: [c.name for c in v] for k, v in candidates.items()},
        "config": {k: v for k, v in asdict(cfg).items() if k != "device"},
        "plan": _plan_names(user_plan) if user_plan else None, "world": world,
    }, sort_keys=True).encode()).hexdigest()[:16]


def save_checkpoint(path: Path, key: str, phase: str, epoch: int, state: dict[str, Any]) -> None:
    """`state`: net, opt_w, opt_a, history, plan, search_accuracy."""
    _atomic_save({"version": CHECKPOINT_VERSION, "run": key, "phase": phase, "epoch": epoch, **state}, path)


def load_checkpoint(path: Path, key: str, device: str) -> dict[str, Any]:
    """The checkpoint at `path` of the run `key`; ConfigError (one line) otherwise."""
    try:
        ck = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:
        raise ConfigError(f"{path}: unreadable checkpoint ({type(exc).__name__}); "
                          "remove it or run without --resume") from None
    if not isinstance(ck, dict) or ck.get("version") != CHECKPOINT_VERSION or ck.get("run") != key:
        raise ConfigError(f"{path}: checkpoint belongs to a different run (model, data, "
                          "target, options or world size differ); remove it or run without --resume")
    return ck
