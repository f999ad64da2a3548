"""Event-dataset files shared by the example generators: split, write, read.

File format (``.npz``, loadable with ``np.load(path, allow_pickle=False)``):

- ``x``, ``x_val``, ``x_test``: uint8 event counts shaped ``(N, T, 2, H, W)``; channel 0
  = ON, 1 = OFF; each value is the number of events of that polarity at that pixel in
  that time bin, saturated at 255. Feed a model ``x.astype(np.float32)``.
- ``y``, ``y_val``, ``y_test``: int64 labels shaped ``(N,)``.
- ``meta``: a 0-d unicode array holding a JSON object (dataset name, generator version,
  seed, T, resolution, class names, sensor parameters, binning/dtype description).

The writer is byte-stable: arrays go into a zip with a fixed timestamp and fixed
member order, so the same arrays always give the same file bytes.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["SPLITS", "stratified_split", "save_npz", "load_npz", "read_meta"]

SPLITS = (("x", "y"), ("x_val", "y_val"), ("x_test", "y_test"))
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def stratified_split(
    y: np.ndarray, fractions: tuple[float, float, float], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split indices into train/val/test with the class proportions of ``y`` in each part.

    Each class is shuffled with ``rng`` and cut by ``fractions`` (rounded per class);
    each part's indices come back sorted.
    """
    if abs(sum(fractions) - 1.0) > 1e-9:
        raise ValueError(f"fractions must sum to 1, got {fractions}")
    parts: list[list[np.ndarray]] = [[], [], []]
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_train = int(round(fractions[0] * len(idx)))
        n_val = int(round(fractions[1] * len(idx)))
        parts[0].append(idx[:n_train])
        parts[1].append(idx[n_train : n_train + n_val])
        parts[2].append(idx[n_train + n_val :])
    out = tuple(np.sort(np.concatenate(p)) if p else np.zeros(0, np.int64) for p in parts)
    return out  # type: ignore[return-value]


def save_npz(path: str | Path, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> None:
    """Write ``arrays`` plus ``meta`` (as JSON) to a compressed, byte-stable ``.npz``."""
    members = dict(arrays)
    members["meta"] = np.array(json.dumps(dict(meta), sort_keys=True))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, arr in members.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(name + ".npy", date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue(), compresslevel=6)
    tmp.replace(path)


def read_meta(data: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """Decode the ``meta`` record of a loaded dataset."""
    return json.loads(str(data["meta"][()]))


def load_npz(path: str | Path) -> dict[str, np.ndarray]:
    """Load every array of an event dataset (no pickles) and check the split layout."""
    with np.load(path, allow_pickle=False) as f:
        data = {k: f[k] for k in f.files}
    for xk, yk in SPLITS:
        if xk not in data or yk not in data:
            continue
        x, y = data[xk], data[yk]
        if x.ndim != 5 or y.ndim != 1 or len(x) != len(y):
            raise ValueError(f"{path}: {xk} {x.shape} / {yk} {y.shape} are not (N,T,C,H,W)/(N,)")
    return data
