"""A small dynamic-vision-sensor (DVS) emulator: intensity videos -> binned ON/OFF event counts.

Model (in the spirit of v2e / ESIM, simplified):

- Each pixel keeps a reference log intensity ``ref`` (initialised to the first frame).
- At every simulation step the pixel compares ``L = log(I + log_eps)`` with ``ref``.
  If ``L - ref >= theta_on`` it emits ``floor((L - ref) / theta_on)`` ON events and moves
  ``ref`` up by that many thresholds; symmetrically for OFF events with ``theta_off``.
- ``theta_on`` and ``theta_off`` are per-pixel: ``contrast * (1 + sigma * N(0, 1))``,
  clipped to ``[0.25, 4] * contrast``, drawn once per sensor (fixed by the seed), as the
  mismatch of a real sensor.
- Background-activity noise: at each step every pixel fires a spurious ON (OFF) event
  with probability ``noise_rate``.
- Events are binned by time step into ``T`` equal bins, giving counts shaped
  ``(T, 2, H, W)`` with channel 0 = ON, 1 = OFF, saturated to 255 and stored as uint8.

Steps are numbered by transition: a video of ``S`` frames has ``S - 1`` transitions, and
transition ``k`` (frame ``k`` -> ``k + 1``) falls in bin ``k * T // (S - 1)``.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["DVSConfig", "DVSSensor", "make_sensor", "emulate", "sample_bilinear"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DVSConfig:
    """Parameters of the emulated sensor (contrast thresholds are in natural-log units)."""

    contrast_on: float = 0.2
    contrast_off: float = 0.2
    threshold_sigma: float = 0.03
    noise_rate: float = 1e-4
    log_eps: float = 1e-3

    def to_dict(self) -> dict[str, float]:
        """Plain-dict form, for the dataset's metadata."""
        return asdict(self)


@dataclass(frozen=True)
class DVSSensor:
    """One emulated sensor: a config plus its fixed per-pixel thresholds, shape (H, W)."""

    config: DVSConfig
    theta_on: np.ndarray
    theta_off: np.ndarray


def make_sensor(config: DVSConfig, height: int, width: int, rng: np.random.Generator) -> DVSSensor:
    """Draw the per-pixel ON/OFF thresholds of a sensor from ``rng``."""

    def draw(contrast: float) -> np.ndarray:
        theta = contrast * (1.0 + config.threshold_sigma * rng.standard_normal((height, width)))
        return np.clip(theta, 0.25 * contrast, 4.0 * contrast).astype(np.float64)

    return DVSSensor(config, draw(config.contrast_on), draw(config.contrast_off))


def emulate(
    video: np.ndarray,
    sensor: DVSSensor,
    T: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Turn intensity videos into binned event counts.

    Args:
        video: intensities in ``[0, 1]``, shaped ``(N, S, H, W)`` (``S >= 2`` frames).
        sensor: thresholds and config, shape ``(H, W)`` matching the video.
        T: number of time bins.
        rng: source of the background-activity noise.

    Returns:
        uint8 counts shaped ``(N, T, 2, H, W)``; channel 0 ON, channel 1 OFF.
    """
    if video.ndim != 4 or video.shape[1] < 2:
        raise ValueError(f"video must be (N, S>=2, H, W), got {video.shape}")
    n, s, h, w = video.shape
    if sensor.theta_on.shape != (h, w):
        raise ValueError(f"sensor is {sensor.theta_on.shape}, video frames are {(h, w)}")
    if T < 1 or T > s - 1:
        raise ValueError(f"T must be in [1, {s - 1}] for {s} frames, got {T}")
    cfg = sensor.config
    log_video = np.log(np.clip(video, 0.0, 1.0) + cfg.log_eps)
    ref = log_video[:, 0].copy()
    counts = np.zeros((n, T, 2, h, w), dtype=np.int32)
    for k in range(s - 1):
        b = k * T // (s - 1)
        diff = log_video[:, k + 1] - ref
        n_on = np.floor(np.maximum(diff, 0.0) / sensor.theta_on)
        n_off = np.floor(np.maximum(-diff, 0.0) / sensor.theta_off)
        ref += n_on * sensor.theta_on - n_off * sensor.theta_off
        counts[:, b, 0] += n_on.astype(np.int32)
        counts[:, b, 1] += n_off.astype(np.int32)
        if cfg.noise_rate > 0:
            counts[:, b] += rng.random((n, 2, h, w)) < cfg.noise_rate
    log.debug("emulated %d videos: %.3f events/pixel/bin", n, counts.mean())
    return np.minimum(counts, 255).astype(np.uint8)


def sample_bilinear(
    images: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    mode: str = "constant",
    fill: float = 0.0,
) -> np.ndarray:
    """Sample a batch of images at real-valued coordinates with bilinear interpolation.

    Args:
        images: ``(N, h, w)`` source images; pixel ``(i, j)`` has its centre at ``(i, j)``.
        rows, cols: ``(N, H, W)`` sampling coordinates in source pixel units.
        mode: ``"constant"`` (outside reads ``fill``) or ``"wrap"`` (periodic source).
        fill: value outside the source in ``"constant"`` mode.

    Returns:
        ``(N, H, W)`` float64 samples.
    """
    n, h, w = images.shape
    r0 = np.floor(rows).astype(np.int64)
    c0 = np.floor(cols).astype(np.int64)
    fr = rows - r0
    fc = cols - c0
    batch = np.arange(n).reshape(n, 1, 1)
    if mode == "wrap":
        src = images

        def tap(r: np.ndarray, c: np.ndarray) -> np.ndarray:
            return src[batch, r % h, c % w]
    elif mode == "constant":
        src = np.pad(images.astype(np.float64), ((0, 0), (1, 1), (1, 1)), constant_values=fill)

        def tap(r: np.ndarray, c: np.ndarray) -> np.ndarray:
            return src[batch, np.clip(r + 1, 0, h + 1), np.clip(c + 1, 0, w + 1)]
    else:
        raise ValueError(f"mode must be 'constant' or 'wrap', got {mode!r}")
    return (
        tap(r0, c0) * (1 - fr) * (1 - fc)
        + tap(r0, c0 + 1) * (1 - fr) * fc
        + tap(r0 + 1, c0) * fr * (1 - fc)
        + tap(r0 + 1, c0 + 1) * fr * fc
    )
