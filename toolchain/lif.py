"""LIF semantics: the attributes of the IR node `ai.hqc::LIF` and its numpy reference.

One LIF node is one neuron layer over all T time steps: `S = LIF(X)` or `S, M = LIF(X)`.
Input X, spikes S and the optional membrane M have the same shape, time on axis
`time_axis`. Per step t, with v the membrane (v = v_init before step 0):

    charge:   decay_input=1:  h = v + (x - (v - v_reset)) / tau
              decay_input=0:  h = v - (v - v_reset) / tau + x
              (v_reset is taken as 0 in the charge when the reset is subtractive)
    fire:     s = (h >= v_threshold)   if comparison == ">="
              s = (h >  v_threshold)   if comparison == ">"
    reset:    hard (v_reset given):  v = s ? v_reset : h
              subtract:              v = h - s * reset_by      (reset_by defaults to v_threshold)

The second output M, when present, is the charged membrane h of every step, before that
step's fire and reset (M[t] = h_t). It is what snnTorch returns as `mem` and what models
that read out the output layer's membrane as logits use: snnTorch's
`mem_t = beta*mem_{t-1} + x_t - thr*s_{t-1}` is exactly h_t of this form with
reset_by = thr/beta (v_{t-1} = h_{t-1} - s_{t-1}*thr/beta, h_t = beta*v_{t-1} + x_t).

This covers SpikingJelly's LIFNode (tau, decay_input, hard/soft reset, ">="), IFNode
(tau = inf) and ParametricLIFNode (tau = 1/sigmoid(w)), snnTorch's Leaky (beta = 1 - 1/tau, decay_input=0, ">"; its subtract reset equals
reset_by = threshold / beta in this form) and hand-written loops. The attributes:

    tau (float > 0; inf for no leak), v_threshold (float), v_reset (float; absent means
    subtract reset), reset_by (float; subtract reset only), decay_input (int 0/1),
    comparison (">=" | ">"), time_axis (int, default 0), v_init (float, default
    v_reset or 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class LIFParams:
    tau: float
    v_threshold: float
    v_reset: float | None
    decay_input: bool
    comparison: str
    reset_by: float | None = None
    v_init: float = 0.0
    time_axis: int = 0

    @property
    def reset(self) -> str:
        return "hard" if self.v_reset is not None else "subtract"

    @property
    def beta(self) -> float:
        return 1.0 - 1.0 / self.tau if math.isfinite(self.tau) else 1.0

    def to_attrs(self) -> dict[str, Any]:
        a: dict[str, Any] = {
            "tau": float(self.tau),
            "v_threshold": float(self.v_threshold),
            "decay_input": int(self.decay_input),
            "comparison": self.comparison,
            "time_axis": int(self.time_axis),
            "v_init": float(self.v_init),
        }
        if self.v_reset is not None:
            a["v_reset"] = float(self.v_reset)
        else:
            a["reset_by"] = float(self.reset_by if self.reset_by is not None else self.v_threshold)
        return a

    @classmethod
    def from_attrs(cls, attrs: dict[str, Any]) -> LIFParams:
        v_reset = attrs.get("v_reset")
        th = float(attrs.get("v_threshold", 1.0))
        return cls(
            tau=float(attrs.get("tau", 2.0)),
            v_threshold=th,
            v_reset=None if v_reset is None else float(v_reset),
            decay_input=bool(int(attrs.get("decay_input", 1))),
            comparison=str(attrs.get("comparison", ">=")),
            reset_by=None if v_reset is not None else float(attrs.get("reset_by", th)),
            v_init=float(attrs.get("v_init", 0.0 if v_reset is None else v_reset)),
            time_axis=int(attrs.get("time_axis", 0)),
        )

    def describe(self) -> dict[str, Any]:
        d = {
            "tau": self.tau,
            "beta": self.beta,
            "v_threshold": self.v_threshold,
            "reset": self.reset,
            "decay_input": self.decay_input,
            "comparison": self.comparison,
        }
        if self.v_reset is not None:
            d["v_reset"] = self.v_reset
        else:
            d["reset_by"] = self.reset_by
        return d


def lif_charge(v: np.ndarray, x: np.ndarray, p: LIFParams) -> np.ndarray:
    """The charged membrane h of one step from the membrane v after the previous reset."""
    vr = p.v_reset if p.v_reset is not None else 0.0
    if math.isfinite(p.tau):
        if p.decay_input:
            h = v + (x - (v - vr)) / p.tau
        else:
            h = v - (v - vr) / p.tau + x
    else:
        h = v + x
    return h


def lif_fire_reset(h: np.ndarray, x: np.ndarray, p: LIFParams) -> tuple[np.ndarray, np.ndarray]:
    """Fire and reset of one step; returns (spike, membrane after the reset)."""
    s = (h >= p.v_threshold) if p.comparison == ">=" else (h > p.v_threshold)
    s = s.astype(x.dtype)
    if p.v_reset is not None:
        v_new = np.where(s > 0, np.asarray(p.v_reset, x.dtype), h)
    else:
        v_new = h - s * (p.reset_by if p.reset_by is not None else p.v_threshold)
    return s, v_new.astype(x.dtype)


def lif_step(v: np.ndarray, x: np.ndarray, p: LIFParams) -> tuple[np.ndarray, np.ndarray]:
    """One time step; returns (spike, new membrane). Works for any float dtype."""
    return lif_fire_reset(lif_charge(v, x, p), x, p)


def lif_numpy(
    x: np.ndarray, p: LIFParams, return_membrane: bool = False
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Reference: run the neuron over the time axis of x; returns spikes (same shape), or
    (spikes, membrane h before each step's reset) with `return_membrane`."""
    xt = np.moveaxis(x, p.time_axis, 0)
    v = np.full(xt.shape[1:], p.v_init, dtype=x.dtype)
    out = np.empty_like(xt)
    mem = np.empty_like(xt)
    for t in range(xt.shape[0]):
        h = lif_charge(v, xt[t], p)
        mem[t] = h
        out[t], v = lif_fire_reset(h, xt[t], p)
    spikes = np.moveaxis(out, 0, p.time_axis)
    return (spikes, np.moveaxis(mem, 0, p.time_axis)) if return_membrane else spikes
