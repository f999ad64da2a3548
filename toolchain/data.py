"""Data files: NPZ with `x` (N, T, C, H, W) and `y` (N,) integer labels; optional
`x_val`/`y_val` and `x_test`/`y_test`; an optional `meta` JSON string.

Loading never unpickles (`allow_pickle=False`); every problem is a `DataError` naming the
file and the key. Event-camera data (tonic's x, y, t, p events) becomes such a file with
`from_events` and `write_npz` (hqc.events; `hqc data from-events` on the command line).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hqc.errors import DataError
from hqc.events import event_table_to_npz, from_events, read_event_table, write_npz

__all__ = ["SPLITS", "Dataset", "Split", "event_table_to_npz", "fingerprint", "from_events", "load_data",
           "open_npz", "read_event_table", "write_npz"]

SPLITS = (("x", "y"), ("x_val", "y_val"), ("x_test", "y_test"))
MAX_BYTES = 8 << 30


@dataclass
class Split:
    x: np.ndarray  # float32 (N, T, ...)
    y: np.ndarray  # int64 (N,)

    def __len__(self) -> int:
        return int(self.y.shape[0])


@dataclass
class Dataset:
    path: str
    splits: dict[str, Split]
    meta: dict[str, Any] = field(default_factory=dict)
    fingerprint: str = ""

    @property
    def train(self) -> Split:
        return self.splits["train"]

    def split(self, name: str) -> Split:
        if name not in self.splits:
            raise DataError(f"{self.path}: no {name!r} split (has: {', '.join(self.splits)})")
        return self.splits[name]

    @property
    def num_classes(self) -> int:
        return int(max(int(s.y.max()) for s in self.splits.values()) + 1)


def fingerprint(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def _check_array(path: str, key: str, a: np.ndarray) -> None:
    if a.dtype == object or a.dtype.kind not in "biuf":
        raise DataError(f"{path}: {key!r} has dtype {a.dtype}; expected a numeric array")


def open_npz(path: str | Path) -> np.lib.npyio.NpzFile:
    """np.load without pickle; DataError for a missing, unreadable or non-NPZ file."""
    p = str(path)
    if not Path(p).is_file():
        raise DataError(f"{p}: no such file")
    try:
        npz = np.load(p, allow_pickle=False)
    except Exception as exc:  # zipfile/numpy raise many types on corrupt archives
        raise DataError(f"{p}: not a readable NPZ file ({type(exc).__name__})") from exc
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise DataError(f"{p}: not an NPZ archive (a single .npy array)")
    return npz


def load_data(
    path: str | Path,
    sample_shape: tuple[int, ...] | None = None,
    num_classes: int | None = None,
) -> Dataset:
    """Load and validate an NPZ; `sample_shape` is the model's per-sample (T, C, H, W)."""
    p = str(path)
    npz = open_npz(p)
    splits: dict[str, Split] = {}
    meta: dict[str, Any] = {}
    with npz:
        keys = set(npz.files)
        if "x" not in keys or "y" not in keys:
            raise DataError(f"{p}: missing key {'x' if 'x' not in keys else 'y'!r}; expected x (N, T, C, H, W) and y (N,)")
        for (kx, ky), name in zip(SPLITS, ("train", "val", "test"), strict=True):
            if kx not in keys and ky not in keys:
                continue
            if (kx in keys) != (ky in keys):
                raise DataError(f"{p}: {kx!r} and {ky!r} must come together")
            try:
                x, y = npz[kx], npz[ky]
            except ValueError as exc:
                raise DataError(f"{p}: {kx!r}/{ky!r} cannot be read without pickle (object arrays are refused)") from exc
            except Exception as exc:
                raise DataError(f"{p}: {kx!r}/{ky!r} cannot be read ({type(exc).__name__})") from exc
            _check_array(p, kx, x)
            _check_array(p, ky, y)
            if x.nbytes > MAX_BYTES:
                raise DataError(f"{p}: {kx!r} is {x.nbytes} bytes, over the limit")
            if y.ndim != 1:
                raise DataError(f"{p}: {ky!r} has shape {list(y.shape)}; expected (N,)")
            if x.ndim < 2 or x.shape[0] != y.shape[0]:
                raise DataError(f"{p}: {kx!r} has {x.shape[0] if x.ndim else 0} samples but {ky!r} has {y.shape[0]}")
            if y.shape[0] == 0:
                raise DataError(f"{p}: split {name!r} ({kx!r}) is empty")
            if sample_shape is not None and tuple(x.shape[1:]) != tuple(sample_shape):
                raise DataError(
                    f"{p}: {kx!r} samples have shape {list(x.shape[1:])}; the model expects {list(sample_shape)}"
                )
            xf = x.astype(np.float32, copy=False)
            if not np.isfinite(xf).all():
                raise DataError(f"{p}: {kx!r} contains NaN or Inf")
            if y.dtype.kind == "f":
                if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
                    raise DataError(f"{p}: {ky!r} must hold integer class labels")
            yi = y.astype(np.int64)
            if yi.min() < 0 or (num_classes is not None and yi.max() >= num_classes):
                bad = int(yi.min()) if yi.min() < 0 else int(yi.max())
                lim = f"0..{num_classes - 1}" if num_classes is not None else "≥ 0"
                raise DataError(f"{p}: {ky!r} has label {bad}, outside {lim}")
            splits[name] = Split(xf, yi)
        if "meta" in keys:
            try:
                meta = json.loads(str(npz["meta"]))
            except Exception:
                meta = {}
    shapes = {tuple(s.x.shape[1:]) for s in splits.values()}
    if len(shapes) != 1:
        raise DataError(f"{p}: splits differ in sample shape: {sorted(shapes)}")
    return Dataset(p, splits, meta if isinstance(meta, dict) else {}, fingerprint(p))
