"""PyTorch backend: IR → an executable, trainable `torch.nn.Module`.

The module interprets the IR in topological order. Conv/Gemm/MatMul weights and biases
are `nn.Parameter`s (named after their ONNX initializers, '.' written as '__'); other
constants are buffers. LIF nodes run the semantics of `hqc.lif` exactly in eval mode, and
in training mode add a sigmoid surrogate gradient (straight-through: the forward value
stays the Heaviside step).

Batch size: exporters bake the export batch B0 into Reshape targets and initial
membranes, so the graph is run per group of B0 samples and `torch.vmap` maps it over the
groups — any batch size works with the export-time shapes. The data layout is
(N, T, ...); `input_layout` says where the model's input keeps batch and time (e.g.
"BT..." or "TB..."), found from the graph when not given. BatchNorm runs with its
running statistics (frozen) in training too.

A weight transform per weight constant (`set_weight_transform`) lets the quantizers and
the search rewrite a layer's weight before use without touching the interpreter.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from onnx import helper
from torch import nn

from hqc.errors import DataError, ModelError
from hqc.ir import Graph
from hqc.layout import detect_layout
from hqc.lif import LIFParams

SURROGATE_ALPHA = 4.0
WEIGHT_OPS = {"Conv": (1, 2), "Gemm": (1, 2), "MatMul": (0, 1)}  # MatMul: W·x or x·W

_TORCH_DTYPES = {
    "float32": torch.float32,
    "float64": torch.float64,
    "float16": torch.float16,
    "int64": torch.int64,
    "int32": torch.int32,
    "int8": torch.int8,
    "uint8": torch.uint8,
    "bool": torch.bool,
}


def _tdtype(onnx_type: int) -> torch.dtype:
    return _TORCH_DTYPES[str(np.dtype(helper.tensor_dtype_to_np_dtype(onnx_type)))]


def _ints(x: Any) -> list[int]:
    if isinstance(x, torch.Tensor):
        return [int(v) for v in x.reshape(-1).tolist()]
    return [int(v) for v in np.asarray(x).reshape(-1)]


def spike_fn(m: torch.Tensor, strict: bool, training: bool) -> torch.Tensor:
    """Heaviside(m) forward; sigmoid-derivative surrogate gradient when training."""
    s = (m > 0) if strict else (m >= 0)
    s = s.to(m.dtype)
    # Not `m.requires_grad`: under torch.vmap (how forward runs) it reads False even when
    # m depends on parameters, which silently cut every gradient at the first LIF.
    if training:
        sg = torch.sigmoid(SURROGATE_ALPHA * m)
        s = s + (sg - sg.detach())
    return s


def lif_torch(
    x: torch.Tensor, p: LIFParams, training: bool, membrane: bool = False
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """`hqc.lif` in torch: spikes, or (spikes, membrane h before each step's reset)."""
    xt = x.movedim(p.time_axis, 0)
    v = torch.full_like(xt[0], p.v_init)
    vr = p.v_reset if p.v_reset is not None else 0.0
    out, mem = [], []
    for t in range(xt.shape[0]):
        xs = xt[t]
        if math.isfinite(p.tau):
            h = v + (xs - (v - vr)) / p.tau if p.decay_input else v - (v - vr) / p.tau + xs
        else:
            h = v + xs
        s = spike_fn(h - p.v_threshold, p.comparison == ">", training)
        if p.v_reset is not None:
            v = h * (1.0 - s) + p.v_reset * s if training else torch.where(s > 0, torch.full_like(h, p.v_reset), h)
        else:
            v = h - s * (p.reset_by if p.reset_by is not None else p.v_threshold)
        out.append(s)
        mem.append(h)
    spikes = torch.stack(out).movedim(0, p.time_axis)
    return (spikes, torch.stack(mem).movedim(0, p.time_axis)) if membrane else spikes


def _conv(n, a, m):
    x, w = a[0], a[1]
    b = a[2] if len(a) > 2 else None
    nd = w.dim() - 2
    if n.attrs.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
        raise ModelError(f"node {n.name!r}: Conv auto_pad={n.attrs['auto_pad']} is not supported")
    pads = n.attrs.get("pads", [0] * (2 * nd))
    strides = n.attrs.get("strides", [1] * nd)
    dil = n.attrs.get("dilations", [1] * nd)
    group = n.attrs.get("group", 1)
    if list(pads[:nd]) != list(pads[nd:]):
        x = F.pad(x, [p for i in reversed(range(nd)) for p in (pads[i], pads[i + nd])])
        pads = [0] * (2 * nd)
    fn = F.conv1d if nd == 1 else F.conv2d
    return fn(x, w, b, stride=strides, padding=list(pads[:nd]), dilation=dil, groups=group)


def _gemm(n, a, m):
    x, w = a[0], a[1]
    if n.attrs.get("transA", 0):
        x = x.transpose(-1, -2)
    if n.attrs.get("transB", 0):
        w = w.transpose(-1, -2)
    y = n.attrs.get("alpha", 1.0) * (x @ w)
    if len(a) > 2 and a[2] is not None:
        y = y + n.attrs.get("beta", 1.0) * a[2]
    return y


def _pool(n, a, m, kind):
    x = a[0]
    k = n.attrs["kernel_shape"]
    nd = len(k)
    strides = n.attrs.get("strides", [1] * nd)
    pads = n.attrs.get("pads", [0] * (2 * nd))
    ceil = bool(n.attrs.get("ceil_mode", 0))
    if list(pads[:nd]) != list(pads[nd:]):
        raise ModelError(f"node {n.name!r}: asymmetric pooling pads are not supported")
    if kind == "max":
        fn = F.max_pool1d if nd == 1 else F.max_pool2d
        return fn(x, k, strides, list(pads[:nd]), n.attrs.get("dilations", [1] * nd), ceil_mode=ceil)
    fn = F.avg_pool1d if nd == 1 else F.avg_pool2d
    return fn(x, k, strides, list(pads[:nd]), ceil_mode=ceil, count_include_pad=bool(n.attrs.get("count_include_pad", 0)))


def _reshape(n, a, m):
    shape = _ints(a[1])
    if not n.attrs.get("allowzero", 0):
        shape = [a[0].shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return a[0].reshape(shape)


def _axes(n, a, i=1):
    if len(a) > i and a[i] is not None:
        return _ints(a[i])
    ax = n.attrs.get("axes")
    return None if ax is None else list(ax)


def _unsqueeze(n, a, m):
    x = a[0]
    axes = _axes(n, a)
    rank = x.dim() + len(axes)
    for ax in sorted(v % rank for v in axes):
        x = x.unsqueeze(ax)
    return x


def _squeeze(n, a, m):
    x = a[0]
    axes = _axes(n, a)
    if axes is None:
        return x.squeeze()
    for ax in sorted((v % x.dim() for v in axes), reverse=True):
        x = x.squeeze(ax)
    return x


def _slice(n, a, m):
    x = a[0]
    starts, ends = _ints(a[1]), _ints(a[2])
    axes = _ints(a[3]) if len(a) > 3 and a[3] is not None else list(range(len(starts)))
    steps = _ints(a[4]) if len(a) > 4 and a[4] is not None else [1] * len(starts)
    idx: list[Any] = [slice(None)] * x.dim()
    for s, e, ax, st in zip(starts, ends, axes, steps, strict=True):
        d = x.shape[ax % x.dim()]
        if st < 0:  # ONNX: start clamped to [0, d-1], end to [-1, d-1]; torch slices forward only
            s = max(0, min(d - 1, s + d if s < 0 else s))
            e = max(-1, min(d - 1, e + d if e < 0 else e))
            sel = torch.arange(s, e, st, device=x.device)
            x = x.index_select(ax % x.dim(), sel)
            continue
        s = max(0, min(d, s + d if s < 0 else s))
        e = max(0, min(d, e + d if e < 0 else e))
        idx[ax % x.dim()] = slice(s, e, st)
    return x[tuple(idx)]


def _pad(n, a, m):
    """ONNX Pad (opset ≥ 11 input form; constant, edge, reflect, wrap)."""
    x = a[0]
    pads = _ints(a[1])
    value = float(a[2].reshape(-1)[0]) if len(a) > 2 and a[2] is not None and a[2].numel() else 0.0
    axes = [v % x.dim() for v in _ints(a[3])] if len(a) > 3 and a[3] is not None else list(range(x.dim()))
    r = len(axes)
    width = {ax: (pads[i], pads[i + r]) for i, ax in enumerate(axes)}
    mode = n.attrs.get("mode", "constant")
    if isinstance(mode, bytes):
        mode = mode.decode()
    flat = [p for d in reversed(range(x.dim())) for p in width.get(d, (0, 0))]
    if mode == "constant":
        return F.pad(x, flat, mode="constant", value=value)
    if mode not in ("edge", "reflect", "wrap"):
        raise ModelError(f"node {n.name!r}: Pad mode {mode!r} is not supported")
    if any(p < 0 for p in flat):
        raise ModelError(f"node {n.name!r}: negative pads in {mode} mode are not supported")
    tmode = {"edge": "replicate", "reflect": "reflect", "wrap": "circular"}[mode]
    for d, (lo, hi) in sorted(width.items()):  # one axis at a time: torch pads the last dims only
        if lo == hi == 0:
            continue
        y = x.movedim(d, -1)
        shp = y.shape
        y = F.pad(y.reshape(1, -1, shp[-1]), (lo, hi), mode=tmode)
        x = y.reshape(*shp[:-1], y.shape[-1]).movedim(-1, d)
    return x


def _split(n, a, m):
    x = a[0]
    axis = n.attrs.get("axis", 0) % x.dim()
    if len(a) > 1 and a[1] is not None:
        sizes = _ints(a[1])
    elif "split" in n.attrs:
        sizes = list(n.attrs["split"])
    else:
        k = len(n.outputs)
        step = -(-x.shape[axis] // k)
        sizes = [min(step, x.shape[axis] - i * step) for i in range(k)]
    return tuple(torch.split(x, sizes, dim=axis))


def _gather(n, a, m):
    x, idx = a[0], a[1]
    axis = n.attrs.get("axis", 0) % x.dim()
    if idx.dim() == 0:
        return x.select(axis, int(idx) % x.shape[axis])
    flat = torch.remainder(idx.reshape(-1).long(), x.shape[axis])
    out = x.index_select(axis, flat)
    return out.reshape(list(x.shape[:axis]) + list(idx.shape) + list(x.shape[axis + 1 :]))


def _reduce(fn):
    def impl(n, a, m):
        x = a[0]
        axes = _axes(n, a)
        keep = bool(n.attrs.get("keepdims", 1))
        if not axes:
            if n.attrs.get("noop_with_empty_axes", 0):
                return x
            axes = list(range(x.dim()))
        return fn(x, dim=[v % x.dim() for v in axes], keepdim=keep)

    return impl


def _bn(n, a, m):
    x, scale, bias, mean, var = a[:5]
    shape = [1, -1] + [1] * (x.dim() - 2)
    eps = n.attrs.get("epsilon", 1e-5)
    return (x - mean.reshape(shape)) / torch.sqrt(var.reshape(shape) + eps) * scale.reshape(shape) + bias.reshape(shape)


def _cast(n, a, m):
    return a[0].to(_tdtype(n.attrs["to"]))


def _lif(n, a, m):
    membrane = len(n.outputs) > 1 and bool(n.outputs[1])
    return lif_torch(a[0], LIFParams.from_attrs(n.attrs), m.training, membrane)


def _where(n, a, m):
    return torch.where(a[0].bool(), a[1], a[2])


def _layernorm(n, a, m):
    x = a[0]
    axis = n.attrs.get("axis", -1) % x.dim()
    shape = list(x.shape[axis:])
    b = a[2] if len(a) > 2 else None
    return F.layer_norm(x, shape, a[1], b, n.attrs.get("epsilon", 1e-5))


def _clip(n, a, m):
    lo = a[1] if len(a) > 1 and a[1] is not None else None
    hi = a[2] if len(a) > 2 and a[2] is not None else None
    return torch.clamp(a[0], lo, hi)


def _expand(n, a, m):
    shape = _ints(a[1])
    out = torch.broadcast_shapes(tuple(a[0].shape), tuple(shape))
    return a[0].expand(out)


def _concat(n, a, m):
    return torch.cat([x for x in a if x is not None and x.numel() > 0] or [a[0]], dim=n.attrs["axis"])


def _div(n, a, m):
    x, y = a
    if not x.is_floating_point():
        return torch.div(x, y, rounding_mode="trunc")
    return x / y


OPS: dict[str, Callable] = {
    "Conv": _conv,
    "Gemm": _gemm,
    "MatMul": lambda n, a, m: torch.matmul(a[0], a[1]),
    "Add": lambda n, a, m: a[0] + a[1],
    "Sub": lambda n, a, m: a[0] - a[1],
    "Mul": lambda n, a, m: a[0] * a[1],
    "Div": _div,
    "Pow": lambda n, a, m: torch.pow(a[0], a[1]),
    "Mod": lambda n, a, m: torch.fmod(a[0], a[1]) if n.attrs.get("fmod", 0) else torch.remainder(a[0], a[1]),
    "Neg": lambda n, a, m: -a[0],
    "Abs": lambda n, a, m: torch.abs(a[0]),
    "Sqrt": lambda n, a, m: torch.sqrt(a[0]),
    "Exp": lambda n, a, m: torch.exp(a[0]),
    "Erf": lambda n, a, m: torch.erf(a[0]),
    "Sign": lambda n, a, m: torch.sign(a[0]),
    "Relu": lambda n, a, m: torch.relu(a[0]),
    "Sigmoid": lambda n, a, m: torch.sigmoid(a[0]),
    "Tanh": lambda n, a, m: torch.tanh(a[0]),
    "Softmax": lambda n, a, m: torch.softmax(a[0], dim=n.attrs.get("axis", -1)),
    "Max": lambda n, a, m: torch.stack(torch.broadcast_tensors(*a)).amax(0),
    "Min": lambda n, a, m: torch.stack(torch.broadcast_tensors(*a)).amin(0),
    "Clip": _clip,
    "Greater": lambda n, a, m: a[0] > a[1],
    "GreaterOrEqual": lambda n, a, m: a[0] >= a[1],
    "Less": lambda n, a, m: a[0] < a[1],
    "LessOrEqual": lambda n, a, m: a[0] <= a[1],
    "Equal": lambda n, a, m: a[0] == a[1],
    "Not": lambda n, a, m: torch.logical_not(a[0]),
    "And": lambda n, a, m: torch.logical_and(a[0], a[1]),
    "Or": lambda n, a, m: torch.logical_or(a[0], a[1]),
    "Xor": lambda n, a, m: torch.logical_xor(a[0], a[1]),
    "Cast": _cast,
    "Where": _where,
    "Identity": lambda n, a, m: a[0],
    "Dropout": lambda n, a, m: a[0],
    "Reshape": _reshape,
    "Flatten": lambda n, a, m: a[0].reshape(
        math.prod(a[0].shape[: n.attrs.get("axis", 1) % max(a[0].dim(), 1)]), -1
    ),
    "Transpose": lambda n, a, m: a[0].permute(n.attrs.get("perm", list(reversed(range(a[0].dim()))))),
    "Squeeze": _squeeze,
    "Unsqueeze": _unsqueeze,
    "Concat": _concat,
    "Slice": _slice,
    "Pad": _pad,
    "Split": _split,
    "Gather": _gather,
    "Expand": _expand,
    "Tile": lambda n, a, m: a[0].repeat(_ints(a[1])),
    "BatchNormalization": _bn,
    "MaxPool": lambda n, a, m: _pool(n, a, m, "max"),
    "AveragePool": lambda n, a, m: _pool(n, a, m, "avg"),
    "GlobalAveragePool": lambda n, a, m: a[0].mean(dim=list(range(2, a[0].dim())), keepdim=True),
    "ReduceMean": _reduce(torch.mean),
    "ReduceSum": _reduce(torch.sum),
    "ReduceMax": _reduce(torch.amax),
    "LayerNormalization": _layernorm,
    "LIF": _lif,
}


def _key(name: str) -> str:
    return name.replace(".", "__") or "_"


class TorchModel(nn.Module):
    """Executable form of an IR graph; see the module docstring."""

    def __init__(self, graph: Graph, input_layout: str | None = None) -> None:
        super().__init__()
        if len(graph.inputs) != 1:
            raise ModelError(f"the model has {len(graph.inputs)} inputs; hqc supports models with one input")
        unsupported = sorted({n.op for n in graph.nodes() if n.op not in OPS})
        if unsupported:
            raise ModelError(f"the PyTorch backend has no implementation of {', '.join(unsupported)}")
        self.graph = graph
        self.input_name = graph.inputs[0]
        self.input_shape = tuple(int(d) for d in graph.shape(self.input_name))  # type: ignore[union-attr]
        self.layout = (input_layout or detect_layout(graph)).upper().replace("CHW", "").replace("...", "")
        if self.layout not in ("BT", "TB", "B"):
            raise ModelError(f"input layout {input_layout!r} is not one of BT..., TB..., B...")
        self.export_batch = self.input_shape[self.layout.index("B")]
        self.weight_names: list[str] = []
        params = nn.ParameterDict()
        weights = set()
        for n in graph.nodes():
            for slot in WEIGHT_OPS.get(n.op, ()):
                if slot < len(n.inputs) and graph.is_const(n.inputs[slot]):
                    weights.add(n.inputs[slot])
        for name in sorted(weights):
            params[_key(name)] = nn.Parameter(torch.from_numpy(np.array(graph.constants[name], np.float32)))
            self.weight_names.append(name)
        self.params = params
        self._bufs: dict[str, str] = {}
        for i, name in enumerate(sorted(set(graph.constants) - weights)):
            arr = np.array(graph.constants[name])
            self.register_buffer(f"c{i}", torch.from_numpy(arr) if arr.dtype != object else None, persistent=False)
            self._bufs[name] = f"c{i}"
        self.transforms: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {}
        self.output_batch_axis = [self._batch_axis_of(o) for o in graph.outputs]
        self.plan = [(graph.node(nid), OPS[graph.node(nid).op]) for nid in graph.topo_order()]
        self.outputs = list(graph.outputs)

    def _batch_axis_of(self, tensor: str) -> int:
        """Batch axis of a graph output: 1 for a time-major (T, B, …) output of a TB model."""
        from hqc.layout import per_step_output

        return 1 if per_step_output(self.graph, tensor, self.layout) else 0

    def parameter(self, const_name: str) -> nn.Parameter:
        return self.params[_key(const_name)]

    def set_weight_transform(self, const_name: str, fn: Callable[[torch.Tensor], torch.Tensor] | None) -> None:
        """Use fn(weight) instead of the weight (None removes the transform)."""
        if fn is None:
            self.transforms.pop(const_name, None)
        else:
            self.transforms[const_name] = fn

    def _const(self, name: str) -> torch.Tensor:
        if name in self._bufs:
            return getattr(self, self._bufs[name])
        w = self.params[_key(name)]
        fn = self.transforms.get(name)
        return fn(w) if fn is not None else w

    def run_group(self, x: torch.Tensor, names: list[str] | None = None) -> list[torch.Tensor]:
        """Run the graph on one export-shaped input; returns the named tensors (default:
        the graph outputs)."""
        env: dict[str, torch.Tensor] = {self.input_name: x}
        for node, fn in self.plan:
            args = []
            for t in node.inputs:
                if not t:
                    args.append(None)
                elif t in env:
                    args.append(env[t])
                else:
                    args.append(self._const(t))
            out = fn(node, args, self)
            if isinstance(out, tuple):
                for t, v in zip(node.outputs, out, strict=False):
                    env[t] = v
            else:
                env[node.outputs[0]] = out
        return [env[o] if o in env else self._const(o) for o in (names or self.outputs)]

    def to_model_layout(self, x: torch.Tensor) -> torch.Tensor:
        """(G, B0, T, ...) groups of data → (G, *model_input_shape)."""
        if self.layout == "TB":
            x = x.transpose(1, 2)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: data (N, T, ...) in the data layout; returns the class scores (N, K): the
        first output, averaged over T when it holds one result per time step."""
        return self.scores(self.forward_all(x)[0])

    def scores(self, out: torch.Tensor, grouped: bool = False) -> torch.Tensor:
        """Class scores from the first output: (N, …) from `forward_all`, or with `grouped`
        the per-group form (G, *export shape) → (G·B0, K). A per-step output (time first)
        is averaged over T (hqc.layout.per_step_output)."""
        step = self.output_batch_axis[0] == 1
        if grouped:
            out = out.mean(1) if step else out
            return out.reshape(-1, out.shape[-1])
        return out.mean(1) if step else out

    def forward_all(self, x: torch.Tensor, names: list[str] | None = None) -> list[torch.Tensor]:
        """Run data (N, T, ...). Default: the graph outputs, batch first (N, ...); a
        time-major output (T, B, …) of a TB model comes back as (N, T, …). With `names`:
        those tensors per group, (G, *export-time shape), G = ceil(N / B0)."""
        per_sample = list(self.input_shape)
        per_sample.pop(self.layout.index("B"))
        if list(x.shape[1:]) != per_sample:
            raise DataError(f"data samples have shape {list(x.shape[1:])}; the model expects {per_sample} per sample")
        n = x.shape[0]
        b0 = self.export_batch
        pad = (-n) % b0
        if pad:
            x = torch.cat([x, x[:1].expand(pad, *x.shape[1:])])
        g = x.reshape(-1, b0, *x.shape[1:])
        g = self.to_model_layout(g)
        outs = torch.vmap(lambda s: tuple(self.run_group(s, names)), randomness="same")(g)
        if names is not None:
            return list(outs)  # per group: (G, *shape at the export batch)
        result = []
        for o, ax in zip(outs, self.output_batch_axis, strict=True):
            o = o.movedim(ax + 1, 1)  # (G, B0, ...) with the output's batch axis
            result.append(o.reshape(-1, *o.shape[2:])[:n])
        return result
