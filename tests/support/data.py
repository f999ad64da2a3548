"""Data of the compile and search tests: a tiny learnable spike dataset for the tiny
example Spikformer, and random events shaped like a zoo model's example input."""

from __future__ import annotations

from pathlib import Path

import numpy as np

TINY = dict(dynamo=False, depth=1, dim=32, heads=2, T=2, img=16)


def make_data(path: Path, n: int = 96, n_val: int = 32, shape=(2, 2, 16, 16), classes: int = 10,
              seed: int = 0, **overrides) -> Path:
    """A learnable random spike dataset: class c lights a block of channel c % 2."""
    rng = np.random.default_rng(seed)

    def split(m):
        y = rng.integers(0, classes, m)
        x = (rng.random((m, *shape)) < 0.1).astype(np.uint8)
        for i, c in enumerate(y):
            r = (c // 2) * 3
            x[i, :, c % 2, r:r + 3, :6] = 1
        return x, y

    x, y = split(n)
    xv, yv = split(n_val)
    arrays = {"x": x, "y": y, "x_val": xv, "y_val": yv}
    arrays.update(overrides)
    np.savez(path, **arrays)
    return path


def zoo_events(zm, n: int, seed: int) -> np.ndarray:
    """n samples (N, T, …) like the model's example input (spikes or counts)."""
    x = np.moveaxis(np.asarray(zm.example_input), zm.input_layout.index("B"), 0)[0]
    rng = np.random.default_rng(seed)
    if np.all((x == 0) | (x == 1)):
        return (rng.random((n, *x.shape)) < max(0.05, float(x.mean()))).astype(np.uint8)
    return rng.poisson(max(0.1, float(x.mean())), size=(n, *x.shape)).astype(np.uint8)


def zoo_data(zm, path: Path) -> Path:
    """A random 48 + 24 sample NPZ for a zoo model (labels 0..9): the compile tests' data."""
    rng = np.random.default_rng(1)
    np.savez(path, x=zoo_events(zm, 48, 2), y=rng.integers(0, 10, 48), x_val=zoo_events(zm, 24, 3),
             y_val=rng.integers(0, 10, 24))
    return path
