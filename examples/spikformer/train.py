"""Train the example Spikformer on an event dataset (CPU).

AdamW with a linear warm-up then cosine learning-rate schedule, cross-entropy, surrogate
gradients through the LIF neurons; random spatial shifts as augmentation. The checkpoint
with the best validation accuracy is saved as ``{"state_dict", "config", "info"}``.

    python examples/spikformer/train.py --data examples/ndigits/ndigits.npz \
        --T 4 --dim 64 --depth 2 --heads 4 --epochs 30 --out runs/ndigits.pt
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from model import Spikformer, SpikformerConfig  # noqa: E402


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch; ask torch for deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def load_split(path: str, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Load ``x{suffix}``/``y{suffix}`` of an NPZ as float32 events and int64 labels."""
    sfx = {"train": "", "val": "_val", "test": "_test"}[split]
    with np.load(path, allow_pickle=False) as f:
        x = torch.from_numpy(f["x" + sfx].astype(np.float32))
        y = torch.from_numpy(f["y" + sfx].astype(np.int64))
    return x, y


def random_shift(x: torch.Tensor, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Shift each sample ``[B, T, C, H, W]`` by up to ``max_shift`` pixels (zero fill)."""
    if max_shift <= 0:
        return x
    b, _, _, h, w = x.shape
    p = max_shift
    padded = F.pad(x, (p, p, p, p))
    off = torch.randint(0, 2 * p + 1, (b, 2), generator=gen)
    return torch.stack(
        [padded[i, :, :, oy : oy + h, ox : ox + w] for i, (oy, ox) in enumerate(off.tolist())]
    )


@torch.no_grad()
def evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int) -> float:
    """Top-1 accuracy of ``model`` (in eval mode) on ``(x, y)``."""
    model.eval()
    correct = 0
    for i in range(0, len(x), batch):
        correct += (model(x[i : i + batch]).argmax(1) == y[i : i + batch]).sum().item()
    return correct / max(1, len(x))


def main(argv: list[str] | None = None) -> None:
    """Command line entry point."""
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--data", required=True)
    p.add_argument("--T", type=int, default=4)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--depth", type=int, default=2)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--mlp-ratio", type=float, default=4.0)
    p.add_argument("--patch-size", type=int, default=4)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--weight-decay", type=float, default=0.02)
    p.add_argument("--warmup-epochs", type=float, default=1.0)
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument("--shift", type=int, default=2, help="max random shift in pixels (0 = off)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="model.pt")
    args = p.parse_args(argv)

    torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    x, y = load_split(args.data, "train")
    x_val, y_val = load_split(args.data, "val")
    with np.load(args.data, allow_pickle=False) as f:
        meta = json.loads(str(f["meta"][()])) if "meta" in f.files else {}
    if x.shape[1] != args.T:
        raise SystemExit(f"--T {args.T} but the data has T={x.shape[1]}")
    num_classes = int(meta.get("num_classes", int(y.max()) + 1))
    cfg = SpikformerConfig(
        T=args.T,
        in_channels=x.shape[2],
        img_size=x.shape[-1],
        patch_size=args.patch_size,
        dim=args.dim,
        heads=args.heads,
        depth=args.depth,
        num_classes=num_classes,
        mlp_ratio=args.mlp_ratio,
    )
    model = Spikformer(cfg)
    n_params = sum(q.numel() for q in model.parameters())
    print(
        f"data {args.data}: train {tuple(x.shape)}, val {tuple(x_val.shape)}, classes {num_classes}"
    )
    print(f"model {cfg.to_dict()}, {n_params} parameters, {args.threads} thread(s)")

    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    steps_per_epoch = math.ceil(len(x) / args.batch_size)
    total = args.epochs * steps_per_epoch
    warmup = int(args.warmup_epochs * steps_per_epoch)

    def lr_at(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    gen = torch.Generator().manual_seed(args.seed)
    best = (-1.0, None, -1)
    t_start = time.time()
    for epoch in range(args.epochs):
        model.train()
        t0 = time.time()
        perm = torch.randperm(len(x), generator=gen)
        loss_sum, correct = 0.0, 0
        for i in range(0, len(x), args.batch_size):
            idx = perm[i : i + args.batch_size]
            xb, yb = random_shift(x[idx], args.shift, gen), y[idx]
            logits = model(xb)
            loss = F.cross_entropy(logits, yb, label_smoothing=args.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.item() * len(idx)
            correct += (logits.argmax(1) == yb).sum().item()
        val_acc = evaluate(model, x_val, y_val, 128)
        dt = time.time() - t0
        if val_acc > best[0]:
            best = (val_acc, {k: v.detach().clone() for k, v in model.state_dict().items()}, epoch)
        print(
            f"epoch {epoch + 1:3d}/{args.epochs} loss {loss_sum / len(x):.4f} "
            f"train_acc {correct / len(x):.4f} val_acc {val_acc:.4f} "
            f"lr {sched.get_last_lr()[0]:.2e} time {dt:.1f}s",
            flush=True,
        )
    total_s = time.time() - t_start
    val_acc, state, best_epoch = best
    info = {
        "data": args.data,
        "dataset": meta.get("dataset"),
        "epochs": args.epochs,
        "best_epoch": best_epoch + 1,
        "val_acc": val_acc,
        "train_seconds": round(total_s, 1),
        "args": vars(args),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": state, "config": cfg.to_dict(), "info": info}, args.out)
    print(
        f"best val_acc {val_acc:.4f} at epoch {best_epoch + 1}; total {total_s:.0f}s "
        f"({total_s / args.epochs:.1f}s/epoch); saved {args.out}"
    )


if __name__ == "__main__":
    main()
