"""Affine bookkeeping of the lowering: every float tensor as a view of an integer tensor.

A tensor of the float model is tracked as `real = a · X + b`, X int64 and a, b float64
arrays broadcastable to X (per channel, per element or scalar; exact values, float64 from
the float32 parameters). No op of the integer graph applies a or b: they are folded into
the next neuron or into the logits (hqc.lowering.neurons). The helpers here keep a and b
in step with the data movement of X.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from hqc.errors import ModelError
from hqc.intops.base import prod


@dataclass
class Sym:
    """A model tensor as an affine view real = a · X + b of the integer tensor X."""

    t: str
    a: np.ndarray
    b: np.ndarray
    shape: tuple[int, ...]
    lo: int
    hi: int
    layer: str | None = None  # the quantized layer whose accumulator X is (if any)

    @property
    def spikes(self) -> bool:
        return (self.lo, self.hi) == (0, 1)

    @property
    def plain(self) -> bool:
        """One scale and no offset: real = a · X."""
        return is_scalar(self.a) and not np.any(self.b != 0)


def arr(x: Any, rank: int) -> np.ndarray:
    """x as a float64 array of exactly `rank` axes (leading size-1 axes added or dropped)."""
    a = np.asarray(x, np.float64)
    if a.ndim > rank:
        if prod(a.shape[: a.ndim - rank]) != 1:
            raise ModelError(f"constant of shape {list(a.shape)} does not broadcast to rank {rank}")
        a = a.reshape(a.shape[a.ndim - rank:])
    return a.reshape((1,) * (rank - a.ndim) + a.shape)


def compact(a: np.ndarray) -> np.ndarray:
    """Shrink axes along which a is constant to size 1 (keeps rank)."""
    for ax in range(a.ndim):
        if a.shape[ax] > 1 and np.all(a == a.take([0], axis=ax)):
            a = a.take([0], axis=ax)
    return a


def is_scalar(a: np.ndarray) -> bool:
    return a.size == 1


def scalar(a: np.ndarray) -> float:
    return float(np.asarray(a).reshape(-1)[0])


def reshape_aff(a: np.ndarray, in_shape: tuple[int, ...], out_shape: tuple[int, ...], where: str) -> np.ndarray:
    """The affine array `a` of a tensor reshaped in_shape → out_shape (row-major)."""
    if a.size == 1:
        return a.reshape((1,) * len(out_shape))
    non1 = [i for i, d in enumerate(a.shape) if d != 1]
    if len(non1) != 1:
        raise ModelError(f"{where}: a per-channel scale spread over several axes cannot follow a reshape")
    ax = non1[0]
    c = in_shape[ax]
    pre = prod(in_shape[:ax])
    for j, d in enumerate(out_shape):
        if d == c and prod(out_shape[:j]) == pre:
            new = [1] * len(out_shape)
            new[j] = c
            return a.reshape(new)
    raise ModelError(f"{where}: reshape {list(in_shape)} → {list(out_shape)} splits the channel axis "
                     "of a per-channel scale")


def frac(x: float) -> Fraction:
    return Fraction(float(x))


def round_half_up(f: Fraction) -> int:
    return math.floor(f + Fraction(1, 2))


def ceil_to(v: int, m: int) -> int:
    return -((-v) // m) * m


def floor_to(v: int, m: int) -> int:
    return (v // m) * m


def bits_needed(v: int) -> int:
    return int(abs(int(v))).bit_length()
