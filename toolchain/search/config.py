"""The search's configuration, its result and its file names.

`SearchConfig` holds the hyper-parameters of the search and the fine-tune (see
`hqc.search`); `SearchResult` is what `finetune_plan` / `run_search` return.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hqc.choices import QuantChoice
from hqc.config import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_DEVICE,
    DEFAULT_EPOCHS,
    DEFAULT_FINETUNE_EPOCHS,
    DEFAULT_LAMBDA,
    DEFAULT_SEED,
    require_device,
)
from hqc.errors import ConfigError
from hqc.quant import LearnedScales

PLAN_FILE = "plan.yaml"
QAT_MODEL_FILE = "model.qat.onnx"
CHECKPOINT_FILE = "search.ckpt"

Progress = Callable[[str, dict[str, Any]], None]


@dataclass
class SearchConfig:
    """Hyper-parameters of the search and the fine-tune (see `hqc.search`)."""

    lam: float = DEFAULT_LAMBDA  # the defaults: hqc.config (one set for compile and search)
    epochs: int = DEFAULT_EPOCHS
    finetune_epochs: int = DEFAULT_FINETUNE_EPOCHS
    batch_size: int = DEFAULT_BATCH_SIZE
    seed: int = DEFAULT_SEED
    device: str = DEFAULT_DEVICE
    lr: float = 3e-5
    min_lr: float = 1e-5
    warmup_epochs: float = 1.0
    weight_decay: float = 1e-4
    arch_lr: float = 0.05
    tau_start: float = 5.0
    tau_end: float = 0.5
    holdout_fraction: float = 0.2
    scale_refresh: int = 10
    alpha_grad: str = "straight-through"
    finetune_lr: float = 5e-3
    eval_batch_size: int = 64
    label_smoothing: float = 0.1
    distill: float = 0.0
    finetune_min_lr: float = 1e-5
    finetune_warmup: float = 0.1
    scale_lr: float = 1e-3
    finetune_distill: float = 0.5
    learn_scales: bool = True
    bn_correct: bool = True
    bn_samples: int = 256

    def validate(self) -> None:
        """ConfigError (one line, naming the option) for a value that cannot work."""
        def bad(name: str, what: str, value: Any) -> ConfigError:
            return ConfigError(f"{name} must be {what}, got {value!r}")

        if not math.isfinite(self.lam) or self.lam < 0:
            raise bad("lambda", ">= 0", self.lam)
        for name in ("epochs", "finetune_epochs", "seed"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise bad(name.replace("_", "-"), "an integer >= 0", v)
        for name in ("batch_size", "eval_batch_size", "scale_refresh", "bn_samples"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise bad(name.replace("_", "-"), "an integer >= 1", v)
        for name in ("lr", "min_lr", "arch_lr", "finetune_lr", "finetune_min_lr", "scale_lr", "tau_start", "tau_end"):
            v = getattr(self, name)
            if not math.isfinite(v) or v <= 0:
                raise bad(name.replace("_", "-"), "> 0", v)
        if not 0 < self.holdout_fraction < 1:
            raise bad("holdout-fraction", "in (0, 1)", self.holdout_fraction)
        if not 0 <= self.distill <= 1:
            raise bad("distill", "in [0, 1]", self.distill)
        if not 0 <= self.finetune_distill <= 1:
            raise bad("finetune-distill", "in [0, 1]", self.finetune_distill)
        if not 0 <= self.finetune_warmup < 1:
            raise bad("finetune-warmup", "in [0, 1)", self.finetune_warmup)
        if not 0 <= self.label_smoothing < 1:
            raise bad("label-smoothing", "in [0, 1)", self.label_smoothing)
        if self.weight_decay < 0 or self.warmup_epochs < 0:
            raise bad("weight-decay/warmup-epochs", ">= 0", (self.weight_decay, self.warmup_epochs))
        if self.alpha_grad not in ("straight-through", "sampled"):
            raise bad("alpha-grad", "straight-through or sampled", self.alpha_grad)
        require_device(self.device)


@dataclass
class SearchResult:
    """What `finetune_plan` (and `run_search`) produced; `document` is plan.yaml's content."""

    plan: dict[str, QuantChoice]
    document: dict[str, Any]
    out_dir: Path
    plan_path: Path
    qat_model_path: Path
    float_accuracy: float
    fake_quant_accuracy: float
    energy_ratio: float
    expected_energy_ratio: float | None
    weights: dict[str, np.ndarray] = field(repr=False, default_factory=dict)  # trained; + corrected BN statistics
    scales: LearnedScales = field(repr=False, default_factory=dict)
    scales_path: Path | None = None


class SearchStopped(Exception):
    """Raised by `search_plan` / `finetune_plan` (`stop_after_epoch=k`) after epoch k's checkpoint (tests)."""
