"""Event-camera data → the NPZ hqc reads (re-exported as `hqc.data.from_events`).

    events: one numpy structured array per sample, fields x, y, t, p (tonic's layout)
      --from_events(events, sensor_size=(W, H, P), n_time_bins=T, labels)-->
    x (N, T, P, H, W) uint8 event counts, y (N,) int64 --write_npz--> data.npz

Binning. A sample's events span [t_first, t_last]; they fall into T frames of equal
length: frame k = floor((t − t_first) · T / (t_last − t_first)), the last event in frame
T − 1, so every event is counted (a sample whose events share one time stamp has them
all in frame 0; a sample without events is all zeros). Each value is the number of events
of that polarity at that pixel in that frame, saturated at 255 (uint8), as in the
shipped data sets (examples/data/eventset.py): counts, not binarised.

Polarity. p is bool, 0/1 or −1/1. With P = 2, channel 0 holds ON events (p > 0) and
channel 1 OFF events, as in the shipped sets; `off_first=True` swaps them (tonic's
`ToFrame` puts p = 0 first). With P = 1 every event goes to channel 0.

Event-table file (the input of `hqc data from-events`; NPZ without object arrays, so it
loads without pickle): one row per event in the arrays `x`, `y`, `t`, `p` and `sample`
(the index 0..N−1 of the sample the event belongs to), and `label` (N,) per sample.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hqc.errors import DataError
from hqc.outdir import atomic_file

FIELDS = ("x", "y", "t", "p")
TABLE_KEYS = ("x", "y", "t", "p", "sample", "label")
MAX_COUNT = 255


def _check_sensor(sensor_size: Sequence[int], n_time_bins: int) -> tuple[int, int, int]:
    if len(sensor_size) != 3 or any(isinstance(v, bool) or int(v) != v or v < 1 for v in sensor_size):
        raise DataError(f"sensor size must be three positive integers (W, H, P), got {list(sensor_size)}")
    w, h, p = (int(v) for v in sensor_size)
    if p not in (1, 2):
        raise DataError(f"sensor size: P (polarity channels) must be 1 or 2, got {p}")
    if isinstance(n_time_bins, bool) or int(n_time_bins) != n_time_bins or n_time_bins < 1:
        raise DataError(f"time bins must be an integer >= 1, got {n_time_bins!r}")
    return w, h, p


def _frames(ev: np.ndarray, i: int, w: int, h: int, p: int, n_bins: int, off_first: bool) -> np.ndarray:
    """The (T, P, H, W) uint8 counts of sample i's events."""
    names = ev.dtype.names or ()
    missing = [f for f in FIELDS if f not in names]
    if missing:
        raise DataError(f"sample {i}: events lack the field(s) {', '.join(missing)} (need x, y, t, p)")
    out = np.zeros((n_bins, p, h, w), np.int64)
    if ev.size == 0:
        return out.astype(np.uint8)
    x, y, t, pol = (np.asarray(ev[f]).reshape(-1) for f in FIELDS)
    for name, a in (("x", x), ("y", y)):
        if a.dtype.kind not in "iub" and not (a.dtype.kind == "f" and np.all(a == np.round(a))):
            raise DataError(f"sample {i}: event field {name!r} must hold integer pixel coordinates")
    if x.min() < 0 or x.max() >= w or y.min() < 0 or y.max() >= h:
        raise DataError(f"sample {i}: an event lies outside the {w}×{h} sensor "
                        f"(x {x.min()}..{x.max()}, y {y.min()}..{y.max()})")
    if t.dtype.kind not in "iuf" or not np.all(np.isfinite(t)):
        raise DataError(f"sample {i}: event times 't' must be finite numbers")
    if pol.dtype.kind not in "biuf" or not np.all(np.isin(pol, (-1, 0, 1))):
        raise DataError(f"sample {i}: polarities 'p' must be bool, 0/1 or -1/1")
    t0, t1 = t.min(), t.max()
    if t1 == t0:
        k = np.zeros(t.size, np.int64)
    elif t.dtype.kind in "iu":
        k = ((t.astype(np.int64) - int(t0)) * n_bins) // (int(t1) - int(t0))
    else:
        k = np.floor((t.astype(np.float64) - t0) * n_bins / (t1 - t0)).astype(np.int64)
    k = np.minimum(k, n_bins - 1)
    on = pol > 0
    c = np.zeros(t.size, np.int64) if p == 1 else np.where(on != off_first, 0, 1)
    np.add.at(out, (k, c, y.astype(np.int64), x.astype(np.int64)), 1)
    return np.minimum(out, MAX_COUNT).astype(np.uint8)


def from_events(
    events: Sequence[np.ndarray],
    sensor_size: Sequence[int],
    n_time_bins: int,
    labels: Sequence[int] | np.ndarray,
    *,
    off_first: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample event arrays (tonic layout) and their labels → (x, y) for hqc.

    x is (N, T, P, H, W) uint8 event counts (saturated at 255) in T equal time frames per
    sample, y is (N,) int64; sensor_size is (W, H, P) as in tonic. Bad input: DataError.
    """
    w, h, p = _check_sensor(sensor_size, n_time_bins)
    y = np.asarray(labels)
    if y.ndim != 1 or y.shape[0] != len(events):
        raise DataError(f"{len(events)} samples of events but labels of shape {list(y.shape)}")
    if len(events) == 0:
        raise DataError("no samples of events")
    if y.dtype.kind not in "iu" or y.min() < 0:
        raise DataError("labels must be integers >= 0")
    x = np.stack([_frames(np.asarray(ev), i, w, h, p, int(n_time_bins), off_first)
                  for i, ev in enumerate(events)])
    return x, y.astype(np.int64)


def write_npz(path: str | Path, x: np.ndarray, y: np.ndarray, x_val: np.ndarray | None = None,
              y_val: np.ndarray | None = None) -> Path:
    """Write the NPZ hqc reads (x, y and optionally x_val, y_val), atomically."""
    arrays: dict[str, np.ndarray] = {"x": x, "y": y}
    if (x_val is None) != (y_val is None):
        raise DataError("x_val and y_val must come together")
    if x_val is not None and y_val is not None:
        arrays.update(x_val=x_val, y_val=y_val)
    path = Path(path)
    if path.suffix != ".npz":
        raise DataError(f"{path}: the output must be an .npz file")
    if not path.parent.is_dir():
        raise DataError(f"{path.parent}: no such folder")
    with atomic_file(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)
    return path


def read_event_table(path: str | Path) -> tuple[list[np.ndarray], np.ndarray]:
    """An event-table NPZ (module docstring) → (per-sample structured arrays, labels)."""
    from hqc.data import open_npz  # hqc.data re-exports this module: import at call time

    p = str(path)
    with open_npz(p) as npz:
        missing = [k for k in TABLE_KEYS if k not in npz.files]
        if missing:
            raise DataError(f"{p}: missing key(s) {', '.join(missing)}; an event table has "
                            "x, y, t, p, sample (one per event) and label (one per sample)")
        try:
            cols: dict[str, Any] = {k: npz[k] for k in TABLE_KEYS}
        except ValueError as exc:
            raise DataError(f"{p}: object arrays cannot be read without pickle") from exc
    n_events = cols["x"].shape
    for k in ("x", "y", "t", "p", "sample"):
        if cols[k].ndim != 1 or cols[k].shape != n_events:
            raise DataError(f"{p}: {k!r} has shape {list(cols[k].shape)}; every per-event column "
                            f"must have the shape of 'x', {list(n_events)}")
        if cols[k].dtype.kind not in "biuf":
            raise DataError(f"{p}: {k!r} has dtype {cols[k].dtype}; expected numbers")
    labels, sample = cols["label"], cols["sample"]
    if labels.ndim != 1:
        raise DataError(f"{p}: 'label' has shape {list(labels.shape)}; expected (N,)")
    n = labels.shape[0]
    if sample.dtype.kind not in "iu" or (sample.size and (sample.min() < 0 or sample.max() >= n)):
        raise DataError(f"{p}: 'sample' must hold sample indices 0..{n - 1} (one label per sample)")
    dtype = np.dtype([(k, cols[k].dtype) for k in FIELDS])
    table = np.empty(n_events, dtype)
    for k in FIELDS:
        table[k] = cols[k]
    order = np.argsort(sample, kind="stable")
    bounds = np.searchsorted(sample[order], np.arange(n + 1))
    return [table[order[bounds[i]:bounds[i + 1]]] for i in range(n)], labels


def event_table_to_npz(events: str | Path, out: str | Path, sensor_size: Sequence[int], n_time_bins: int,
                       val: str | Path | None = None, off_first: bool = False) -> dict[str, Any]:
    """`hqc data from-events`: event table(s) → the NPZ hqc reads; returns what was written."""
    x, y, n = _convert(events, sensor_size, n_time_bins, off_first)
    info: dict[str, Any] = {"out": str(out), "x": list(x.shape), "events": n, "classes": int(y.max()) + 1}
    xv = yv = None
    if val is not None:
        xv, yv, nv = _convert(val, sensor_size, n_time_bins, off_first)
        info.update(x_val=list(xv.shape), events_val=nv)
    write_npz(out, x, y, xv, yv)
    return info


def _convert(path: str | Path, sensor_size: Sequence[int], n_time_bins: int,
             off_first: bool) -> tuple[np.ndarray, np.ndarray, int]:
    events, labels = read_event_table(path)
    try:
        x, y = from_events(events, sensor_size, n_time_bins, labels, off_first=off_first)
    except DataError as exc:
        raise DataError(f"{path}: {exc}") from None
    return x, y, sum(len(ev) for ev in events)
