"""Motion: a DVS-gesture-like synthetic event dataset whose classes need time to tell apart.

Each sample is a random full-field texture that moves in one of 8 directions (0, 45,
..., 315 degrees; counter-clockwise from "right", image rows pointing down) or rotates
clockwise or counter-clockwise about a point near the frame centre: 10 classes. The
video goes through the DVS emulator of ``dvs.py`` and is binned into ``T`` frames of
ON/OFF event counts; same NPZ format as N-Digits.

Why one frame is not enough: the texture's log intensity is ``log(b) + c * g`` with
``g`` a smooth zero-mean Gaussian field, so ``g`` and ``-g`` are equally likely. A
pattern ``g`` moving with velocity ``v`` produces, within one bin, the same events as
``-g`` moving with ``-v`` (up to a shift of the whole map; the field has no position
cue): one frame shows the axis of motion (or "rotation") but not its sign. The sign is
in how the event pattern moves from one bin to the next. A classifier that sees a single
bin is therefore held to about half of the classes' information (about 50%).

    python examples/data/motion.py --out examples/motion/motion.npz --T 4 --size 32 --seed 0
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
DIRECTIONS = ["right", "up_right", "up", "up_left", "left", "down_left", "down", "down_right"]
CLASS_NAMES = [f"move_{d}" for d in DIRECTIONS] + ["rotate_cw", "rotate_ccw"]
SAMPLES_PER_CLASS = 250
STEPS = 24  # emulator steps per sample (at least; rounded up to a multiple of T)
SPLIT_FRACTIONS = (0.6, 0.2, 0.2)
CHUNK = 256
BASE_INTENSITY = 0.05
G_MAX = 4.0  # |g| is soft-clipped here, so intensity stays in (0, 1) and symmetric in log
DVS_CONFIG = dvs.DVSConfig(
    contrast_on=0.2, contrast_off=0.2, threshold_sigma=0.03, noise_rate=1e-4, log_eps=1e-5
)


def make_textures(n: int, period: int, rng: np.random.Generator) -> np.ndarray:
    """Periodic, zero-mean, unit-variance smooth Gaussian fields ``(n, period, period)``.

    White noise low-pass filtered in the Fourier domain by a Gaussian whose width (the
    texture's grain, 1 to 2.5 pixels) is drawn per sample.
    """
    noise = rng.standard_normal((n, period, period))
    sigma = rng.uniform(1.0, 2.5, size=n)
    f = np.fft.fftfreq(period)
    f2 = f[:, None] ** 2 + f[None, :] ** 2
    gain = np.exp(-2.0 * (np.pi**2) * sigma[:, None, None] ** 2 * f2[None])
    g = np.real(np.fft.ifft2(np.fft.fft2(noise) * gain))
    g -= g.mean(axis=(1, 2), keepdims=True)
    g /= g.std(axis=(1, 2), keepdims=True) + 1e-12
    return G_MAX * np.tanh(g / G_MAX)


def render_videos(
    textures: np.ndarray,
    labels: np.ndarray,
    size: int,
    n_steps: int,
    speed: np.ndarray,
    contrast: np.ndarray,
    jitter: np.ndarray,
    centre: np.ndarray,
) -> np.ndarray:
    """Render moving textures as intensity videos ``(N, n_steps + 1, size, size)``.

    ``speed`` is the total displacement in pixels (translation) or the total angle in
    radians (rotation) over the clip; ``jitter`` perturbs the direction angle (radians);
    ``centre`` ``(N, 2)`` is the rotation centre's (row, col) offset from the frame centre.
    """
    n, period = len(textures), textures.shape[-1]
    grid = np.arange(size) - (size - 1) / 2.0
    rr, cc = np.meshgrid(grid, grid, indexing="ij")
    rotating = labels >= len(DIRECTIONS)
    angle = np.where(rotating, 0.0, labels * (np.pi / 4) + jitter)
    # Image rows point down, so "up" is -row.
    v_row, v_col = -np.sin(angle) * speed, np.cos(angle) * speed
    # Counter-clockwise on screen is a positive angle with rows pointing up.
    spin = np.where(labels == len(DIRECTIONS), -1.0, 1.0) * speed
    frames = np.empty((n, n_steps + 1, size, size))
    for k in range(n_steps + 1):
        t = k / n_steps
        # Translation: sample the texture at p - v t.
        rows_t = rr[None] - v_row[:, None, None] * t
        cols_t = cc[None] - v_col[:, None, None] * t
        # Content rotated by phi (screen-CCW positive) about c: sample at R(-phi) (p - c) + c,
        # written in (row, col) with rows pointing down.
        phi = spin[:, None, None] * t
        dr = rr[None] - centre[:, 0, None, None]
        dc = cc[None] - centre[:, 1, None, None]
        rows_r = centre[:, 0, None, None] + dr * np.cos(phi) + dc * np.sin(phi)
        cols_r = centre[:, 1, None, None] - dr * np.sin(phi) + dc * np.cos(phi)
        rows = np.where(rotating[:, None, None], rows_r, rows_t) + period / 2.0
        cols = np.where(rotating[:, None, None], cols_r, cols_t) + period / 2.0
        g = dvs.sample_bilinear(textures, rows, cols, mode="wrap")
        frames[:, k] = BASE_INTENSITY * np.exp(contrast[:, None, None] * g)
    return frames


def generate(
    T: int = 4,
    size: int = 32,
    seed: int = 0,
    limit: int | None = None,
    samples_per_class: int = SAMPLES_PER_CLASS,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Build the motion arrays and metadata.

    Args:
        T: time bins per sample.
        size: frame height and width in pixels.
        seed: fixes sensor mismatch, textures, motion, noise and the split.
        limit: keep only the first ``limit`` samples (classes cycle, so stay balanced).
        samples_per_class: samples generated per class before ``limit``.

    Returns:
        ``(arrays, meta)`` as written by :func:`eventset.save_npz`.
    """
    n_classes = len(CLASS_NAMES)
    n = n_classes * samples_per_class
    if limit is not None:
        n = min(n, limit)
    labels = np.arange(n, dtype=np.int64) % n_classes
    sensor_rng, motion_rng, noise_rng, split_rng = (
        np.random.default_rng([seed, k]) for k in range(4)
    )
    sensor = dvs.make_sensor(DVS_CONFIG, size, size, sensor_rng)
    n_steps = T * -(-STEPS // T)
    period = 2 * size
    rotating = labels >= len(DIRECTIONS)
    speed = np.where(
        rotating,
        motion_rng.uniform(0.5, 0.9, size=n),  # radians over the clip
        motion_rng.uniform(0.2, 0.3, size=n) * size,  # pixels over the clip
    )
    contrast = motion_rng.uniform(0.5, 0.7, size=n)
    jitter = motion_rng.uniform(-np.pi / 18, np.pi / 18, size=n)
    centre = motion_rng.uniform(-0.1, 0.1, size=(n, 2)) * size
    x = np.empty((n, T, 2, size, size), dtype=np.uint8)
    for i in range(0, n, CHUNK):
        sl = slice(i, i + CHUNK)
        textures = make_textures(len(labels[sl]), period, motion_rng)
        video = render_videos(
            textures, labels[sl], size, n_steps, speed[sl], contrast[sl], jitter[sl], centre[sl]
        )
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
        "dataset": "motion",
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "T": T,
        "resolution": [size, size],
        "layout": "N,T,C,H,W",
        "channels": ["on", "off"],
        "class_names": CLASS_NAMES,
        "num_classes": n_classes,
        "dtype": "uint8",
        "binning": f"event counts per pixel, polarity and time bin; {n_steps} emulator "
        f"steps split into {T} equal bins; saturated at 255; use x.astype(float32)",
        "texture": "periodic smooth Gaussian field g (grain 1-2.5 px), intensity "
        f"{BASE_INTENSITY}*exp(c*g), c in [0.5, 0.7]",
        "motion": "translation by 0.2-0.3*size px over the clip in 8 directions (+-10 deg), "
        "or rotation by 0.5-0.9 rad about a point within 0.1*size of the centre",
        "split": {
            "fractions": list(SPLIT_FRACTIONS),
            "stratified": True,
            "sizes": [len(train), len(val), len(test)],
        },
        "dvs": DVS_CONFIG.to_dict(),
    }
    return arrays, meta


def main(argv: list[str] | None = None) -> None:
    """Command line: generate and write the motion NPZ."""
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--out", default="examples/data/motion.npz")
    p.add_argument("--T", type=int, default=4)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--samples-per-class", type=int, default=SAMPLES_PER_CLASS)
    p.add_argument("--limit", type=int, default=None, help="keep only the first N samples")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    arrays, meta = generate(
        T=args.T,
        size=args.size,
        seed=args.seed,
        limit=args.limit,
        samples_per_class=args.samples_per_class,
    )
    eventset.save_npz(args.out, arrays, meta)
    x = arrays["x"]
    print(
        f"wrote {args.out}: train {x.shape}, val {arrays['x_val'].shape}, test "
        f"{arrays['x_test'].shape}, {x.dtype}, mean events/pixel/bin {x.mean():.3f}"
    )


if __name__ == "__main__":
    main()
