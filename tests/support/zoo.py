"""Test model zoo: every spiking model the ONNX frontend must import, with its ground truth.

Each builder constructs a small, seeded torch model (eval mode; BatchNorm running stats
calibrated on spike data and then perturbed, so BN is never the identity), exports it to
ONNX with the chosen exporter and returns a :class:`ZooModel` holding the ONNX path, the
torch module, a seeded example input, the torch output on it, and the ground truth:

- ``layers``: every Conv/Linear module the forward pass calls (each once, even when
  snnTorch calls it at every time step; ``calls`` says how often), in first-call order.
- ``neurons``: every LIF-like module with its exact parameters, in first-call order.

Exporters: ``dynamo=True`` is ``torch.onnx.export(..., dynamo=True)`` (torch 2.13's
default, opset 20 here, weights in ``<file>.onnx.data``); ``dynamo=False`` is the
TorchScript exporter at ``opset_version=17``.

The LIF semantics that :class:`NeuronSpec` describes (and :meth:`NeuronSpec.simulate`
implements) is, per element, with ``r = v_reset`` for hard reset and ``r = 0`` for
subtractive reset, and the membrane starting at ``m = r``::

    decay_input:      h_t = m + (x_t - (m - r)) / tau
    not decay_input:  h_t = m - (m - r) / tau + x_t          (= beta*m + x_t when r = 0)
    reset_after_decay (snnTorch): h_t -= v_threshold * s_{t-1}   (subtract)
                                  h_t uses (1 - s_{t-1}) * m     (hard, to 0)
    s_t = h_t >= v_threshold     (comparison ">=", SpikingJelly and the example)
    s_t = h_t >  v_threshold     (comparison ">",  snnTorch and the hand-written loop)
    hard:     m = s_t * v_reset + (1 - s_t) * h_t   (unless reset_after_decay: m = h_t)
    subtract: m = h_t - s_t * v_threshold           (unless reset_after_decay: m = h_t)

``beta = 1 - 1/tau`` always; snnTorch's ``Leaky(beta)`` is ``tau = 1 / (1 - beta)`` with
``decay_input=False``. snnTorch applies a spike's reset at the next step, after the decay
(``mem_t = beta*mem_{t-1} + x_t - thr*s_{t-1}``), so its subtractive reset is not
SpikingJelly's (``reset_after_decay=True``); for reset to zero both are the same.

SpikingJelly's ``IFNode`` is the same recurrence without leak (``kind="if"``: ``tau = inf``,
``beta = 1``, ``decay_input=False``, so ``h_t = m + x_t``); its ``ParametricLIFNode``
(``kind="plif"``) is a LIF whose ``1/tau = sigmoid(w)`` comes from a trained scalar ``w``
(it multiplies by ``sigmoid(w)`` where a LIF divides by ``tau``).

Family models (:func:`family_models`) are the libraries' own zoo classes at small widths,
calibrated so that every neuron fires on 5-60 % of its elements (:func:`_calibrate_firing`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib.util
import io
import sys
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from tests.support import REPO

EXAMPLE_SPIKFORMER = REPO / "examples" / "spikformer" / "model.py"
TORCHSCRIPT_OPSET = 17
HQC_DOMAIN = "ai.hqc"

Comparison = Literal[">=", ">"]
ResetMode = Literal["hard", "subtract"]


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class LayerSpec:
    """One Conv/Linear module of the torch model.

    name:          torch module name (``model.named_modules()`` key).
    kind:          conv1d | conv2d | linear (as ``hqc.layers.LayerKind``).
    weight_shape:  torch weight shape: conv (C_out, C_in/groups, k...), linear (d_out, d_in).
    bias:          whether the module has a bias (BN folding may add one in the ONNX).
    calls:         forward calls per inference: 1 when T is folded into the batch
                   (SpikingJelly), T when the layer runs inside the time loop (snnTorch),
                   so the ONNX holds that many Conv/Gemm nodes sharing one weight.
    bn:            name of the BatchNorm module applied directly to this layer's output,
                   or None. Both exporters fold such a BN into the Conv when nothing
                   (not even a reshape) sits between them; SpikingJelly's multi-step
                   ``layer.Conv2d`` + ``layer.BatchNorm2d`` stay a Conv and a
                   BatchNormalization (docs/neuron-patterns.md, section 4).
    """

    name: str
    kind: Literal["conv1d", "conv2d", "linear"]
    weight_shape: tuple[int, ...]
    bias: bool
    calls: int
    bn: str | None = None


@dataclass(frozen=True)
class NeuronSpec:
    """One LIF-like module and its exact semantics (see the module docstring).

    name:               torch module name.
    library:            spikingjelly | snntorch | handwritten | example | hqc.
    tau, beta:          time constant and decay, ``beta = 1 - 1/tau``.
    v_threshold:        firing threshold.
    reset, v_reset:     "hard" with v_reset (a float), or "subtract" with v_reset None.
    decay_input:        whether the input is divided by tau.
    comparison:         ">=" or ">" (h compared with v_threshold).
    T:                  number of time steps.
    reset_after_decay:  snnTorch's delayed reset (see module docstring).
    calls:              forward calls per inference (1 multi-step, T for snnTorch).
    firing_rate:        mean spike rate on the zoo model's example input.
    kind:               "lif"; "if" for an integrate-and-fire neuron (tau inf, beta 1,
                        no decay_input); "plif" for SpikingJelly's ParametricLIFNode
                        (tau = 1 / sigmoid(w) of its trained w).
    """

    name: str
    library: str
    tau: float
    beta: float
    v_threshold: float
    reset: ResetMode
    v_reset: float | None
    decay_input: bool
    comparison: Comparison
    T: int
    reset_after_decay: bool = False
    calls: int = 1
    firing_rate: float | None = None
    kind: Literal["lif", "if", "plif"] = "lif"

    def simulate(self, x_seq: np.ndarray) -> np.ndarray:
        """Spikes (float32 0/1) of this neuron for the input ``x_seq`` of shape [T, ...]."""
        x_seq = np.asarray(x_seq, dtype=np.float32)
        r = np.float32(self.v_reset if self.reset == "hard" else 0.0)
        tau = np.float32(self.tau)
        thr = np.float32(self.v_threshold)
        m = np.full(x_seq.shape[1:], r, dtype=np.float32)
        s_prev = np.zeros_like(m)
        out = []
        for x in x_seq:
            if self.reset_after_decay:
                if self.reset == "hard":
                    m = (np.float32(1) - s_prev) * m
                h = np.float32(self.beta) * m + x
                if self.reset == "subtract":
                    h = h - s_prev * thr
            elif self.kind == "plif":  # SpikingJelly multiplies by sigmoid(w) = 1/tau
                q = np.float32(1.0 / self.tau)
                h = m + (x - (m - r)) * q if self.decay_input else m - (m - r) * q + x
            elif self.decay_input:
                h = m + (x - (m - r)) / tau
            else:
                h = m - (m - r) / tau + x
            s = (h >= thr) if self.comparison == ">=" else (h > thr)
            s = s.astype(np.float32)
            if self.reset_after_decay:
                m = h
            elif self.reset == "hard":
                m = s * r + (np.float32(1) - s) * h
            else:
                m = h - s * thr
            s_prev = s
            out.append(s)
        return np.stack(out)


@dataclass
class ZooModel:
    """A built and exported zoo model with its ground truth.

    input_layout: letters naming the input axes (T time, B batch, C channels, H, W, F
    features), e.g. "TBCHW" or "BTCHW". ``time_axis``/``batch_axis`` give them as ints.
    output_layout: the same for the output (K classes): "BK", or "TBK" for SpikingJelly's
    Spikformer, whose head runs per time step and does not average over T.
    expected_output: the torch model's output on ``example_input``.
    runnable: False when onnxruntime cannot run the model (custom ``ai.hqc`` ops).
    calibration: what :func:`_calibrate_firing` changed, per neuron name (empty for models
    calibrated with ``_calibrate_bn`` only).
    """

    name: str
    onnx_path: Path
    module: nn.Module
    example_input: np.ndarray
    input_layout: str
    T: int
    layers: list[LayerSpec]
    neurons: list[NeuronSpec]
    dynamo: bool | None
    expected_output: np.ndarray
    runnable: bool = True
    output_layout: str = "BK"
    kwargs: dict[str, Any] = field(default_factory=dict)
    calibration: dict[str, str] = field(default_factory=dict)

    @property
    def time_axis(self) -> int:
        return self.input_layout.index("T")

    @property
    def batch_axis(self) -> int:
        return self.input_layout.index("B")

    def run_torch(self, x: np.ndarray) -> np.ndarray:
        """Run the torch module on ``x`` (resets SpikingJelly state first)."""
        return _run(self.module, x)


# --------------------------------------------------------------------------- helpers


class Heaviside(torch.autograd.Function):
    """``(x >= 0)`` with a sigmoid surrogate gradient, defined outside SpikingJelly."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        sg = torch.sigmoid(4.0 * x)
        return grad * 4.0 * sg * (1.0 - sg)


class StrictHeaviside(torch.autograd.Function):
    """``(x > 0)`` with an arctan surrogate gradient (as snnTorch's default)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return (x > 0).float()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return grad / (1.0 + (np.pi * x) ** 2)


class UserSurrogate(nn.Module):
    """A surrogate module SpikingJelly does not know: its LIF falls back to a Torch loop.

    SpikingJelly 2.0 routes a LIFNode whose ``surrogate_function`` is one of its own
    surrogate classes (with a float alpha) to the custom op ``sj_lif::forward``; the
    TorchScript exporter cannot export that op. Any other callable selects the pure Torch
    reference loop (``spikingjelly._ops.lif.reference.multi_step``), which both exporters
    unroll. It must be an ``nn.Module`` to replace the surrogate submodule in place.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return Heaviside.apply(x)


@contextlib.contextmanager
def _quiet_single_thread() -> Iterator[None]:
    """One torch thread (the test machine is shared) and no exporter warnings, restored after."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        torch.set_num_threads(threads)


def _sj():
    from spikingjelly.activation_based import functional, layer, neuron

    return functional, layer, neuron


def _reset_state(module: nn.Module) -> None:
    try:
        from spikingjelly.activation_based import base
    except ImportError:  # pragma: no cover - spikingjelly is a test dependency
        return
    for m in module.modules():
        if isinstance(m, base.MemoryModule):
            m.reset()


def _run(module: nn.Module, x: np.ndarray) -> np.ndarray:
    _reset_state(module)
    with torch.no_grad(), _quiet_single_thread():
        y = module(torch.from_numpy(np.ascontiguousarray(x)))
    _reset_state(module)
    return y.detach().numpy()


def _spikes(rng: np.random.Generator, shape: tuple[int, ...], p: float = 0.3) -> np.ndarray:
    return (rng.random(shape) < p).astype(np.float32)


def _counts(rng: np.random.Generator, shape: tuple[int, ...], lam: float = 0.5) -> np.ndarray:
    return rng.poisson(lam, size=shape).astype(np.float32)


def _calibrate_bn(model: nn.Module, inputs: list[np.ndarray], seed: int) -> None:
    """Set BN running stats from spike data, then perturb them and the affine params.

    After this, BN is a per-channel affine map that is not the identity and puts the
    pre-activations around the thresholds, so the neurons fire.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average over the calibration batches
    model.train()
    with torch.no_grad(), _quiet_single_thread():
        for x in inputs:
            _reset_state(model)
            model(torch.from_numpy(x))
    model.eval()
    _reset_state(model)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for bn in bns:
            c = bn.num_features
            bn.running_mean += 0.05 * torch.randn(c, generator=g)
            bn.running_var *= 0.8 + 0.4 * torch.rand(c, generator=g)
            bn.weight.copy_(0.8 + 0.8 * torch.rand(c, generator=g))
            bn.bias.copy_(0.2 + 0.6 * torch.rand(c, generator=g))
            bn.momentum = 0.1


class _StopForward(Exception):
    """Raised by a hook to end a calibration pass once the module of interest has run."""


def _forward_until(
    model: nn.Module, x: np.ndarray, stop: nn.Module, stop_calls: int
) -> tuple[np.ndarray, np.ndarray]:
    """Run ``model`` on ``x`` until ``stop`` ran ``stop_calls`` times; its [T, ...] in/out.

    A module called once per inference (multi-step) records its input as is; one called
    per time step (snnTorch) records the stack of its calls' inputs.
    """
    ins: list[torch.Tensor] = []
    outs: list[torch.Tensor] = []

    def hook(mod: nn.Module, args: tuple, out: Any) -> None:
        ins.append(args[0].detach().clone())
        outs.append((out[0] if isinstance(out, tuple) else out).detach().clone())
        if len(ins) >= stop_calls:
            raise _StopForward

    handle = stop.register_forward_hook(hook)
    _reset_state(model)
    try:
        with torch.no_grad(), _quiet_single_thread():
            model(torch.from_numpy(np.ascontiguousarray(x)))
    except _StopForward:
        pass
    finally:
        handle.remove()
        _reset_state(model)
    if len(ins) == 1:
        return ins[0].numpy(), outs[0].numpy()
    return torch.stack(ins).numpy(), torch.stack(outs).numpy()


@contextlib.contextmanager
def _differentiable_neurons(model: nn.Module) -> Iterator[None]:
    """SpikingJelly neurons on the Torch reference loop (UserSurrogate) for the duration.

    The loop's autograd graph links every spike to the neuron's input, whatever the
    library's own surrogate or custom op records; the forward values are the same.
    """
    try:
        from spikingjelly.activation_based import neuron
    except ImportError:  # pragma: no cover - an snnTorch-only environment
        yield
        return
    saved = [(m, m.surrogate_function) for m in model.modules() if isinstance(m, neuron.BaseNode)]
    for m, _ in saved:
        m.surrogate_function = UserSurrogate()
    try:
        yield
    finally:
        for m, fn in saved:
            m.surrogate_function = fn


def _knob_structure(
    model: nn.Module, x: np.ndarray, neurons: set[str], knobs: set[str]
) -> tuple[list[str], dict[str, int], dict[str, set[str]]]:
    """First-call order and call counts of neurons and knobs, and each neuron's upstream knobs.

    ``up[n]`` holds every knob (BatchNorm, or Conv/Linear with a bias) whose output reaches
    the input of neuron ``n``, found by walking the autograd graph back from that input.
    """
    modules = dict(model.named_modules())
    order: list[str] = []
    calls: dict[str, int] = {}
    owner: dict[int, str] = {}
    keep: list[Any] = []  # keeps the graph nodes alive, so their ids stay unique
    starts: dict[str, list[Any]] = {}
    handles = []

    def hook(name: str):
        def fn(mod: nn.Module, args: tuple, out: Any) -> None:
            if name not in calls:
                order.append(name)
            calls[name] = calls.get(name, 0) + 1
            if name in neurons:
                starts.setdefault(name, []).append(args[0].grad_fn)
            else:
                t = out[0] if isinstance(out, tuple) else out
                if t.grad_fn is not None:
                    owner[id(t.grad_fn)] = name
                    keep.append(t.grad_fn)

        return fn

    for name in sorted(neurons | knobs):
        handles.append(modules[name].register_forward_hook(hook(name)))
    _reset_state(model)
    try:
        with torch.enable_grad(), _quiet_single_thread(), _differentiable_neurons(model):
            out = model(torch.from_numpy(np.ascontiguousarray(x)))
    finally:
        for h in handles:
            h.remove()
    up: dict[str, set[str]] = {}
    for name, nodes in starts.items():
        found: set[str] = set()
        seen: set[int] = set()
        stack = [n for n in nodes if n is not None]
        while stack:
            node = stack.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            if id(node) in owner:
                found.add(owner[id(node)])
            stack.extend(nxt for nxt, _ in node.next_functions if nxt is not None)
        up[name] = found
    del out
    keep.clear()
    _reset_state(model)
    return order, calls, up


def _bisect(
    f: Callable[[float], float], target: float, lo: float, hi: float, iters: int = 40
) -> float:
    """x in [lo, hi] with f(x) closest to target, for f non-decreasing (lo, hi widened)."""
    for _ in range(40):
        if f(hi) >= target:
            break
        lo, hi = hi, hi + 2.0 * (hi - lo)
    for _ in range(40):
        if f(lo) <= target:
            break
        lo, hi = lo - 2.0 * (hi - lo), lo
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        if f(mid) < target:
            lo = mid
        else:
            hi = mid
    return min((lo, hi), key=lambda v: abs(f(v) - target))


def _reestimate_bn(
    model: nn.Module,
    bn: nn.modules.batchnorm._BatchNorm,
    x: np.ndarray,
    calls: int,
    g: torch.Generator,
) -> None:
    """Running stats of ``bn`` from its current input on ``x``, then perturbed (never identity)."""
    bn.reset_running_stats()
    bn.momentum = None
    bn.train()
    try:
        _forward_until(model, x, bn, calls)
    finally:
        bn.eval()
        bn.momentum = 0.1
    c = bn.num_features
    with torch.no_grad():
        std = bn.running_var.clamp_min(1e-6).sqrt()
        bn.running_mean += 0.1 * std * torch.randn(c, generator=g)
        bn.running_var *= 0.8 + 0.4 * torch.rand(c, generator=g)
        bn.weight.copy_(0.8 + 0.8 * torch.rand(c, generator=g))
        bn.bias.copy_(0.2 + 0.6 * torch.rand(c, generator=g))


def _rate_of(model: nn.Module, x: np.ndarray, neuron: nn.Module, calls: int) -> float:
    return float(_forward_until(model, x, neuron, calls)[1].mean())


def _shift_knob(
    knob: nn.Module,
    knob_name: str,
    spec: NeuronSpec,
    x_seq: np.ndarray,
    probe: Callable[[], float],
    goal: float,
    accept: tuple[float, float],
) -> str:
    """Shift ``knob.bias`` so that the neuron fires at ``goal`` (see ``_calibrate_firing``)."""
    bias = knob.bias
    base = bias.detach().clone()

    def sim_rate(d: float) -> float:
        return float(spec.simulate(x_seq + np.float32(d)).mean())

    def real_rate(d: float) -> float:
        with torch.no_grad():
            bias.copy_(base + d)
        return probe()

    leak = spec.tau if spec.decay_input and np.isfinite(spec.tau) else 1.0
    span = float(np.abs(x_seq).max()) + 4.0 * abs(spec.v_threshold) * leak
    delta = _bisect(sim_rate, goal, -span, span)
    got, how = real_rate(delta), "simulated"
    if not accept[0] <= got <= accept[1]:
        delta = _bisect(real_rate, goal, -span, span, iters=24)
        got, how = real_rate(delta), "forward"
    return f"{knob_name}.bias {delta:+.4f} ({how}) -> {got:.3f}"


def _set_threshold(
    neuron: nn.Module,
    spec: NeuronSpec,
    x_seq: np.ndarray,
    probe: Callable[[], float],
    goal: float,
    accept: tuple[float, float],
) -> str:
    """Set the neuron's own ``v_threshold`` so that it fires near ``goal`` (exact: its input
    does not depend on it): the coarsest multiple of 1/4 ... 1/65536 that fires within 0.05
    of ``goal``, inside ``accept``, with no membrane value within a relative 1e-5 of it
    (spike-product inputs are dyadic: a threshold equal to one of them would be a tie on
    every input, flipping between runtimes)."""
    if isinstance(getattr(neuron, "v_threshold", None), torch.Tensor) or not hasattr(
        neuron, "v_threshold"
    ):
        raise RuntimeError(f"{spec.name}: no free knob and no float v_threshold to adjust")

    def neg_rate(t: float) -> float:
        return -float(dataclasses.replace(spec, v_threshold=t).simulate(x_seq).mean())

    def rate(t: float) -> float:
        return -neg_rate(t)

    def good(t: float) -> bool:  # in band, near the goal, no membrane within 1e-5 of it
        r = rate(t)
        near = abs(r - goal) <= 0.05 and accept[0] <= r <= accept[1]
        return near and rate(t * (1 - 1e-5)) == r == rate(t * (1 + 1e-5))

    top = float(np.abs(x_seq).sum(axis=0).max()) + 1.0
    raw = _bisect(neg_rate, -goal, 1.0 / 4096, top)
    for step in (1 / 4, 1 / 8, 1 / 16, 1 / 32, 1 / 64, 1 / 256, 1 / 4096, 1 / 65536):
        grid = {max(step, np.floor(raw / step) * step), max(step, np.ceil(raw / step) * step)}
        fits = [t for t in sorted(grid, key=lambda t: abs(rate(t) - goal)) if good(t)]
        if fits:
            thr = float(fits[0])
            break
    else:
        raise RuntimeError(f"{spec.name}: no threshold near {raw:.4g} fires at {goal:.3f}")
    old = neuron.v_threshold
    neuron.v_threshold = float(np.float32(thr))
    return f"v_threshold {old:g} -> {neuron.v_threshold:g} -> {probe():.3f}"


def _calibrate_firing(
    model: nn.Module,
    inputs: np.ndarray,
    neuron_params: Callable[[nn.Module], dict[str, Any] | None],
    T: int,
    seed: int,
    accept: tuple[float, float] = (0.12, 0.45),
    target: tuple[float, float] = (0.15, 0.35),
    thresholds: bool = True,
) -> dict[str, str]:
    """Make every neuron fire on ``accept[0]``-``accept[1]`` of its elements on ``inputs``.

    Walks the BatchNorms and neurons in forward order (a neuron's rate depends only on
    what runs before it):

    - a BatchNorm gets running stats measured on its current input, then perturbed, and
      random affine parameters (as ``_calibrate_bn``, but after its upstream is final);
    - a neuron already inside ``accept`` is left alone. Otherwise its *knob* is the
      last-called BatchNorm or biased Conv/Linear upstream of it that reaches no neuron
      calibrated before it; the knob's bias is shifted by the delta that puts the rate at a
      seeded target in ``target``, found by bisection on ``NeuronSpec.simulate`` of the
      recorded input plus delta (exact when only adds, pools, means and reshapes lie between
      knob and neuron), checked by a real forward pass and, if that disagrees, found again
      by bisection over forward passes;
    - a neuron with no free knob (an attention neuron fed by a product of spikes; a neuron
      on a residual stream whose every knob already set an earlier neuron) gets its own
      ``v_threshold`` changed when ``thresholds`` is true (see ``_set_threshold``); else it
      is an error. ``NeuronSpec.v_threshold`` reads the module, so it stays truthful.

    ``inputs`` is one batch in the model's input layout. Returns, per neuron, what it did.
    Deterministic for a given model, inputs and seed.
    """
    model.eval()
    modules = dict(model.named_modules())
    params = {n: p for n, m in modules.items() if (p := neuron_params(m)) is not None}
    inside = tuple(f"{n}." for n in params)
    knobs = {
        n
        for n, m in modules.items()
        if not n.startswith(inside)
        and (
            isinstance(m, nn.modules.batchnorm._BatchNorm)
            or (_layer_kind(m) is not None and m.bias is not None)
        )
    }
    order, calls, up = _knob_structure(model, inputs, set(params), knobs)
    rng = np.random.default_rng(seed)
    g = torch.Generator().manual_seed(seed)
    done: list[str] = []
    actions: dict[str, str] = {}
    for name in order:
        m = modules[name]
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            _reestimate_bn(model, m, inputs, calls[name], g)
            continue
        if name not in params:
            continue
        goal = float(rng.uniform(*target))
        spec = NeuronSpec(name=name, T=T, **neuron_params(m))  # type: ignore[arg-type]
        x_seq, s_seq = _forward_until(model, inputs, m, calls[name])
        rate = float(s_seq.mean())
        taken = set().union(*(up.get(d, set()) for d in done))
        done.append(name)
        if accept[0] <= rate <= accept[1]:
            actions[name] = f"as built ({rate:.3f})"
            continue
        free = [k for k in up.get(name, set()) if k not in taken]
        probe = functools.partial(_rate_of, model, inputs, m, calls[name])
        if free:
            knob = max(free, key=order.index)
            actions[name] = _shift_knob(modules[knob], knob, spec, x_seq, probe, goal, accept)
            actions[name] += f"; was {rate:.3f}"
        elif thresholds:
            actions[name] = _set_threshold(m, spec, x_seq, probe, goal, accept)
            actions[name] += f"; was {rate:.3f}"
        else:
            raise RuntimeError(f"{name}: fires {rate:.3f} and no BatchNorm/bias knob is free")
    return actions


def _layer_kind(m: nn.Module) -> str | None:
    if isinstance(m, nn.Conv1d):
        return "conv1d"
    if isinstance(m, nn.Conv2d):
        return "conv2d"
    if isinstance(m, nn.Linear):
        return "linear"
    return None


def _trace(
    model: nn.Module,
    x: np.ndarray,
    neuron_params: Callable[[nn.Module], dict[str, Any] | None],
    T: int,
) -> tuple[list[LayerSpec], list[NeuronSpec], dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Run the model once with hooks: layers, neurons, and each neuron's [T, ...] in/out."""
    calls: dict[str, int] = {}
    order: list[str] = []
    produced_by: dict[int, tuple[str, torch.Tensor]] = {}
    bn_of: dict[str, str] = {}
    n_in: dict[str, list[torch.Tensor]] = {}
    n_out: dict[str, list[torch.Tensor]] = {}
    params: dict[str, dict[str, Any]] = {}
    handles = []

    def hook(name: str, kind: str):
        def fn(mod: nn.Module, args: tuple, out: Any) -> None:
            if name not in calls:
                order.append(name)
            calls[name] = calls.get(name, 0) + 1
            if kind == "layer":
                produced_by[id(out)] = (name, out)
            elif kind == "bn":
                src = produced_by.get(id(args[0]))
                if src is not None and src[1] is args[0]:
                    bn_of[src[0]] = name
            else:
                n_in.setdefault(name, []).append(args[0].detach().clone())
                spk = out[0] if isinstance(out, tuple) else out
                n_out.setdefault(name, []).append(spk.detach().clone())

        return fn

    for name, m in model.named_modules():
        p = neuron_params(m)
        if p is not None:
            params[name] = p
            handles.append(m.register_forward_hook(hook(name, "neuron")))
        elif _layer_kind(m) is not None:
            handles.append(m.register_forward_hook(hook(name, "layer")))
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            handles.append(m.register_forward_hook(hook(name, "bn")))
    try:
        _run(model, x)
    finally:
        for h in handles:
            h.remove()

    modules = dict(model.named_modules())
    layers, neurons, seqs = [], [], {}
    for name in order:
        m = modules[name]
        kind = _layer_kind(m)
        if name in params:
            ins, outs = n_in[name], n_out[name]
            if len(ins) == 1:
                x_seq, s_seq = ins[0], outs[0]
            else:
                x_seq, s_seq = torch.stack(ins), torch.stack(outs)
            seqs[name] = (x_seq.numpy(), s_seq.numpy())
            neurons.append(
                NeuronSpec(
                    name=name,
                    T=T,
                    calls=calls[name],
                    firing_rate=float(s_seq.float().mean()),
                    **params[name],
                )
            )
        elif kind is not None:
            layers.append(
                LayerSpec(
                    name=name,
                    kind=kind,  # type: ignore[arg-type]
                    weight_shape=tuple(m.weight.shape),
                    bias=m.bias is not None,
                    calls=calls[name],
                    bn=bn_of.get(name),
                )
            )
    return layers, neurons, seqs


def _export(model: nn.Module, x: np.ndarray, path: Path, dynamo: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    _reset_state(model)
    xt = torch.from_numpy(x)
    with torch.no_grad(), _quiet_single_thread(), contextlib.redirect_stdout(io.StringIO()):
        if dynamo:
            torch.onnx.export(model, (xt,), str(path), dynamo=True, verbose=False)
        else:
            torch.onnx.export(
                model, (xt,), str(path), dynamo=False, opset_version=TORCHSCRIPT_OPSET
            )
    _reset_state(model)


def _finish(
    name: str,
    model: nn.Module,
    x: np.ndarray,
    layout: str,
    T: int,
    tmp_dir: Path,
    dynamo: bool,
    neuron_params: Callable[[nn.Module], dict[str, Any] | None],
    kwargs: dict[str, Any],
    output_layout: str = "BK",
) -> ZooModel:
    model.eval()
    layers, neurons, _ = _trace(model, x, neuron_params, T)
    path = Path(tmp_dir) / f"{name}.onnx"
    _export(model, x, path, dynamo)
    return ZooModel(
        name=name,
        onnx_path=path,
        module=model,
        example_input=x,
        input_layout=layout,
        T=T,
        layers=layers,
        neurons=neurons,
        dynamo=dynamo,
        expected_output=_run(model, x),
        output_layout=output_layout,
        kwargs=kwargs,
    )


def _tag(dynamo: bool) -> str:
    return "dynamo" if dynamo else "ts"


def neuron_io(zm: ZooModel) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each neuron's recorded input and output spikes ([T, ...]) on the example input."""
    return _trace(zm.module, zm.example_input, _neuron_params_any, zm.T)[2]


# --------------------------------------------------------------------------- neurons


def _sj_lif_params(m: nn.Module) -> dict[str, Any] | None:
    _, _, neuron = _sj()
    if type(m) is not neuron.LIFNode:
        return None
    hard = m.v_reset is not None
    return {
        "library": "spikingjelly",
        "tau": float(m.tau),
        "beta": 1.0 - 1.0 / float(m.tau),
        "v_threshold": float(m.v_threshold),
        "reset": "hard" if hard else "subtract",
        "v_reset": float(m.v_reset) if hard else None,
        "decay_input": bool(m.decay_input),
        "comparison": ">=",
    }


def _sj_node_params(m: nn.Module) -> dict[str, Any] | None:
    """SpikingJelly LIFNode, IFNode or ParametricLIFNode (exact types; subclasses differ)."""
    _, _, neuron = _sj()
    if type(m) is neuron.LIFNode:
        return _sj_lif_params(m)
    if type(m) not in (neuron.IFNode, neuron.ParametricLIFNode):
        return None
    hard = m.v_reset is not None
    p: dict[str, Any] = {
        "library": "spikingjelly",
        "v_threshold": float(m.v_threshold),
        "reset": "hard" if hard else "subtract",
        "v_reset": float(m.v_reset) if hard else None,
        "comparison": ">=",
    }
    if type(m) is neuron.IFNode:
        return {**p, "tau": float("inf"), "beta": 1.0, "decay_input": False, "kind": "if"}
    q = float(torch.sigmoid(m.w.detach().float()))
    return {
        **p,
        "tau": 1.0 / q,
        "beta": 1.0 - q,
        "decay_input": bool(m.decay_input),
        "kind": "plif",
    }


def _leaky_params(m: nn.Module) -> dict[str, Any] | None:
    import snntorch as snn

    if type(m) is not snn.Leaky:
        return None
    beta = float(m.beta)
    hard = m.reset_mechanism == "zero"
    return {
        "library": "snntorch",
        "tau": 1.0 / (1.0 - beta),
        "beta": beta,
        "v_threshold": float(m.threshold),
        "reset": "hard" if hard else "subtract",
        "v_reset": 0.0 if hard else None,
        "decay_input": False,
        "comparison": ">",
        "reset_after_decay": True,
    }


class HandLIF(nn.Module):
    """A LIF loop written by hand: ``mem = beta*mem + x; spk = mem > thr; mem -= spk*thr``."""

    def __init__(self, beta: float = 0.5, threshold: float = 1.0) -> None:
        super().__init__()
        self.beta = beta
        self.threshold = threshold

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        mem = torch.zeros_like(x_seq[0])
        spikes = []
        for t in range(x_seq.shape[0]):
            mem = self.beta * mem + x_seq[t]
            spk = StrictHeaviside.apply(mem - self.threshold)
            mem = mem - spk * self.threshold
            spikes.append(spk)
        return torch.stack(spikes)


def _hand_params(m: nn.Module) -> dict[str, Any] | None:
    if type(m) is not HandLIF:
        return None
    return {
        "library": "handwritten",
        "tau": 1.0 / (1.0 - m.beta),
        "beta": float(m.beta),
        "v_threshold": float(m.threshold),
        "reset": "subtract",
        "v_reset": None,
        "decay_input": False,
        "comparison": ">",
    }


def _example_params(m: nn.Module) -> dict[str, Any] | None:
    if type(m).__name__ != "MultiStepLIF" or not hasattr(m, "v_threshold"):
        return None
    return {
        "library": "example",
        "tau": float(m.tau),
        "beta": 1.0 - 1.0 / float(m.tau),
        "v_threshold": float(m.v_threshold),
        "reset": "hard",
        "v_reset": 0.0,
        "decay_input": True,
        "comparison": ">=",
    }


def _neuron_params_any(m: nn.Module) -> dict[str, Any] | None:
    for f in (_hand_params, _example_params, _sj_node_params, _leaky_params):
        p = f(m)
        if p is not None:
            return p
    return None


# --------------------------------------------------------------------------- builders


def _set_user_surrogate(model: nn.Module) -> None:
    _, _, neuron = _sj()
    for m in model.modules():
        if isinstance(m, (neuron.LIFNode, neuron.IFNode, neuron.ParametricLIFNode)):
            m.surrogate_function = UserSurrogate()


def _resolve_surrogate(surrogate: str | None, dynamo: bool) -> str:
    if surrogate is None:
        surrogate = "default" if dynamo else "user"
    if surrogate not in ("default", "user"):
        raise ValueError(f"surrogate must be 'default' or 'user', got {surrogate!r}")
    if surrogate == "default" and not dynamo:
        raise ValueError(
            "SpikingJelly's default surrogate runs the custom op sj_lif::forward, which "
            "only the dynamo exporter lowers; use surrogate='user' with dynamo=False"
        )
    return surrogate


def sj_spikformer(
    tmp_dir: Path,
    dynamo: bool = True,
    depth: int = 1,
    dim: int = 64,
    heads: int = 4,
    T: int = 4,
    img: int = 32,
    in_channels: int = 2,
    surrogate: str | None = None,
    seed: int = 0,
    calibration: str = "bn",
) -> ZooModel:
    """SpikingJelly 2.0's own Spikformer (patch 4; input [T, B, C, H, W]; output [T, B, 10]).

    surrogate: "default" (SJ Sigmoid, custom op, dynamo only) or "user" (UserSurrogate set
    on every LIFNode, keeping each position's tau/threshold/detach_reset); None picks
    "default" for dynamo and "user" for TorchScript.
    calibration: "bn" (``_calibrate_bn``, as built for ``all_models``) or "firing"
    (``_calibrate_firing``: every neuron at 5-60 %; the attention neuron
    ``blocks.*.attn.attn_lif``, fed by ``q @ k^T @ v`` of spikes with no BatchNorm before it,
    gets its own v_threshold: 0.5 -> 4.765625 in the catalogue's d1/64/T2 model; every
    other neuron keeps its threshold; see ``ZooModel.calibration``).
    """
    if calibration not in ("bn", "firing"):
        raise ValueError(f"calibration must be 'bn' or 'firing', got {calibration!r}")
    from spikingjelly.activation_based.model.spikformer import Spikformer

    surrogate = _resolve_surrogate(surrogate, dynamo)
    torch.manual_seed(seed)
    model = Spikformer(
        T=T,
        in_channels=in_channels,
        img_size_h=img,
        img_size_w=img,
        patch_size=4,
        num_classes=10,
        embed_dims=dim,
        num_heads=heads,
        depths=depth,
    )
    if surrogate == "user":
        _set_user_surrogate(model)
    rng = np.random.default_rng(seed)
    shape = (T, 1, in_channels, img, img)
    calib = _spikes(rng, (T, 4, in_channels, img, img))
    x = _spikes(rng, shape)
    kwargs = dict(depth=depth, dim=dim, heads=heads, T=T, img=img, surrogate=surrogate)
    name = f"sj_spikformer_d{depth}_{dim}_T{T}_{surrogate}_{_tag(dynamo)}"
    if calibration == "bn":
        _calibrate_bn(model, [calib], seed)
        return _finish(name, model, x, "TBCHW", T, tmp_dir, dynamo, _sj_lif_params, kwargs, "TBK")
    kwargs["calibration"] = calibration
    name = name.replace("sj_spikformer_", "sj_spikformer_fire_")
    return _family_finish(
        name, model, calib, x, "TBCHW", T, tmp_dir, dynamo, _sj_lif_params, kwargs, seed, "TBK"
    )


class SJConvNet(nn.Module):
    """Conv2d+BN+LIF x2 (SeqToANNContainer, then multi-step layer.* wrappers), Linear, mean T."""

    def __init__(
        self,
        v_threshold: float,
        detach_reset: bool,
        v_reset: float | None = 0.0,
        decay_input: bool = True,
        in_channels: int = 2,
        img: int = 16,
        num_classes: int = 10,
    ) -> None:
        super().__init__()
        _, layer, neuron = _sj()

        def lif() -> nn.Module:
            return neuron.LIFNode(
                tau=2.0,
                v_threshold=v_threshold,
                v_reset=v_reset,
                decay_input=decay_input,
                detach_reset=detach_reset,
                step_mode="m",
            )

        self.stage1 = layer.SeqToANNContainer(
            nn.Conv2d(in_channels, 8, 3, padding=1, bias=False),
            nn.BatchNorm2d(8),
        )
        self.lif1 = lif()
        self.pool1 = layer.MaxPool2d(2, step_mode="m")
        self.conv2 = layer.Conv2d(8, 16, 3, padding=1, bias=False, step_mode="m")
        self.bn2 = layer.BatchNorm2d(16, step_mode="m")
        self.lif2 = lif()
        self.pool2 = layer.MaxPool2d(2, step_mode="m")
        self.fc = layer.Linear(16 * (img // 4) ** 2, num_classes, step_mode="m")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.lif1(self.stage1(x)))
        x = self.pool2(self.lif2(self.bn2(self.conv2(x))))
        return self.fc(x.flatten(2)).mean(0)


def sj_lif_convnet(
    tmp_dir: Path,
    dynamo: bool = True,
    v_threshold: float = 1.0,
    surrogate: str | None = None,
    detach_reset: bool = True,
    v_reset: float | None = 0.0,
    decay_input: bool = True,
    T: int = 4,
    seed: int = 1,
) -> ZooModel:
    """SpikingJelly 2.0 LIFNode(step_mode='m', tau=2) conv net; input [T, B, 2, 16, 16].

    v_reset=None selects SpikingJelly's soft (subtractive) reset.
    """
    surrogate = _resolve_surrogate(surrogate, dynamo)
    torch.manual_seed(seed)
    model = SJConvNet(
        v_threshold=v_threshold,
        detach_reset=detach_reset,
        v_reset=v_reset,
        decay_input=decay_input,
    )
    if surrogate == "user":
        _set_user_surrogate(model)
    rng = np.random.default_rng(seed)
    _calibrate_bn(model, [_spikes(rng, (T, 8, 2, 16, 16))], seed)
    x = _spikes(rng, (T, 1, 2, 16, 16))
    thr = str(v_threshold).replace(".", "p")
    variant = ("hard" if v_reset is not None else "soft") + ("" if decay_input else "_nodecay")
    name = f"sj_lif_convnet_thr{thr}_{variant}_{surrogate}_{_tag(dynamo)}"
    kwargs = dict(
        v_threshold=v_threshold,
        surrogate=surrogate,
        detach_reset=detach_reset,
        v_reset=v_reset,
        decay_input=decay_input,
        T=T,
    )
    return _finish(name, model, x, "TBCHW", T, tmp_dir, dynamo, _sj_lif_params, kwargs)


class LeakyConvNet(nn.Module):
    """snnTorch style: a time loop, conv -> Leaky -> conv -> Leaky -> fc -> Leaky each step."""

    def __init__(
        self, beta: float, reset: str, threshold: float = 1.0, in_channels: int = 2, img: int = 16
    ) -> None:
        super().__init__()
        import snntorch as snn

        def leaky() -> nn.Module:
            return snn.Leaky(beta=beta, threshold=threshold, reset_mechanism=reset)

        self.conv1 = nn.Conv2d(in_channels, 8, 3, padding=1)
        self.lif1 = leaky()
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.lif2 = leaky()
        self.fc = nn.Linear(16 * (img // 2) ** 2, 10)
        self.lif3 = leaky()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mem1 = self.lif1.init_leaky()
        mem2 = self.lif2.init_leaky()
        mem3 = self.lif3.init_leaky()
        spk_rec = []
        for t in range(x.shape[0]):
            spk1, mem1 = self.lif1(self.conv1(x[t]), mem1)
            spk2, mem2 = self.lif2(self.conv2(spk1), mem2)
            spk3, mem3 = self.lif3(self.fc(spk2.flatten(1)), mem3)
            spk_rec.append(spk3)
        return torch.stack(spk_rec).sum(0)  # spike count per class


def snn_leaky_convnet(
    tmp_dir: Path,
    dynamo: bool = True,
    reset: str = "subtract",
    beta: float | None = None,
    threshold: float = 1.0,
    T: int = 4,
    seed: int = 2,
) -> ZooModel:
    """snnTorch Leaky conv net; input [T, B, 2, 16, 16] event counts; output spike counts.

    beta defaults to 0.5 for reset="subtract" and 0.9 for reset="zero".
    """
    if reset not in ("subtract", "zero"):
        raise ValueError(f"reset must be 'subtract' or 'zero', got {reset!r}")
    if beta is None:
        beta = 0.5 if reset == "subtract" else 0.9
    torch.manual_seed(seed)
    model = LeakyConvNet(beta=beta, reset=reset, threshold=threshold)
    with torch.no_grad():  # scale the default init up so every layer fires
        for m in (model.conv1, model.conv2, model.fc):
            m.weight.mul_(4.0 * threshold)
            m.bias.uniform_(0.0, 0.3 * threshold)
    rng = np.random.default_rng(seed)
    x = _counts(rng, (T, 1, 2, 16, 16))
    thr = "" if threshold == 1.0 else "_thr" + str(threshold).replace(".", "p")
    name = f"snn_leaky_convnet_{reset}{thr}_{_tag(dynamo)}"
    kwargs = dict(reset=reset, beta=beta, threshold=threshold, T=T)
    return _finish(name, model, x, "TBCHW", T, tmp_dir, dynamo, _leaky_params, kwargs)


class HandLIFNet(nn.Module):
    """Linear on [T, B, F] -> HandLIF -> Linear head -> mean over T."""

    def __init__(self, features: int = 32, hidden: int = 64, classes: int = 10) -> None:
        super().__init__()
        self.fc1 = nn.Linear(features, hidden)
        self.lif = HandLIF(beta=0.5, threshold=1.0)
        self.head = nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.lif(self.fc1(x))).mean(0)


def handwritten_lif(tmp_dir: Path, dynamo: bool = True, T: int = 4, seed: int = 3) -> ZooModel:
    """A plain PyTorch LIF loop (beta 0.5, thr 1, subtract, '>'); input [T, B, 32] counts."""
    torch.manual_seed(seed)
    model = HandLIFNet()
    with torch.no_grad():
        model.fc1.weight.mul_(3.0)
        model.fc1.bias.uniform_(0.0, 0.5)
    rng = np.random.default_rng(seed)
    x = _counts(rng, (T, 1, 32))
    name = f"handwritten_lif_{_tag(dynamo)}"
    return _finish(name, model, x, "TBF", T, tmp_dir, dynamo, _hand_params, dict(T=T))


def load_example_spikformer():
    """Import ``examples/spikformer/model.py`` by path (it is not a package)."""
    if not EXAMPLE_SPIKFORMER.exists():
        raise FileNotFoundError(f"{EXAMPLE_SPIKFORMER} does not exist")
    name = "hqc_example_spikformer_model"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, EXAMPLE_SPIKFORMER)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # dataclasses need the module registered
    try:
        spec.loader.exec_module(mod)
    except BaseException:
        del sys.modules[name]
        raise
    return mod


def example_spikformer(
    tmp_dir: Path,
    dynamo: bool = True,
    depth: int = 1,
    dim: int = 64,
    heads: int = 4,
    T: int = 4,
    img: int = 32,
    in_channels: int = 2,
    seed: int = 4,
) -> ZooModel:
    """The project's plain-PyTorch Spikformer (examples/spikformer); input [B, T, C, H, W]."""
    mod = load_example_spikformer()
    torch.manual_seed(seed)
    model = mod.Spikformer(
        T=T, in_channels=in_channels, img_size=img, dim=dim, heads=heads, depth=depth
    )
    rng = np.random.default_rng(seed)
    _calibrate_bn(model, [_spikes(rng, (4, T, in_channels, img, img))], seed)
    x = _spikes(rng, (1, T, in_channels, img, img))
    name = f"example_spikformer_d{depth}_{dim}_T{T}_{_tag(dynamo)}"
    kwargs = dict(depth=depth, dim=dim, heads=heads, T=T, img=img)
    return _finish(name, model, x, "BTCHW", T, tmp_dir, dynamo, _example_params, kwargs)


class _HqcLIFReference(nn.Module):
    """Torch equivalent of the hand-made ONNX (the LIF as in NeuronSpec.simulate)."""

    def __init__(self, conv: nn.Conv2d, spec: NeuronSpec, head: nn.Linear) -> None:
        super().__init__()
        self.conv = conv
        self.spec = spec
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B = x.shape[:2]
        y = self.conv(x.flatten(0, 1))
        y = y.reshape(T, B, *y.shape[1:])
        s = torch.from_numpy(self.spec.simulate(y.detach().numpy()))
        return self.head(s.mean(dim=(0, 3, 4)))


def hqc_lif_node(
    tmp_dir: Path,
    T: int = 4,
    tau: float = 2.0,
    v_threshold: float = 0.5,
    v_reset: float | None = 0.0,
    decay_input: bool = True,
    comparison: str = ">=",
    seed: int = 5,
) -> ZooModel:
    """Hand-made ONNX: Reshape -> Conv -> Reshape -> ai.hqc::LIF -> ReduceMean -> Gemm.

    Input X [T, 1, 2, 8, 8]; the LIF node carries the attributes tau, v_threshold,
    v_reset (absent = subtractive reset), decay_input, comparison, time_axis=0. onnxruntime
    cannot run it; ``expected_output`` comes from a torch equivalent.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    torch.manual_seed(seed)
    conv = nn.Conv2d(2, 8, 3, padding=1)
    head = nn.Linear(8, 10)
    with torch.no_grad():
        conv.weight.mul_(3.0)
        conv.bias.uniform_(0.0, 0.3)
    spec = NeuronSpec(
        name="lif",
        library="hqc",
        tau=tau,
        beta=1.0 - 1.0 / tau,
        v_threshold=v_threshold,
        reset="hard" if v_reset is not None else "subtract",
        v_reset=v_reset,
        decay_input=decay_input,
        comparison=comparison,  # type: ignore[arg-type]
        T=T,
    )
    ref = _HqcLIFReference(conv, spec, head).eval()
    rng = np.random.default_rng(seed)
    x = _spikes(rng, (T, 1, 2, 8, 8))

    lif_attrs: dict[str, Any] = dict(
        tau=float(tau),
        v_threshold=float(v_threshold),
        decay_input=int(decay_input),
        comparison=comparison,
        time_axis=0,
    )
    if v_reset is not None:
        lif_attrs["v_reset"] = float(v_reset)
    inits = [
        numpy_helper.from_array(np.array([T * 1, 2, 8, 8], np.int64), "shape_in"),
        numpy_helper.from_array(np.array([T, 1, 8, 8, 8], np.int64), "shape_seq"),
        numpy_helper.from_array(conv.weight.detach().numpy(), "conv.weight"),
        numpy_helper.from_array(conv.bias.detach().numpy(), "conv.bias"),
        numpy_helper.from_array(head.weight.detach().numpy(), "head.weight"),
        numpy_helper.from_array(head.bias.detach().numpy(), "head.bias"),
    ]
    nodes = [
        helper.make_node("Reshape", ["x", "shape_in"], ["x_flat"], name="flatten_tb"),
        helper.make_node(
            "Conv",
            ["x_flat", "conv.weight", "conv.bias"],
            ["conv_out"],
            name="conv",
            kernel_shape=[3, 3],
            pads=[1, 1, 1, 1],
        ),
        helper.make_node("Reshape", ["conv_out", "shape_seq"], ["lif_in"], name="unflatten_tb"),
        helper.make_node("LIF", ["lif_in"], ["spikes"], name="lif", domain=HQC_DOMAIN, **lif_attrs),
        helper.make_node(
            "ReduceMean", ["spikes"], ["pooled"], name="mean_t_hw", axes=[0, 3, 4], keepdims=0
        ),
        helper.make_node(
            "Gemm", ["pooled", "head.weight", "head.bias"], ["logits"], name="head", transB=1
        ),
    ]
    graph = helper.make_graph(
        nodes,
        "hqc_lif_node",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [T, 1, 2, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10])],
        initializer=inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[
            helper.make_opsetid("", TORCHSCRIPT_OPSET),
            helper.make_opsetid(HQC_DOMAIN, 1),
        ],
        producer_name="hqc-tests",
    )
    path = Path(tmp_dir) / "hqc_lif_node.onnx"
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    layers = [
        LayerSpec("conv", "conv2d", tuple(conv.weight.shape), True, 1),
        LayerSpec("head", "linear", tuple(head.weight.shape), True, 1),
    ]
    with torch.no_grad():
        y = conv(torch.from_numpy(x).flatten(0, 1)).reshape(T, 1, 8, 8, 8).numpy()
    spec = dataclasses.replace(spec, firing_rate=float(spec.simulate(y).mean()))
    return ZooModel(
        name="hqc_lif_node",
        onnx_path=path,
        module=ref,
        example_input=x,
        input_layout="TBCHW",
        T=T,
        layers=layers,
        neurons=[spec],
        dynamo=None,
        expected_output=_run(ref, x),
        runnable=False,
        kwargs=dict(T=T, tau=tau, v_threshold=v_threshold, v_reset=v_reset),
    )


# --------------------------------------------------------------------------- families

FIRING_RANGE = (0.05, 0.60)


def _import_sj_model(name: str) -> Any:
    """``spikingjelly.activation_based.model.<name>``, importable without torchvision.

    ``sew_resnet`` and ``spiking_vgg`` import torchvision's ``load_state_dict_from_url`` at
    module level, for ``pretrained=True`` only. When torchvision is missing, a stub module
    providing ``torch.hub.load_state_dict_from_url`` (what torchvision re-exports) stands in
    for the duration of the import and is removed after it.
    """
    import importlib
    import types

    full = f"spikingjelly.activation_based.model.{name}"
    if full in sys.modules or importlib.util.find_spec("torchvision") is not None:
        return importlib.import_module(full)
    pkg = types.ModuleType("torchvision")
    pkg.__path__ = []  # a package, so that the submodule import resolves
    sub = types.ModuleType("torchvision._internally_replaced_utils")
    sub.load_state_dict_from_url = torch.hub.load_state_dict_from_url  # type: ignore[attr-defined]
    stubs = {"torchvision": pkg, "torchvision._internally_replaced_utils": sub}
    sys.modules.update(stubs)
    try:
        return importlib.import_module(full)
    finally:
        for k in stubs:
            sys.modules.pop(k, None)


def _family_finish(
    name: str,
    model: nn.Module,
    calib: np.ndarray,
    x: np.ndarray,
    layout: str,
    T: int,
    tmp_dir: Path,
    dynamo: bool,
    neuron_params: Callable[[nn.Module], dict[str, Any] | None],
    kwargs: dict[str, Any],
    seed: int,
    output_layout: str = "BK",
) -> ZooModel:
    """Calibrate firing on ``calib``, export, and check every rate on ``x`` is in range."""
    actions = _calibrate_firing(model, calib, neuron_params, T, seed)
    zm = _finish(name, model, x, layout, T, tmp_dir, dynamo, neuron_params, kwargs, output_layout)
    zm.calibration = actions
    lo, hi = FIRING_RANGE
    bad = [(n.name, n.firing_rate) for n in zm.neurons if not lo <= (n.firing_rate or 0.0) <= hi]
    if bad:
        raise RuntimeError(f"{name}: firing rates outside [{lo}, {hi}] on the example: {bad}")
    return zm


def _sj_surrogate(model: nn.Module, surrogate: str | None, dynamo: bool) -> str:
    """Resolve ``surrogate`` as ``_resolve_surrogate`` and apply "user" to the model."""
    surrogate = _resolve_surrogate(surrogate, dynamo)
    if surrogate == "user":
        _set_user_surrogate(model)
    return surrogate


def sj_spike_driven_transformer(
    tmp_dir: Path,
    dynamo: bool = True,
    dim: int = 64,
    heads: int = 4,
    depth: int = 1,
    pooling_stat: str = "0011",
    T: int = 2,
    img: int = 32,
    in_channels: int = 2,
    surrogate: str | None = None,
    seed: int = 10,
) -> ZooModel:
    """SpikingJelly's ``SpikeDrivenTransformer`` (v1: 4-stage spiking patch embedding,
    SDSA with ``k * v`` summed over tokens, MLP ratio 4); input [T, B, C, H, W] spikes;
    output [B, 10]. ``pooling_stat`` "0011" (the paper's CIFAR setting) keeps 8x8 tokens at
    32x32; "1111" (ImageNet) would leave 2x2, too few for the attention neuron to fire.

    ``_calibrate_firing`` sets the own threshold of ``blocks.*.attn.attn_lif`` (fed by
    ``(k * v).sum(tokens)``, no BatchNorm before it; 0.5 -> 2.625 as catalogued); every
    other neuron keeps its threshold. surrogate as :func:`sj_spikformer`.
    """
    from spikingjelly.activation_based.model.spike_driven_transformer import (
        SpikeDrivenTransformer,
    )

    torch.manual_seed(seed)
    model = SpikeDrivenTransformer(
        T=T,
        in_channels=in_channels,
        num_classes=10,
        embed_dims=dim,
        num_heads=heads,
        depths=depth,
        pooling_stat=pooling_stat,
    )
    surrogate = _sj_surrogate(model, surrogate, dynamo)
    rng = np.random.default_rng(seed)
    calib = _spikes(rng, (T, 4, in_channels, img, img))
    x = _spikes(rng, (T, 1, in_channels, img, img))
    name = f"sj_sdt_d{depth}_{dim}_p{pooling_stat}_T{T}_{surrogate}_{_tag(dynamo)}"
    kwargs = dict(
        depth=depth,
        dim=dim,
        heads=heads,
        pooling_stat=pooling_stat,
        T=T,
        img=img,
        surrogate=surrogate,
    )
    return _family_finish(
        name, model, calib, x, "TBCHW", T, tmp_dir, dynamo, _sj_node_params, kwargs, seed
    )


def sj_qkformer(
    tmp_dir: Path,
    dynamo: bool = True,
    dim: int = 64,
    heads: tuple[int, int, int] = (1, 2, 4),
    depths: tuple[int, int, int] = (1, 1, 1),
    qka_type: str = "token",
    T: int = 2,
    img: int = 32,
    in_channels: int = 2,
    surrogate: str | None = None,
    seed: int = 11,
) -> ZooModel:
    """SpikingJelly's ``QKFormer`` (stage dims dim/4, dim/2, dim; Q-K token attention in
    stages 1-2, spiking self-attention in stage 3); input [T, B, C, H, W]; output [B, 10].

    ``_calibrate_firing`` may set the own thresholds of the ``attn.attn_lif`` neurons (fed
    by a sum of Q spikes, or by ``(v @ k^T) @ q`` of spikes, no BatchNorm before them): as
    catalogued, stage1's 0.5 -> 2.125 and stage2's 0.5 -> 3.875; stage3's and every other
    neuron keep their thresholds. surrogate as :func:`sj_spikformer`.
    """
    from spikingjelly.activation_based.model.qkformer import QKFormer

    torch.manual_seed(seed)
    model = QKFormer(
        T=T,
        in_channels=in_channels,
        num_classes=10,
        embed_dims=dim,
        num_heads=tuple(heads),
        depths=tuple(depths),
        qka_type=qka_type,
    )
    surrogate = _sj_surrogate(model, surrogate, dynamo)
    rng = np.random.default_rng(seed)
    calib = _spikes(rng, (T, 4, in_channels, img, img))
    x = _spikes(rng, (T, 1, in_channels, img, img))
    d = "".join(str(v) for v in depths)
    name = f"sj_qkformer_{qka_type}_d{d}_{dim}_T{T}_{surrogate}_{_tag(dynamo)}"
    kwargs = dict(
        dim=dim,
        heads=tuple(heads),
        depths=tuple(depths),
        qka_type=qka_type,
        T=T,
        img=img,
        surrogate=surrogate,
    )
    return _family_finish(
        name, model, calib, x, "TBCHW", T, tmp_dir, dynamo, _sj_node_params, kwargs, seed
    )


def sj_maxformer(
    tmp_dir: Path,
    dynamo: bool = True,
    cifar: bool = False,
    dim: int = 64,
    depths: tuple[int, int, int] = (1, 1, 1),
    T: int = 2,
    img: int = 32,
    in_channels: int = 2,
    surrogate: str | None = None,
    seed: int = 12,
) -> ZooModel:
    """SpikingJelly's ``MaxFormer``; input [T, B, C, H, W]; output [B, 10].

    cifar=False: ``_MaxEmbedInit`` (two stride-2 convs), 7x7/5x5 depthwise-conv blocks,
    SpikingSelfAttention in stage 3. cifar=True: ``_MaxCifarEmbed`` (no downsampling),
    a spatial MLP in stage 1, 3x3 depthwise convs, ``_MaxCifarSSA`` (8 heads,
    ``q @ (k^T @ v)``) in stage 3, bias-free embedding convs. ``_calibrate_firing`` may
    set a neuron's own threshold where no BatchNorm/bias knob is free: as catalogued,
    cifar=False changes ``stage3.0.attn.attn_lif`` (0.5 -> 0.203125; product of spikes)
    and ``stage3.0.mlp.lif1`` (1 -> 2.25; its residual input ``x + attn(x)`` has
    only knobs that already set earlier neurons); cifar=True changes none. surrogate as
    :func:`sj_spikformer`.
    """
    from spikingjelly.activation_based.model.maxformer import MaxFormer

    torch.manual_seed(seed)
    model = MaxFormer(
        T=T,
        in_channels=in_channels,
        num_classes=10,
        embed_dims=dim,
        depths=tuple(depths),
        cifar=cifar,
    )
    surrogate = _sj_surrogate(model, surrogate, dynamo)
    rng = np.random.default_rng(seed)
    calib = _spikes(rng, (T, 4, in_channels, img, img))
    x = _spikes(rng, (T, 1, in_channels, img, img))
    d = "".join(str(v) for v in depths)
    variant = "cifar" if cifar else "in"
    name = f"sj_maxformer_{variant}_d{d}_{dim}_T{T}_{surrogate}_{_tag(dynamo)}"
    kwargs = dict(cifar=cifar, dim=dim, depths=tuple(depths), T=T, img=img, surrogate=surrogate)
    return _family_finish(
        name, model, calib, x, "TBCHW", T, tmp_dir, dynamo, _sj_node_params, kwargs, seed
    )


def sj_ms_resnet(
    tmp_dir: Path,
    dynamo: bool = True,
    variant: str = "ms",
    widths: tuple[int, int, int] = (16, 32, 64),
    T: int = 2,
    img: int = 32,
    in_channels: int = 2,
    surrogate: str | None = None,
    seed: int = 13,
) -> ZooModel:
    """SpikingJelly's membrane-shortcut ResNets (``ms_resnet.py``), one block per stage,
    3x3 stem at stride 1; input [T, B, C, H, W]; output [B, 10] (mean over T of the head).

    variant "ms": ``MSResNet`` (LIF tau 4/3, v_threshold 0.5, decay_input False, its Rect
    surrogate: no custom op, so "default" exports with both exporters and is what None
    picks). variant "max": ``MaxResNet`` (LIF tau 2, max-pool transition blocks; SJ's
    Sigmoid custom op, so surrogate as :func:`sj_spikformer`). Every neuron has a BatchNorm
    upstream; thresholds stay as built unless ``ZooModel.calibration`` says otherwise.
    """
    from spikingjelly.activation_based.model.ms_resnet import MaxResNet, MSResNet

    if variant not in ("ms", "max"):
        raise ValueError(f"variant must be 'ms' or 'max', got {variant!r}")
    torch.manual_seed(seed)
    cls = MSResNet if variant == "ms" else MaxResNet
    model = cls(
        T=T,
        in_channels=in_channels,
        num_classes=10,
        layers=(1, 1, 1),
        base_channels=widths[0],
        stage_channels=tuple(widths),
        stem_kernel_size=3,
        stem_stride=1,
    )
    if variant == "ms" and surrogate is None:
        surrogate = "default"  # Rect runs the Torch loop: TorchScript exports it as is
    elif variant == "max" or surrogate == "user":
        surrogate = _sj_surrogate(model, surrogate, dynamo)
    if surrogate not in ("default", "user"):
        raise ValueError(f"surrogate must be 'default' or 'user', got {surrogate!r}")
    rng = np.random.default_rng(seed)
    calib = _spikes(rng, (T, 4, in_channels, img, img))
    x = _spikes(rng, (T, 1, in_channels, img, img))
    w = "_".join(str(v) for v in widths)
    name = f"sj_{variant}_resnet_{w}_T{T}_{surrogate}_{_tag(dynamo)}"
    kwargs = dict(variant=variant, widths=tuple(widths), T=T, img=img, surrogate=surrogate)
    return _family_finish(
        name, model, calib, x, "TBCHW", T, tmp_dir, dynamo, _sj_node_params, kwargs, seed
    )


def sj_sew_resnet(
    tmp_dir: Path,
    dynamo: bool = True,
    cnf: str = "ADD",
    T: int = 2,
    img: int = 32,
    in_channels: int = 2,
    surrogate: str | None = None,
    seed: int = 14,
) -> ZooModel:
    """SpikingJelly's ``SEWResNet`` with ``BasicBlock`` x [1, 1, 1, 1] (resnet18's block at
    one per stage; the class fixes the widths 64-512 and 3 input channels), IFNode
    neurons (detach_reset, ATan) as in the SEW paper, connection ``cnf``; multi-step;
    input [T, B, C, H, W]; output [T, B, 10] (the class does not average over T).

    in_channels != 3 replaces the stem ``conv1`` with the same layer.Conv2d (7x7, stride 2,
    no bias, kaiming init as the class) on ``in_channels``. surrogate as
    :func:`sj_spikformer`. Every neuron has a BatchNorm upstream.
    """
    from spikingjelly.activation_based import functional, layer, neuron
    from spikingjelly.activation_based import surrogate as sg

    sew = _import_sj_model("sew_resnet")
    torch.manual_seed(seed)
    model = sew.SEWResNet(
        sew.BasicBlock,
        [1, 1, 1, 1],
        num_classes=10,
        cnf=cnf,
        spiking_neuron=neuron.IFNode,
        detach_reset=True,
        surrogate_function=sg.ATan(),
    )
    if in_channels != 3:
        model.conv1 = layer.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
    functional.set_step_mode(model, "m")
    surrogate = _sj_surrogate(model, surrogate, dynamo)
    rng = np.random.default_rng(seed)
    calib = _spikes(rng, (T, 4, in_channels, img, img))
    x = _spikes(rng, (T, 1, in_channels, img, img))
    name = f"sj_sew_resnet_{cnf.lower()}_T{T}_{surrogate}_{_tag(dynamo)}"
    kwargs = dict(cnf=cnf, T=T, img=img, in_channels=in_channels, surrogate=surrogate)
    return _family_finish(
        name, model, calib, x, "TBCHW", T, tmp_dir, dynamo, _sj_node_params, kwargs, seed, "TBK"
    )


def _small_spiking_vgg(
    cfg: list[int | str],
    hidden: int,
    pool: int,
    in_channels: int,
    num_classes: int,
    spiking_neuron: Callable[..., nn.Module],
    **neuron_kwargs: Any,
) -> nn.Module:
    """SpikingJelly's ``SpikingVGG`` (its ``make_layers``, ``forward`` and init) at small
    widths: ``cfg`` features with BatchNorm, AdaptiveAvgPool2d to ``pool`` x ``pool``, and
    the class's classifier (Linear, neuron, Dropout, Linear, neuron, Dropout, Linear) with
    ``hidden`` units instead of 512*7*7 -> 4096 -> 4096; first conv on ``in_channels``.
    """
    from spikingjelly.activation_based import layer

    vgg = _import_sj_model("spiking_vgg")

    class SmallSpikingVGG(vgg.SpikingVGG):
        def __init__(self) -> None:
            nn.Module.__init__(self)
            self.features = self.make_layers(
                cfg=cfg, batch_norm=True, neuron=spiking_neuron, **neuron_kwargs
            )
            self.features[0] = layer.Conv2d(in_channels, int(cfg[0]), kernel_size=3, padding=1)
            width = [v for v in cfg if v != "M"][-1]
            self.avgpool = layer.AdaptiveAvgPool2d((pool, pool))
            self.classifier = nn.Sequential(
                layer.Linear(int(width) * pool * pool, hidden),
                spiking_neuron(**neuron_kwargs),
                layer.Dropout(),
                layer.Linear(hidden, hidden),
                spiking_neuron(**neuron_kwargs),
                layer.Dropout(),
                layer.Linear(hidden, num_classes),
            )
            self._initialize_weights()

    return SmallSpikingVGG()


def sj_spiking_vgg(
    tmp_dir: Path,
    dynamo: bool = True,
    cfg: tuple[int | str, ...] = (16, "M", 32, "M", 64, "M"),
    hidden: int = 64,
    pool: int = 2,
    T: int = 2,
    img: int = 32,
    in_channels: int = 2,
    surrogate: str | None = None,
    seed: int = 15,
) -> ZooModel:
    """SpikingJelly's ``SpikingVGG`` with BatchNorm at small widths (see
    ``_small_spiking_vgg``), ParametricLIFNode neurons (detach_reset; each w set to a
    seeded trained-like value, tau in [1.5, 3]); multi-step; input [T, B, C, H, W];
    output [T, B, 10]. Every neuron has a BatchNorm or a biased Linear upstream.
    surrogate as :func:`sj_spikformer`.
    """
    from spikingjelly.activation_based import functional, neuron

    torch.manual_seed(seed)
    model = _small_spiking_vgg(
        list(cfg),
        hidden,
        pool,
        in_channels,
        10,
        neuron.ParametricLIFNode,
        init_tau=2.0,
        detach_reset=True,
    )
    functional.set_step_mode(model, "m")
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, neuron.ParametricLIFNode):
                tau = 1.5 + 1.5 * float(torch.rand((), generator=g))
                m.w.fill_(-float(np.log(tau - 1.0)))
    surrogate = _sj_surrogate(model, surrogate, dynamo)
    rng = np.random.default_rng(seed)
    calib = _spikes(rng, (T, 4, in_channels, img, img))
    x = _spikes(rng, (T, 1, in_channels, img, img))
    c = "_".join(str(v) for v in cfg)
    name = f"sj_spiking_vgg_{c}_T{T}_{surrogate}_{_tag(dynamo)}"
    kwargs = dict(cfg=tuple(cfg), hidden=hidden, pool=pool, T=T, img=img, surrogate=surrogate)
    return _family_finish(
        name, model, calib, x, "TBCHW", T, tmp_dir, dynamo, _sj_node_params, kwargs, seed, "TBK"
    )


class LeakyMemConvNet(LeakyConvNet):
    """snnTorch's usual readout: the same net as LeakyConvNet, logits = mean over T of the
    output Leaky's membrane (its spikes only drive its own reset)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mem1 = self.lif1.init_leaky()
        mem2 = self.lif2.init_leaky()
        mem3 = self.lif3.init_leaky()
        mem_rec = []
        for t in range(x.shape[0]):
            spk1, mem1 = self.lif1(self.conv1(x[t]), mem1)
            spk2, mem2 = self.lif2(self.conv2(spk1), mem2)
            _, mem3 = self.lif3(self.fc(spk2.flatten(1)), mem3)
            mem_rec.append(mem3)
        return torch.stack(mem_rec).mean(0)


def snn_leaky_mem_convnet(
    tmp_dir: Path,
    dynamo: bool = True,
    reset: str = "subtract",
    beta: float | None = None,
    threshold: float = 1.0,
    T: int = 2,
    seed: int = 16,
) -> ZooModel:
    """snnTorch Leaky conv net with membrane readout (``LeakyMemConvNet``); input
    [T, B, 2, 16, 16] event counts; output [B, 10] = mean over T of the output membrane.

    beta defaults to 0.5 for reset="subtract" and 0.9 for reset="zero". Firing is
    calibrated through the conv/fc biases; thresholds stay as given.
    """
    if reset not in ("subtract", "zero"):
        raise ValueError(f"reset must be 'subtract' or 'zero', got {reset!r}")
    if beta is None:
        beta = 0.5 if reset == "subtract" else 0.9
    torch.manual_seed(seed)
    model = LeakyMemConvNet(beta=beta, reset=reset, threshold=threshold)
    with torch.no_grad():  # a wider spread of pre-activations than the default init
        for m in (model.conv1, model.conv2, model.fc):
            m.weight.mul_(2.0 * threshold)
    rng = np.random.default_rng(seed)
    calib = _counts(rng, (T, 4, 2, 16, 16))
    x = _counts(rng, (T, 1, 2, 16, 16))
    thr = "" if threshold == 1.0 else "_thr" + str(threshold).replace(".", "p")
    name = f"snn_leaky_mem_convnet_{reset}{thr}_T{T}_{_tag(dynamo)}"
    kwargs = dict(reset=reset, beta=beta, threshold=threshold, T=T)
    return _family_finish(
        name, model, calib, x, "TBCHW", T, tmp_dir, dynamo, _leaky_params, kwargs, seed
    )


# --------------------------------------------------------------------------- catalogue

Builder = Callable[..., ZooModel]


def all_models() -> list[tuple[Builder, dict[str, Any]]]:
    """(builder, kwargs) for every exported model x exporter (not the hand-made ONNX).

    Call as ``builder(tmp_dir, **kwargs)``.
    """
    out: list[tuple[Builder, dict[str, Any]]] = []
    for dynamo in (True, False):
        out.append((sj_spikformer, dict(dynamo=dynamo)))
        out.append((sj_lif_convnet, dict(dynamo=dynamo, v_threshold=1.0)))
        out.append((sj_lif_convnet, dict(dynamo=dynamo, v_threshold=0.5, surrogate="user")))
        out.append(
            (
                sj_lif_convnet,
                dict(dynamo=dynamo, v_threshold=0.75, v_reset=None, decay_input=False),
            )
        )
        out.append((snn_leaky_convnet, dict(dynamo=dynamo, reset="subtract")))
        out.append((snn_leaky_convnet, dict(dynamo=dynamo, reset="zero")))
        out.append((snn_leaky_convnet, dict(dynamo=dynamo, reset="subtract", threshold=0.5)))
        out.append((handwritten_lif, dict(dynamo=dynamo)))
        out.append((example_spikformer, dict(dynamo=dynamo)))
    return out


def family_models() -> list[tuple[Builder, dict[str, Any]]]:
    """(builder, kwargs) for every model family x exporter, firing-calibrated (T = 2).

    The libraries' own zoo classes (SpikingJelly's Spikformer, Spike-driven Transformer,
    QKFormer, MaxFormer and its CIFAR variant, MS-ResNet, SEW-ResNet, SpikingVGG; snnTorch
    Leaky nets with membrane readout) at small widths, every neuron firing on 5-60 % of its
    elements on the example input. ``sj_ms_resnet(variant="max")`` (MaxResNet) builds too
    but is left out: it adds little over MS-ResNet and SDT and costs ~5 s of export.
    Call as ``builder(tmp_dir, **kwargs)``.
    """
    out: list[tuple[Builder, dict[str, Any]]] = []
    for dynamo in (True, False):
        out.append((sj_spikformer, dict(dynamo=dynamo, T=2, calibration="firing")))
        out.append((sj_spike_driven_transformer, dict(dynamo=dynamo)))
        out.append((sj_qkformer, dict(dynamo=dynamo)))
        out.append((sj_maxformer, dict(dynamo=dynamo, cifar=False)))
        out.append((sj_maxformer, dict(dynamo=dynamo, cifar=True)))
        out.append((sj_ms_resnet, dict(dynamo=dynamo, variant="ms")))
        out.append((sj_sew_resnet, dict(dynamo=dynamo)))
        out.append((sj_spiking_vgg, dict(dynamo=dynamo)))
        out.append((snn_leaky_mem_convnet, dict(dynamo=dynamo, reset="subtract")))
        out.append((snn_leaky_mem_convnet, dict(dynamo=dynamo, reset="zero")))
    return out


def model_id(builder: Builder, kwargs: dict[str, Any]) -> str:
    """A short stable id for a (builder, kwargs) pair, e.g. for pytest parametrize ids."""
    parts = [builder.__name__]
    for k, v in sorted(kwargs.items()):
        if k == "dynamo":
            continue
        parts.append(f"{k}={v}")
    parts.append("dynamo" if kwargs.get("dynamo", True) else "ts")
    return "-".join(parts)
