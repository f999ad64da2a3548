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
"""

from __future__ import annotations

import contextlib
import dataclasses
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

REPO = Path(__file__).resolve().parents[1]
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
    for f in (_hand_params, _example_params, _sj_lif_params, _leaky_params):
        p = f(m)
        if p is not None:
            return p
    return None


# --------------------------------------------------------------------------- builders


def _set_user_surrogate(model: nn.Module) -> None:
    _, _, neuron = _sj()
    for m in model.modules():
        if isinstance(m, neuron.LIFNode):
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
) -> ZooModel:
    """SpikingJelly 2.0's own Spikformer (patch 4; input [T, B, C, H, W]; output [T, B, 10]).

    surrogate: "default" (SJ Sigmoid, custom op, dynamo only) or "user" (UserSurrogate set
    on every LIFNode, keeping each position's tau/threshold/detach_reset); None picks
    "default" for dynamo and "user" for TorchScript.
    """
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
    _calibrate_bn(model, [_spikes(rng, (T, 4, in_channels, img, img))], seed)
    x = _spikes(rng, shape)
    name = f"sj_spikformer_d{depth}_{dim}_T{T}_{surrogate}_{_tag(dynamo)}"
    kwargs = dict(depth=depth, dim=dim, heads=heads, T=T, img=img, surrogate=surrogate)
    return _finish(
        name, model, x, "TBCHW", T, tmp_dir, dynamo, _sj_lif_params, kwargs, output_layout="TBK"
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


def model_id(builder: Builder, kwargs: dict[str, Any]) -> str:
    """A short stable id for a (builder, kwargs) pair, e.g. for pytest parametrize ids."""
    parts = [builder.__name__]
    for k, v in sorted(kwargs.items()):
        if k == "dynamo":
            continue
        parts.append(f"{k}={v}")
    parts.append("dynamo" if kwargs.get("dynamo", True) else "ts")
    return "-".join(parts)
