"""How much of a dataset's label needs time? A small CNN probe on different views.

Trains the same small (non-spiking) CNN on several views of the event tensor and
reports validation accuracy:

- ``all``: the T bins stacked as channels (order kept),
- ``sum``: the bins summed (one frame of the whole clip; order lost),
- ``0`` .. ``T-1``: a single bin.

    python examples/data/probe_time.py --data examples/motion/motion.npz --views all,sum,0,3
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def view(x: np.ndarray, name: str) -> torch.Tensor:
    """The ``name`` view of uint8 events ``(N, T, C, H, W)`` as float32 ``(N, C', H, W)``."""
    t = torch.from_numpy(x.astype(np.float32))
    if name == "all":
        return t.flatten(1, 2)
    if name == "sum":
        return t.sum(1)
    return t[:, int(name)]


def small_cnn(in_channels: int, num_classes: int) -> nn.Module:
    """Three conv-BN-ReLU stages, global average pooling, linear classifier."""

    def stage(i: int, o: int) -> list[nn.Module]:
        return [nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU()]

    return nn.Sequential(
        *stage(in_channels, 32),
        nn.MaxPool2d(2),
        *stage(32, 64),
        nn.MaxPool2d(2),
        *stage(64, 64),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(64, num_classes),
    )


def probe(data: dict[str, np.ndarray], name: str, epochs: int, seed: int) -> float:
    """Validation accuracy of :func:`small_cnn` trained on the ``name`` view."""
    torch.manual_seed(seed)
    x, y = view(data["x"], name), torch.from_numpy(data["y"])
    xv, yv = view(data["x_val"], name), torch.from_numpy(data["y_val"])
    net = small_cnn(x.shape[1], int(y.max()) + 1)
    opt = torch.optim.AdamW(net.parameters(), 2e-3)
    for _ in range(epochs):
        net.train()
        for idx in torch.randperm(len(x)).split(64):
            loss = F.cross_entropy(net(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        return float((net(xv).argmax(1) == yv).float().mean())


def main(argv: list[str] | None = None) -> None:
    """Command line entry point."""
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--data", required=True)
    p.add_argument("--views", default="all,sum,0,1,2,3")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    with np.load(args.data, allow_pickle=False) as f:
        data = {k: f[k] for k in ("x", "y", "x_val", "y_val")}
    for name in args.views.split(","):
        t0 = time.time()
        acc = probe(data, name, args.epochs, args.seed)
        print(f"view {name:>4}: val accuracy {acc:.3f} ({time.time() - t0:.0f}s)", flush=True)


if __name__ == "__main__":
    main()
