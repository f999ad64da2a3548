"""Heterogeneous quantization search (the paper's differentiable search) and the QAT fine-tune.

    model.onnx + data.npz + target --run_search--> plan.yaml + model.qat.onnx (+ search.ckpt)

1. Frontend, then the `insert-quant-choices` pass attaches each layer's candidates.
2. Search (`epochs`), per batch of the weight split, as in the paper:
   step 1 — α: hard (one-hot, straight-through) Gumbel-softmax sample, loss
            CE(held-out batch) + λ · Σ_lk p_lk E_lk / E_fp32 (p = softmax α), Adam on α
            only (the weights are frozen for this step and do not change);
   step 2 — w: soft Gumbel-softmax sample, loss CE(training batch), on the weights only.
   CE has label smoothing (`label_smoothing`, 0.1) and may mix in distillation from the
   imported float model (`distill`, off: `task_loss`).
   The α data is a stratified `holdout_fraction` of the *training* split, held out for
   the whole search (the val split stays untouched for the reported accuracies; without
   a val split the held-out part is the evaluation split). τ anneals exponentially per
   step from `tau_start` to `tau_end`. Weights: AdamW, linear warm-up then cosine decay;
   α: Adam at a constant rate.
3. Plan = argmax α_l per layer (a `plan` given by the user skips 2).
4. Fine-tune (QAT) the fixed plan for `finetune_epochs` on the whole training split:
   learned per-channel scales (LSQ, `learn_scales`; initialised from the MSE-grid scales),
   loss (1 − finetune_distill) · CE + finetune_distill · KL(float model ‖ quantized model)
   on the logits (the imported float model is the teacher), AdamW with its own rate for
   the scales (`scale_lr`), linear warm-up over `finetune_warmup` of the steps, then
   cosine decay to `finetune_min_lr` (rates scaled alike for both groups).
5. Accuracies on the val split (and the test split, if any): float (the imported model)
   and fake-quant (the plan, the fine-tuned weights, the learned scales — or, without
   them, scales computed fresh from the weights: the lowering's values either way).
6. Write plan.yaml (`hqc.plan/1`), model.qat.onnx: the frontend's IR with its
   Conv/Gemm/MatMul weights and biases replaced by the fine-tuned latent float weights,
   and scales.npz: the learned scales (`hqc.quant.save_scales`), for
   `hqc lower model.qat.onnx --plan plan.yaml` with those scales.

Determinism: every random draw comes from `seed` — the held-out split (numpy Generator),
the data order (DistributedSampler(seed).set_epoch), the Gumbel noise (a torch.Generator
seeded per epoch). A checkpoint (state dicts only) is written atomically after every
epoch; a resumed run continues at the next epoch boundary and ends with the same plan
and weights as an uninterrupted run (same machine, same thread count).

Distributed (torchrun): with a process group (or torchrun's environment) every rank runs
the same loop on its shard of each split (DistributedSampler); gradients are averaged
with all-reduce; `batch_size` is the global batch; rank 0 writes the files.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from torch.utils.data import DistributedSampler

from hqc.backend import TorchModel
from hqc.choices import QuantChoice, parse_choice
from hqc.config import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_DEVICE,
    DEFAULT_EPOCHS,
    DEFAULT_FINETUNE_EPOCHS,
    DEFAULT_LAMBDA,
    DEFAULT_SEED,
    require_device,
)
from hqc.data import Dataset, Split, load_data
from hqc.errors import ConfigError, DataError
from hqc.ir import Graph
from hqc.onnx_io import KEPT_META, to_proto
from hqc.outdir import atomic_file
from hqc.passes import Context, run_passes
from hqc.passes.insert_quant_choices import SearchSpace, candidates_of
from hqc.pipeline import run_frontend
from hqc.plan import read_plan, write_plan
from hqc.quant import SCALES_FILE, LearnedScales, save_scales
from hqc.supernet import Supernet
from hqc.targets import load_target

log = logging.getLogger(__name__)

PLAN_FILE = "plan.yaml"
QAT_MODEL_FILE = "model.qat.onnx"
CHECKPOINT_FILE = "search.ckpt"
CHECKPOINT_VERSION = 1

Progress = Callable[[str, dict[str, Any]], None]


@dataclass
class SearchConfig:
    """Hyper-parameters of the search and the fine-tune (see the module docstring)."""

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
    """What `run_search` produced; `document` is plan.yaml's content."""

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
    """Raised by `run_search(stop_after_epoch=k)` after epoch k's checkpoint (tests)."""


# ---------------------------------------------------------------------------- helpers


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


@torch.no_grad()
def evaluate(net: Supernet, split: Split, batch: int, device: str = "cpu",
             dist: _Dist | None = None) -> float:
    """Top-1 accuracy of `net` in its current mode (eval semantics) on `split`."""
    dist = dist or _Dist()
    was = net.training
    net.eval()
    idx = np.arange(len(split))[dist.rank::dist.world]
    correct = 0
    for i in range(0, idx.size, batch):
        x, y = _tensor(split, idx[i:i + batch], device)
        correct += int((net(x).argmax(1) == y).sum())
    net.train(was)
    c, n = dist.sum([float(correct), float(idx.size)])
    return c / max(1.0, n)


@torch.no_grad()
def predict(net: Supernet, split: Split, batch: int, device: str = "cpu") -> np.ndarray:
    """Logits (N, classes) of `net` in its current mode (eval semantics) on all of `split`."""
    was = net.training
    net.eval()
    out = [net(_tensor(split, np.arange(i, min(i + batch, len(split))), device)[0]).float().cpu().numpy()
           for i in range(0, len(split), batch)]
    net.train(was)
    return np.concatenate(out)


def _atomic_save(obj: Any, path: Path) -> None:
    with atomic_file(path) as tmp:
        torch.save(obj, tmp)


def export_qat_model(graph: Graph, model: TorchModel, path: str | Path) -> None:
    """Write the IR with the model's current float weights/biases as ONNX (atomic).

    Keeps the exporter metadata that names torch modules, so the re-imported model has
    the same layer names as plan.yaml."""
    g = graph.copy()
    for name in model.weight_names:
        g.constants[name] = model.parameter(name).detach().cpu().numpy().astype(graph.constants[name].dtype)
    proto = to_proto(g)
    for pn in proto.graph.node:
        if pn.name in g.g:
            for k in KEPT_META:
                v = g.node(pn.name).meta.get(k)
                if v is not None:
                    entry = pn.metadata_props.add()
                    entry.key, entry.value = k, v
    with atomic_file(path) as tmp:
        onnx.save(proto, str(tmp))


def _weights_digest(model: TorchModel) -> str:
    h = hashlib.sha256()
    for name in model.weight_names:
        h.update(name.encode())
        h.update(model.parameter(name).detach().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


@torch.no_grad()
def _bn_input_stats(net: Supernet, bns: list, x: torch.Tensor, batch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per-channel (mean, variance) of each BatchNormalization node's input on x, in the
    net's current mode (eval semantics); the channel axis is 1 of the export-time shape."""
    sums: list[torch.Tensor | None] = [None] * len(bns)
    for i in range(0, len(x), batch):
        outs = net.model.forward_all(x[i:i + batch], names=[n.inputs[0] for n in bns])
        for j, o in enumerate(outs):
            o = o.double().movedim(2, 0).reshape(o.shape[2], -1)  # (C, everything else)
            part = torch.stack([o.sum(1), (o * o).sum(1), torch.full_like(o[:, 0], o.shape[1])])
            sums[j] = part if sums[j] is None else sums[j] + part
    out = []
    for t in sums:
        mean = t[0] / t[2]
        out.append((mean, (t[1] / t[2] - mean * mean).clamp(min=0.0)))
    return out


@torch.no_grad()
def correct_batchnorm(net: Supernet, split: Split, samples: int, batch: int, device: str = "cpu") -> list[str]:
    """BatchNorm under quantization: move the running statistics of every BatchNormalization
    node (constant mean/var) so that its output on the quantized model has the per-channel
    mean and variance it has on the float model, on the first `samples` samples of `split`:

        var' + ε = (var + ε) · r²,   mean' = μ_q − (μ_f − mean) · r,   r = σ_q / σ_f

    (μ, σ² of the BN input; a channel with σ²_f or σ²_q = 0 takes r = 1). The BN's
    γ, β stay; the new statistics are written into the model's buffers and the graph's
    constants (so model.qat.onnx carries them and the lowering folds them as before).
    With an all-fp32 plan it changes nothing. Returns the names of the nodes corrected."""
    tm = net.model
    bns = [n for n in tm.graph.nodes() if n.op == "BatchNormalization" and len(n.inputs) >= 5
           and all(t in tm._bufs for t in n.inputs[3:5])]  # statistics that are constants (buffers)
    if not bns or len(split) == 0:
        return []
    was_mode, was_training = net.mode, net.training
    net.eval()
    pick = np.sort(np.random.default_rng(0).permutation(len(split))[:samples])  # classes mixed
    x = torch.from_numpy(split.x[pick]).to(device)
    net.set_float()
    ref = _bn_input_stats(net, bns, x, batch)
    net.mode = was_mode
    got = _bn_input_stats(net, bns, x, batch)
    net.train(was_training)
    done = []
    for node, (mf, vf), (mq, vq) in zip(bns, ref, got, strict=True):
        eps = float(node.attrs.get("epsilon", 1e-5))
        mean_name, var_name = node.inputs[3], node.inputs[4]
        mean, var = (getattr(tm, tm._bufs[t]) for t in (mean_name, var_name))
        ok = (vf > 0) & (vq > 0)
        r = torch.where(ok, torch.sqrt(vq / torch.where(ok, vf, 1.0)), torch.ones_like(vf))
        new_mean = mq - (mf - mean.double()) * r
        new_var = (var.double() + eps) * r * r - eps
        mean.copy_(new_mean.to(mean.dtype))
        var.copy_(new_var.clamp(min=0.0).to(var.dtype))
        tm.graph.constants[mean_name] = mean.cpu().numpy().astype(tm.graph.constants[mean_name].dtype)
        tm.graph.constants[var_name] = var.cpu().numpy().astype(tm.graph.constants[var_name].dtype)
        done.append(node.name)
    return done


# ---------------------------------------------------------------------------- the steps


def task_loss(logits: torch.Tensor, y: torch.Tensor, teacher: torch.Tensor | None = None,
              distill: float = 0.0, label_smoothing: float = 0.0) -> torch.Tensor:
    """(1 − distill) · CE(logits, y) + distill · KL(softmax(teacher) ‖ softmax(logits))."""
    loss = F.cross_entropy(logits, y, label_smoothing=label_smoothing)
    if teacher is None or distill == 0:
        return loss
    kd = F.kl_div(F.log_softmax(logits, -1), F.log_softmax(teacher, -1), reduction="batchmean",
                  log_target=True)
    return (1 - distill) * loss + distill * kd


def arch_step(net: Supernet, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
              lam: float, tau: float, generator: torch.Generator | None,
              alpha_grad: str = "straight-through", dist: _Dist | None = None,
              label_smoothing: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Search step 1: one update of α on (x, y) with a hard Gumbel-softmax sample.

    loss = CE(net(x), y) + lam · hardware_loss. The weights are frozen (requires_grad off)
    for the step, so they receive no gradient and do not change. Returns (loss, hardware
    loss), detached."""
    weights = net.weight_parameters()
    for p in weights:
        p.requires_grad_(False)
    try:
        net.sample(tau, generator, hard=True, alpha_grad=alpha_grad)  # type: ignore[arg-type]
        hw = net.hardware_loss()
        loss = F.cross_entropy(net(x), y, label_smoothing=label_smoothing) + lam * hw
        opt.zero_grad(set_to_none=True)
        loss.backward()
        (dist or _Dist()).all_reduce_grads(net.arch_parameters())
        opt.step()
    finally:
        for p in weights:
            p.requires_grad_(True)
    return loss.detach(), hw.detach()


def weight_step(net: Supernet, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
                tau: float, generator: torch.Generator | None, dist: _Dist | None = None,
                label_smoothing: float = 0.0, teacher: torch.Tensor | None = None,
                distill: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Search step 2: one update of the weights on (x, y) with a soft Gumbel-softmax sample
    (gates detached: α receives no gradient); loss `task_loss`. Returns (loss, logits),
    detached."""
    net.sample(tau, generator, hard=False, grad=False)
    logits = net(x)
    loss = task_loss(logits, y, teacher, distill, label_smoothing)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    (dist or _Dist()).all_reduce_grads(net.weight_parameters())
    opt.step()
    return loss.detach(), logits.detach()


# ---------------------------------------------------------------------------- the run


class _Run:
    """State of one search run (kept out of the public API)."""

    def __init__(self, net: Supernet, train: Split, held: Split | None, evals: Split,
                 cfg: SearchConfig, dist: _Dist, progress: Progress | None) -> None:
        self.net, self.train, self.held, self.evals = net, train, held, evals
        self.teacher: np.ndarray | None = None  # float-model logits aligned with self.train
        self.cfg, self.dist, self.progress = cfg, dist, progress
        self.opt_w = torch.optim.AdamW(net.weight_parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.opt_a = torch.optim.Adam(net.arch_parameters(), lr=cfg.arch_lr, betas=(0.5, 0.999))
        self.history: list[list[list[float]]] = []  # epoch → layer → probabilities

    def emit(self, event: str, **info: Any) -> None:
        if self.progress is not None and self.dist.rank == 0:
            self.progress(event, info)

    def _teacher(self, idx: list[int]) -> torch.Tensor | None:
        if self.teacher is None:
            return None
        return torch.from_numpy(self.teacher[idx]).to(self.cfg.device)

    def _set_lr(self, opt: torch.optim.Optimizer, lr: float) -> None:
        for group in opt.param_groups:
            group["lr"] = lr

    def start_finetune(self) -> None:
        """Learned scales (if `learn_scales`) and a fresh fine-tune optimizer: AdamW, one
        group for the weights and biases, one (no weight decay) for the scales."""
        cfg, net = self.cfg, self.net
        if cfg.learn_scales:
            net.learn_scales()
        groups = [{"params": net.weight_parameters(), "lr": cfg.finetune_lr, "base_lr": cfg.finetune_lr,
                   "weight_decay": cfg.weight_decay}]
        if net.scale_parameters():
            groups.append({"params": net.scale_parameters(), "lr": cfg.scale_lr, "base_lr": cfg.scale_lr,
                           "weight_decay": 0.0})
        self.opt_w = torch.optim.AdamW(groups)

    def search_epoch(self, epoch: int) -> dict[str, float]:
        cfg, net, dist = self.cfg, self.net, self.dist
        assert self.held is not None
        batches = _batches(len(self.train), cfg.batch_size, _seed_for(cfg.seed, "search-w"), epoch, dist)
        held = _batches(len(self.held), cfg.batch_size, _seed_for(cfg.seed, "search-a"), epoch, dist)
        steps = len(batches)
        total = cfg.epochs * steps
        warmup = int(round(cfg.warmup_epochs * steps))
        gen = torch.Generator().manual_seed(_seed_for(cfg.seed, "gumbel", epoch))
        net.train()
        sums = np.zeros(4)  # loss, correct, count, hardware
        for i, idx in enumerate(batches):
            t = epoch * steps + i
            tau = _tau_at(t, total, cfg.tau_start, cfg.tau_end)
            if i % cfg.scale_refresh == 0:
                net.refresh_scales()
            xh, yh = _tensor(self.held, held[i % len(held)], cfg.device)
            _, hw = arch_step(net, self.opt_a, xh, yh, cfg.lam, tau, gen, cfg.alpha_grad, dist,
                              cfg.label_smoothing)
            x, y = _tensor(self.train, idx, cfg.device)
            self._set_lr(self.opt_w, _lr_at(t, total, warmup, cfg.lr, cfg.min_lr))
            loss_w, logits = weight_step(net, self.opt_w, x, y, tau, gen, dist, cfg.label_smoothing,
                                         self._teacher(idx), cfg.distill)
            sums += [float(loss_w.detach()) * len(idx), float((logits.argmax(1) == y).sum()), len(idx),
                     float(hw.detach())]
            self.emit("step", phase="search", epoch=epoch, step=i + 1, steps=steps,
                      loss=sums[0] / sums[2], accuracy=sums[1] / sums[2],
                      energy=float(hw.detach()), tau=tau)
        loss, correct, count, _ = dist.sum(list(sums[:3]) + [0.0])
        with torch.no_grad():
            self.history.append([[float(v) for v in p] for p in net.probabilities().values()])
        return {"loss": loss / count, "accuracy": correct / count, "energy": float(net.hardware_loss().detach()), "tau": tau}

    def finetune_epoch(self, epoch: int) -> dict[str, float]:
        cfg, net, dist = self.cfg, self.net, self.dist
        batches = _batches(len(self.train), cfg.batch_size, _seed_for(cfg.seed, "finetune"), epoch, dist)
        steps = len(batches)
        total = cfg.finetune_epochs * steps
        warmup = int(round(cfg.finetune_warmup * total))
        floor = cfg.finetune_min_lr / cfg.finetune_lr
        params = net.weight_parameters() + net.scale_parameters()
        net.train()
        sums = np.zeros(3)
        for i, idx in enumerate(batches):
            if i % cfg.scale_refresh == 0:
                net.refresh_scales()  # layers without a learned scale only
            x, y = _tensor(self.train, idx, cfg.device)
            logits = net(x)
            loss = task_loss(logits, y, self._teacher(idx), cfg.finetune_distill, cfg.label_smoothing)
            self.opt_w.zero_grad(set_to_none=True)
            loss.backward()
            dist.all_reduce_grads(params)
            factor = _lr_at(epoch * steps + i, total, warmup, 1.0, floor)
            for group in self.opt_w.param_groups:
                group["lr"] = group.get("base_lr", cfg.finetune_lr) * factor
            self.opt_w.step()
            net.clamp_scales()
            sums += [float(loss.detach()) * len(idx), float((logits.argmax(1) == y).sum()), len(idx)]
            self.emit("step", phase="finetune", epoch=epoch, step=i + 1, steps=steps,
                      loss=sums[0] / sums[2], accuracy=sums[1] / sums[2], energy=None, tau=None)
        loss, correct, count = dist.sum(list(sums))
        return {"loss": loss / count, "accuracy": correct / count}


def _plan_names(plan: Mapping[str, QuantChoice]) -> dict[str, str]:
    return {k: v.name for k, v in plan.items()}


def run_search(
    model: str | Path,
    data: str | Path,
    *,
    target: str = "cmos45",
    out_dir: str | Path | None = None,
    config: SearchConfig | None = None,
    plan: str | Path | None = None,
    search_space: str | Path | Mapping | SearchSpace | None = None,
    input_layout: str | None = None,
    resume: bool = False,
    progress: Progress | None = None,
    stop_after_epoch: int | None = None,
    frontend: Any = None,
    dataset: Dataset | None = None,
) -> SearchResult:
    """Search a quantization plan for `model` on `data` (see the module docstring).

    `plan` (a plan.yaml) skips the search: only the fine-tune runs. `out_dir` (default
    build/<model stem>) receives plan.yaml, model.qat.onnx and search.ckpt. `progress`
    is called on rank 0 with ("phase" | "step" | "epoch", info). `stop_after_epoch` (tests)
    raises SearchStopped after that many epochs (search + fine-tune) are checkpointed.
    `frontend` (a `hqc.pipeline.Frontend` of `model`) and `dataset` (`data` loaded) reuse
    what `hqc compile` already imported and loaded; the frontend's graph is not changed.
    User errors raise HqcError subclasses (ConfigError, DataError, PlanError, ...).
    """
    t_start = time.perf_counter()
    cfg = config or SearchConfig()
    cfg.validate()
    tgt = load_target(target)
    out = Path(out_dir) if out_dir is not None else Path("build") / Path(model).stem
    fe = frontend if frontend is not None else run_frontend(model, input_layout)
    graph, layers = (fe.graph.copy() if frontend is not None else fe.graph), fe.layers
    graph, _ = run_passes(graph, ["insert-quant-choices"], Context(options={"search_space": search_space}))
    candidates = candidates_of(graph, layers)
    user_plan = read_plan(plan, layers) if plan is not None else None

    tm = TorchModel(graph, input_layout)
    per_sample = list(tm.input_shape)
    per_sample.pop(tm.layout.index("B"))
    out_shape = graph.shape(graph.outputs[0]) or ()
    num_classes = int(out_shape[-1]) if out_shape and isinstance(out_shape[-1], int) else None
    ds: Dataset = dataset if dataset is not None else load_data(data, tuple(per_sample), num_classes)
    full_train = ds.train
    held: Split | None = None
    train = full_train
    keep = np.arange(len(full_train))
    if user_plan is None:
        keep, hidx = holdout_split(full_train.y, cfg.holdout_fraction, cfg.seed)
        if hidx.size == 0:
            raise DataError(f"{ds.path}: the training split has {len(full_train)} samples of "
                            f"{np.unique(full_train.y).size} classes, one per class; the search holds out "
                            "samples for its architecture step and needs at least 2 samples of a class "
                            "(2 per class to hold out one of each); give more data or --plan to skip it")
        train, held = _subset(full_train, keep), _subset(full_train, hidx)
    eval_name = "val" if "val" in ds.splits else ("holdout" if held is not None else "train")
    evals = ds.splits["val"] if "val" in ds.splits else (held if held is not None else full_train)

    dist = _init_distributed(cfg.device)
    if dist.rank == 0:
        out.mkdir(parents=True, exist_ok=True)
    dist.barrier()
    net = Supernet(tm, layers, candidates, tgt).to(cfg.device)
    run = _Run(net, train, held, evals, cfg, dist, progress)

    run_key = hashlib.sha256(json.dumps({
        "weights": _weights_digest(tm), "data": ds.fingerprint, "target": tgt.name,
        "candidates": {k: [c.name for c in v] for k, v in candidates.items()},
        "config": {k: v for k, v in asdict(cfg).items() if k != "device"},
        "plan": _plan_names(user_plan) if user_plan else None, "world": dist.world,
    }, sort_keys=True).encode()).hexdigest()[:16]
    ckpt_path = out / CHECKPOINT_FILE

    net.set_float()
    float_acc = evaluate(net, evals, cfg.eval_batch_size, cfg.device, dist)
    test = ds.splits.get("test")
    float_test = evaluate(net, test, cfg.eval_batch_size, cfg.device, dist) if test is not None else None
    log.info("float accuracy (%s split): %.4f", eval_name, float_acc)
    t_teacher = time.perf_counter()
    full_teacher = (predict(net, full_train, cfg.eval_batch_size, cfg.device)
                    if cfg.distill > 0 or cfg.finetune_distill > 0 else None)
    if full_teacher is not None:
        log.info("teacher logits of the float model: %d training samples (%.1fs)", len(full_train),
                 time.perf_counter() - t_teacher)
    if full_teacher is not None and cfg.distill > 0:
        run.teacher = full_teacher[keep] if held is not None else full_teacher

    phase, done_epochs = "search", 0
    chosen: dict[str, QuantChoice] | None = user_plan
    search_acc: float | None = None
    if resume and ckpt_path.is_file():
        try:
            ck = torch.load(ckpt_path, map_location=cfg.device, weights_only=True)
        except Exception as exc:
            raise ConfigError(f"{ckpt_path}: unreadable checkpoint ({type(exc).__name__}); "
                              "remove it or run without --resume") from None
        if not isinstance(ck, dict) or ck.get("version") != CHECKPOINT_VERSION or ck.get("run") != run_key:
            raise ConfigError(f"{ckpt_path}: checkpoint belongs to a different run (model, data, "
                              "target, options or world size differ); remove it or run without --resume")
        if ck["phase"] == "finetune" and ck.get("plan"):  # the fine-tune's scales and optimizer
            net.set_plan({k: parse_choice(v) for k, v in ck["plan"].items()})
            run.start_finetune()
        net.load_state_dict(ck["net"])
        run.opt_w.load_state_dict(ck["opt_w"])
        run.opt_a.load_state_dict(ck["opt_a"])
        run.history = ck["history"]
        phase, done_epochs = ck["phase"], int(ck["epoch"])
        if ck.get("plan"):
            chosen = {k: parse_choice(v) for k, v in ck["plan"].items()}
        search_acc = ck.get("search_accuracy")
        log.info("resumed from %s: %s epoch %d", ckpt_path, phase, done_epochs)

    def checkpoint(ph: str, epoch: int) -> None:
        if dist.rank == 0:
            _atomic_save({
                "version": CHECKPOINT_VERSION, "run": run_key, "phase": ph, "epoch": epoch,
                "net": net.state_dict(), "opt_w": run.opt_w.state_dict(),
                "opt_a": run.opt_a.state_dict(), "history": run.history,
                "plan": _plan_names(chosen) if chosen else None, "search_accuracy": search_acc,
            }, ckpt_path)
        dist.barrier()
        done = epoch + (cfg.epochs if ph == "finetune" and user_plan is None else 0)
        if stop_after_epoch is not None and done >= stop_after_epoch:
            raise SearchStopped(f"stopped after epoch {done}")

    # ---- search
    if user_plan is None and phase == "search":
        steps = len(_batches(len(train), cfg.batch_size, 0, 0, dist))
        run.emit("phase", phase="search", epochs=cfg.epochs, start=done_epochs, steps=steps)
        for epoch in range(done_epochs, cfg.epochs):
            t0 = time.perf_counter()
            m = run.search_epoch(epoch)
            log.info("search epoch %d/%d: loss %.4f acc %.4f E/E_fp32 %.4f tau %.3f (%.1fs)",
                     epoch + 1, cfg.epochs, m["loss"], m["accuracy"], m["energy"], m["tau"],
                     time.perf_counter() - t0)
            run.emit("epoch", phase="search", epoch=epoch + 1, seconds=time.perf_counter() - t0, **m)
            checkpoint("search", epoch + 1)
        chosen = net.argmax_plan()
        net.set_plan(chosen)
        net.refresh_scales()
        search_acc = evaluate(net, evals, cfg.eval_batch_size, cfg.device, dist)
        log.info("searched plan: fake-quant accuracy %.4f, energy ratio %.4f",
                 search_acc, net.plan_energy_ratio(chosen))
        phase, done_epochs = "finetune", 0
        run.start_finetune()
        if cfg.finetune_epochs == 0:
            checkpoint("finetune", 0)
    assert chosen is not None

    # ---- fine-tune (QAT) of the fixed plan, on the whole training split
    net.set_plan(chosen)
    run.train, run.teacher = full_train, full_teacher
    if phase == "search":  # a user plan: learned scales and a fresh optimizer for the fine-tune
        run.start_finetune()
    if cfg.finetune_epochs > done_epochs:
        steps = len(_batches(len(full_train), cfg.batch_size, 0, 0, dist))
        run.emit("phase", phase="finetune", epochs=cfg.finetune_epochs, start=done_epochs, steps=steps)
    for epoch in range(done_epochs, cfg.finetune_epochs):
        t0 = time.perf_counter()
        m = run.finetune_epoch(epoch)
        log.info("fine-tune epoch %d/%d: loss %.4f acc %.4f (%.1fs)", epoch + 1, cfg.finetune_epochs,
                 m["loss"], m["accuracy"], time.perf_counter() - t0)
        run.emit("epoch", phase="finetune", epoch=epoch + 1, seconds=time.perf_counter() - t0, **m)
        checkpoint("finetune", epoch + 1)

    # ---- BatchNorm statistics under the plan, final evaluation with exact scales, outputs
    net.set_plan(chosen)
    net.refresh_scales()
    corrected = (correct_batchnorm(net, full_train, cfg.bn_samples, cfg.eval_batch_size, cfg.device)
                 if cfg.bn_correct and any(c.kind != "fp32" for c in chosen.values()) else [])
    if corrected:
        log.info("BatchNorm statistics corrected under the plan: %d nodes", len(corrected))
    fq_acc = evaluate(net, evals, cfg.eval_batch_size, cfg.device, dist)
    fq_test = evaluate(net, test, cfg.eval_batch_size, cfg.device, dist) if test is not None else None
    energy_ratio = net.plan_energy_ratio(chosen)
    with torch.no_grad():
        expected = float(net.hardware_loss()) if user_plan is None else None
        probs = {n: [float(v) for v in p] for n, p in net.probabilities().items()}
    layers_doc: dict[str, Any] = {}
    for i, n in enumerate(net.names):
        entry: dict[str, Any] = {"choice": chosen[n].name}
        cands = [c.name for c in candidates[n]]
        if user_plan is None:
            entry["probability"] = round(probs[n][cands.index(chosen[n].name)], 6)
        entry["candidates"] = cands
        if user_plan is None:
            entry["history"] = [[round(v, 6) for v in row[i]] for row in run.history]
        layers_doc[n] = entry
    doc: dict[str, Any] = {
        "model": str(model),
        "target": tgt.name,
        "lambda": float(cfg.lam),
        "seed": cfg.seed,
        "epochs": cfg.epochs if user_plan is None else 0,
        "finetune_epochs": cfg.finetune_epochs,
        "data": {"path": str(data), "fingerprint": ds.fingerprint},
        "accuracy": {
            "split": eval_name,
            "float": round(float_acc, 6),
            "fake_quant": round(fq_acc, 6),
            "fake_quant_before_finetune": None if search_acc is None else round(float(search_acc), 6),
            "test": None if test is None else {"float": round(float(float_test), 6),
                                               "fake_quant": round(float(fq_test), 6)},
        },
        "energy": {
            "model": "paper",
            "fp32_pj": float(net.fp32_energy_pj),
            "plan_pj": float(energy_ratio * net.fp32_energy_pj),
            "ratio": round(float(energy_ratio), 6),
            "expected_ratio": None if expected is None else round(expected, 6),
        },
        "search": {
            "batch_size": cfg.batch_size, "world_size": dist.world,
            "holdout_fraction": cfg.holdout_fraction if user_plan is None else None,
            "tau": [cfg.tau_start, cfg.tau_end], "lr": cfg.lr, "arch_lr": cfg.arch_lr,
            "finetune_lr": cfg.finetune_lr, "scale_lr": cfg.scale_lr,
            "finetune_warmup": cfg.finetune_warmup, "finetune_distill": cfg.finetune_distill,
            "learn_scales": cfg.learn_scales, "bn_corrected": len(corrected), "alpha_grad": cfg.alpha_grad,
            "scale_refresh": cfg.scale_refresh, "seconds": round(time.perf_counter() - t_start, 1),
        },
        "qat_model": QAT_MODEL_FILE,
    }
    learned: LearnedScales = {n: (chosen[n].name, v) for n, v in net.learned_scales().items()}
    if learned:
        doc["scales"] = SCALES_FILE
    if plan is not None:
        doc["source_plan"] = str(plan)
    doc["layers"] = layers_doc
    plan_path, qat_path = out / PLAN_FILE, out / QAT_MODEL_FILE
    scales_path = out / SCALES_FILE if learned else None
    if dist.rank == 0:
        export_qat_model(graph, tm, qat_path)
        if scales_path is not None:
            save_scales(scales_path, learned)
        elif (out / SCALES_FILE).exists():
            (out / SCALES_FILE).unlink()  # a stale file of an earlier run must not be lowered
        write_plan(plan_path, doc)
    dist.barrier()
    log.info("plan: %s; fake-quant accuracy %.4f (float %.4f); energy %.2f%% of fp32",
             plan_path, fq_acc, float_acc, 100 * energy_ratio)
    weights = {name: tm.parameter(name).detach().cpu().numpy().copy() for name in tm.weight_names}
    for bn in corrected:  # the BatchNorm statistics corrected under the plan (model.qat.onnx has them too)
        for t in tm.graph.node(bn).inputs[3:5]:
            weights[t] = tm.graph.constants[t].copy()
    return SearchResult(chosen, doc, out, plan_path, qat_path, float_acc, fq_acc, energy_ratio,
                        expected, weights, learned, scales_path)

