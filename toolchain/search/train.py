"""The training steps and loops of the search and the fine-tune, and evaluation.

`arch_step` / `weight_step` are the paper's two steps of one search batch; `_Run` holds
a run's optimizers and loops over the epochs of either phase.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from hqc.data import Split
from hqc.search.config import Progress, SearchConfig
from hqc.search.distributed import _Dist
from hqc.search.schedule import _batches, _lr_at, _seed_for, _tau_at, _tensor
from hqc.supernet import Supernet


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
