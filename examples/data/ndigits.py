"""N-Digits: scikit-learn's 8x8 digits seen by an emulated event camera, as N-MNIST.

Each of the 1,797 real digits of ``sklearn.datasets.load_digits`` (no download) is
upsampled (cubic spline) so that it spans 3/4 of a ``size x size`` frame, shown as a
bright digit on a dark screen, and moved along three straight saccades that trace a
triangle (as the sensor moves in N-MNIST; amplitude about 10% of the frame, jittered
per sample, with a random sub-pixel start offset). The video goes through the DVS
emulator of ``dvs.py`` (per-pixel threshold mismatch fixed by the seed) and is binned
into ``T`` frames of ON/OFF event counts. A stratified 60/20/20 split is fixed by the
seed. Same arguments -> byte-identical file.

    python examples/data/ndigits.py --out examples/data/ndigits.npz --T 4 --size 32 --seed 0
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

import numpy as np

try:
    from . import dvs, eventset
except ImportError:  # run as a script: the folder itself is on sys.path
    import dvs  # type: ignore[no-redef]
    import eventset  # type: ignore[no-redef]

__all__ = ["GENERATOR_VERSION", "CLASS_NAMES", "generate", "main"]

log = logging.getLogger(__name__)

GENERATOR_VERSION = "1"
CLASS_NAMES = [str(d) for d in range(10)]
STEPS_PER_SACCADE = 8
SPLIT_FRACTIONS = (0.6, 0.2, 0.2)
CHUNK = 256  # samples rendered at once (bounds memory; fixed, so output is stable)
DVS_CONFIG = dvs.DVSConfig(contrast_on=0.2, contrast_off=0.2, threshold_sigma=0.03, noise_rate=1e-4)
# Triangle of the three saccades, in units of the amplitude: (row, col) vertices.
SACCADE_VERTICES = np.array([[0.0, 0.0], [1.0, 0.5], [0.0, 1.0], [0.0, 0.0]])


def _load_digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits  # only needed to regenerate the data

    bunch = load_digits()
    return bunch.images.astype(np.float64) / 16.0, bunch.target.astype(np.int64)


def _upsample(images: np.ndarray, factor: int) -> np.ndarray:
    from scipy.ndimage import zoom

    up = np.stack(
        [zoom(im, factor, order=3, mode="grid-constant", grid_mode=True) for im in images]
    )
    return np.clip(up, 0.0, 1.0)


def render_videos(
    up: np.ndarray, size: int, n_steps: int, amplitude: np.ndarray, start: np.ndarray
) -> np.ndarray:
    """Render upsampled digits ``(N, h, h)`` as saccading videos ``(N, n_steps + 1, size, size)``.

    ``amplitude`` ``(N,)`` scales the saccade triangle (pixels); ``start`` ``(N, 2)`` is
    the (row, col) offset of the path centre from the frame centre.
    """
    n, hs = len(up), up.shape[-1]
    # Path position at each step: piecewise-linear over the triangle, centred on the frame.
    t = np.linspace(0.0, len(SACCADE_VERTICES) - 1, n_steps + 1)
    knots = np.arange(len(SACCADE_VERTICES))
    path = np.stack([np.interp(t, knots, SACCADE_VERTICES[:, i]) for i in range(2)], -1)
    path = path - SACCADE_VERTICES[:-1].mean(0)
    grid = np.arange(size) + 0.5 - size / 2.0
    frames = np.empty((n, n_steps + 1, size, size))
    for k in range(n_steps + 1):
        off = start + amplitude[:, None] * path[k]  # (N, 2) in frame pixels
        rows = (grid[None, :, None] - off[:, 0, None, None]) + hs / 2.0 - 0.5
        cols = (grid[None, None, :] - off[:, 1, None, None]) + hs / 2.0 - 0.5
        rows = np.broadcast_to(rows, (n, size, size))
        cols = np.broadcast_to(cols, (n, size, size))
        frames[:, k] = dvs.sample_bilinear(up, rows, cols, mode="constant", fill=0.0)
    # Bright digit on a dark (not black) screen.
    return 0.1 + 0.9 * frames


def generate(
    T: int = 4, size: int = 32, seed: int = 0, limit: int | None = None
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Build the N-Digits arrays and metadata.

    Args:
        T: time bins per sample.
        size: frame height and width in pixels.
        seed: fixes sensor mismatch, motion jitter, noise and the split.
        limit: use only the first ``limit`` digits (for quick tests).

    Returns:
        ``(arrays, meta)`` as written by :func:`eventset.save_npz`.
    """
    images, labels = _load_digits()
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    # Independent streams, so that e.g. the split does not depend on how much noise was drawn.
    sensor_rng, motion_rng, noise_rng, split_rng = (
        np.random.default_rng([seed, k]) for k in range(4)
    )
    sensor = dvs.make_sensor(DVS_CONFIG, size, size, sensor_rng)
    n_steps = T * -(-3 * STEPS_PER_SACCADE // T)  # >= 8 steps per saccade, whole steps per bin
    n = len(images)
    up = _upsample(images, max(1, int(round(0.75 * size / images.shape[-1]))))
    amplitude = 0.1 * size * motion_rng.uniform(0.8, 1.2, size=n)
    start = motion_rng.uniform(-0.5, 0.5, size=(n, 2))
    x = np.empty((n, T, 2, size, size), dtype=np.uint8)
    for i in range(0, n, CHUNK):
        sl = slice(i, i + CHUNK)
        video = render_videos(up[sl], size, n_steps, amplitude[sl], start[sl])
        x[sl] = dvs.emulate(video, sensor, T, noise_rng)
    train, val, test = eventset.stratified_split(labels, SPLIT_FRACTIONS, split_rng)
    arrays = {
        "x": x[train],
        "y": labels[train],
        "x_val": x[val],
        "y_val": labels[val],
        "x_test": x[test],
        "y_test": labels[test],
    }
    meta = {
        "dataset": "ndigits",
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "T": T,
        "resolution": [size, size],
        "layout": "N,T,C,H,W",
        "channels": ["on", "off"],
        "class_names": CLASS_NAMES,
        "num_classes": len(CLASS_NAMES),
        "dtype": "uint8",
        "binning": f"event counts per pixel, polarity and time bin; {n_steps} emulator "
        f"steps split into {T} equal bins; saturated at 255; use x.astype(float32)",
        "source": "sklearn.datasets.load_digits (1,797 8x8 images)",
        "motion": "3 saccades tracing a triangle, amplitude 0.1*size (+-20%), sub-pixel start jitter",
        "split": {
            "fractions": list(SPLIT_FRACTIONS),
            "stratified": True,
            "sizes": [len(train), len(val), len(test)],
        },
        "dvs": DVS_CONFIG.to_dict(),
    }
    return arrays, meta


def main(argv: list[str] | None = None) -> None:
    """Command line: generate and write the N-Digits NPZ."""
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--out", default="examples/data/ndigits.npz")
    p.add_argument("--T", type=int, default=4)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=None, help="use only the first N digits")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    arrays, meta = generate(T=args.T, size=args.size, seed=args.seed, limit=args.limit)
    eventset.save_npz(args.out, arrays, meta)
    x = arrays["x"]
    print(
        f"wrote {args.out}: train {x.shape}, val {arrays['x_val'].shape}, test "
        f"{arrays['x_test'].shape}, {x.dtype}, mean events/pixel/bin {x.mean():.3f}"
    )


if __name__ == "__main__":
    main()
