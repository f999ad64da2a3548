"""`hqc export DIR --format nir`: the lowered model as a NIR graph (the `nir` package).

    lowered.onnx (one tensor per op holding all T steps) → one NIR node per weight layer
    and per neuron, the graph of ONE time step:
      QConv nd=2 / nd=1   → nir.Conv2d / nir.Conv1d   weight = the lowered integers w (an fp32
                            layer's float weights on their grid, in grid units)
      QLinear             → nir.Linear / nir.Affine   (bias = the neuron's B·σ·2^−F, below)
      LIF (hard reset)    → nir.LIF (nir.IF when β̂ = 1)
      SumPool (2-D)       → nir.SumPool2d
      Reshape that flattens a step → nir.Flatten; the time moves (Gather/Concat/Slice of
      single steps, Reshapes that only merge or split time and batch) vanish
      ReduceSum over T + Requant → the readout, recorded on the Output node
    Everything else (attention MatMul, residual Add/LinComb, Mul, MaxPool, a subtractive
    reset, a membrane readout) is a ModelError naming the nodes: NIR has no node for it.

The integer LIF  H = ⌊(m·P + σ·acc·2^(F+xs) + B·2^xs + r) / 2^k⌋,  s = H ≥ Θ,  P = s ? 0 : H
is NIR's forward-Euler LIF  v ← v + (dt/τ)·(v_leak − v + R·I)  with
    dt/τ = α = 1 − m/2^k,  R = σ·2^(F+xs−k)/α,  v_leak = 0,  I = acc + σ·B·2^−F (the
    layer's bias),  v_threshold = Θ − ½ (H is an integer: v > Θ − ½ ⇔ H ≥ Θ),  v_reset = 0
and the IF (α = 0) is  v ← v + dt·R·I  with R = σ·2^(F+xs−k)/dt. dt = `DT` (1e-4, the
convention of the NIR importers). The float simulation has no floor: it differs from the
integer membrane by the rounding of the rounded-decay form (≤ ½ unit per step). Every
node carries the exact integers in `metadata["hqc"]`. See docs/export.md.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from math import prod
from pathlib import Path
from typing import Any

import numpy as np

from hqc.errors import ConfigError, ModelError

log = logging.getLogger(__name__)

NIR_FILE = "model.nir"
DT = 1e-4
_MOVES = ("Reshape", "Gather", "Concat", "Slice", "Transpose")


@dataclass
class NirNode:
    """One node of the exported graph: its name, NIR type and the lowered node it came from."""

    name: str
    nir_type: str
    source: str


@dataclass
class NirResult:
    """What `export_nir` wrote."""

    path: Path
    bytes: int
    nodes: list[NirNode] = field(default_factory=list)
    readout: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["path"] = str(self.path)
        return d


@dataclass
class _T:
    """A lowered tensor seen per time step: the NIR node producing it, how many steps it
    holds (T, 1, or 0 once summed over time), its per-step feature shape."""

    src: str
    steps: int
    feat: tuple[int, ...]


def _require(module: str) -> Any:
    """Import an optional dependency of the `nir` extra, or a ConfigError saying how to get it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(f"hqc export --format nir needs the {module} package: "
                          "pip install 'hqc-snn[nir]'") from None


def _attention_nodes(g: Any) -> list[str]:
    """The MatMul and elementwise Mul nodes (both operands activations in the integer
    dialect: Spikformer's q·kᵀ·v, SDT's q ⊙ Σ k ⊙ v), each with the neurons feeding them."""

    def origin(t: str) -> str:
        p = g.producer(t)
        while p is not None and p.op in _MOVES:
            p = g.producer(p.inputs[0])
        return "input" if p is None else str(p.attrs.get("neuron") or p.attrs.get("layer") or p.name)

    return [f"{n.name} ({' x '.join(origin(t) for t in n.inputs)})" for n in g.nodes() if n.op in ("MatMul", "Mul")]


def _lif_node(node: Any, feat: tuple[int, ...]) -> tuple[Any, dict[str, Any], np.ndarray]:
    """Integer LIF attributes → (nir.LIF or nir.IF, the integers, the layer bias σ·B·2^−F)."""
    import nir

    from hqc.intops.neuron import _params

    a = node.attrs
    p = _params(a)
    if p["reset"] != "hard":
        raise ModelError(f"export nir: neuron {a['neuron']!r}: a {p['reset']} reset; NIR's LIF resets to v_reset only")
    if np.any(p["v_init"] != 0):
        raise ModelError(f"export nir: neuron {a['neuron']!r}: a nonzero initial membrane; NIR has no initial state")
    if len(node.outputs) > 1:
        raise ModelError(f"export nir: neuron {a['neuron']!r}: its membrane is read out; a NIR LIF outputs spikes only")

    def full(v: np.ndarray) -> np.ndarray:
        v = np.asarray(v, np.int64)
        return np.broadcast_to(v.reshape(v.shape[1:]) if v.ndim == len(feat) + 1 else v, feat).copy()

    sign, bias, theta = full(p["sign"]), full(p["bias"]), full(p["theta"])
    if np.any(sign == 0):
        raise ModelError(f"export nir: neuron {a['neuron']!r}: channels that ignore their input (scale 0); "
                         "NIR's LIF has no separate bias")
    k, xs, F, m = p["k"], p["xs"], p["F"], p["m"]
    gain = sign * 2.0 ** (F + xs - k)
    alpha = 1.0 - m / 2.0**k
    thr = theta.astype(np.float64) - 0.5
    if alpha == 0.0:
        nn = nir.IF(r=gain / DT, v_threshold=thr, v_reset=np.zeros(feat))
    else:
        nn = nir.LIF(tau=np.full(feat, DT / alpha), r=gain / alpha, v_leak=np.zeros(feat), v_threshold=thr,
                     v_reset=np.zeros(feat))
    ints = {"theta": theta, "bias": bias, "sign": sign, "decay_mult": m, "tau_shift": k, "x_shift": xs,
            "frac_bits": F, "round": p["round"], "neuron": a["neuron"]}
    layer_bias = sign * bias * 2.0 ** -F
    return nn, ints, layer_bias


def build_nir(g: Any, doc: Mapping[str, Any]) -> tuple[Any, list[NirNode], dict[str, Any]]:
    """Lowered IR → (nir.NIRGraph of one time step, its nodes, the readout).

    Pre: `g` from lowered.onnx. Post: nir.read(nir.write(graph)) gives the same graph;
    ModelError naming the first node NIR cannot express (the attention MatMuls first)."""
    nir = _require("nir")

    att = _attention_nodes(g)
    if att:
        raise ModelError(f"export nir: NIR has no matmul or product of two activations; the attention nodes "
                         f"{', '.join(att)} cannot be expressed (spiking transformers do not export to NIR)")
    layout = doc["input_layout"]
    shape = tuple(g.shape(g.inputs[0]))
    T = shape[layout.index("T")]
    B = shape[layout.index("B")]
    feat_in = shape[2:]  # the layout names the two leading axes, TB or BT
    nodes: dict[str, Any] = {"input": nir.Input(input_type={"input": np.asarray(feat_in)})}
    rows = [NirNode("input", "Input", g.inputs[0])]
    edges: list[tuple[str, str]] = []
    seen: dict[str, tuple[str, ...]] = {}  # NIR node → the feature shape it takes
    view: dict[str, _T] = {g.inputs[0]: _T("input", T, feat_in)}
    pending_bias: dict[str, np.ndarray] = {}
    readout: dict[str, Any] = {}

    def add(name: str, n: Any, typ: str, source: str) -> None:
        nodes[name] = n
        rows.append(NirNode(name, typ, source))

    def connect(t: _T, dst: str, feat: tuple[int, ...], where: str) -> None:
        src = t.src
        if tuple(d for d in t.feat if d != 1) != tuple(d for d in feat if d != 1):
            if len(feat) != 1 or prod(t.feat) != feat[0]:
                raise ModelError(f"export nir: node {where!r}: a reshape of a time step from {list(t.feat)} to "
                                 f"{list(feat)} is not a flatten; NIR cannot express it")
            fl = f"{src}.flatten"
            if fl not in nodes:
                add(fl, nir.Flatten(input_type={"input": np.asarray(t.feat)}, start_dim=0, end_dim=-1),
                    "Flatten", where)
                edges.append((src, fl))
            src = fl
        if (src, dst) not in edges:
            edges.append((src, dst))

    def bad(node: Any, why: str) -> ModelError:
        return ModelError(f"export nir: node {node.name!r} ({node.op}): {why}")

    for node in g.nodes():
        ins = [view.get(t) for t in node.inputs]
        if any(t is None for t in ins):
            raise bad(node, "its input is not a per-step tensor of the graph")
        x = ins[0]
        out = tuple(g.shape(node.outputs[0]))
        if node.op in _MOVES:
            if node.op == "Concat":
                if len({t.src for t in ins}) != 1 or any(t.steps != 1 for t in ins) or len(ins) != T:
                    raise bad(node, "concatenates different tensors; NIR has no concatenation")
                view[node.outputs[0]] = _T(x.src, T, x.feat)
            elif node.op == "Gather":
                idx = np.asarray(node.attrs["indices"])
                if idx.ndim != 0 or x.steps != T or g.shape(node.inputs[0])[int(node.attrs["axis"])] != T:
                    raise bad(node, "gathers along a feature axis; NIR cannot express it")
                view[node.outputs[0]] = _T(x.src, 1, x.feat)
            elif node.op == "Transpose":
                src_shape = tuple(g.shape(node.inputs[0]))
                order = np.arange(prod(src_shape)).reshape(src_shape).transpose(node.attrs["perm"]).ravel()
                if not np.array_equal(order, np.arange(order.size)):
                    raise bad(node, "permutes the data; NIR cannot express it")
                view[node.outputs[0]] = x
            elif node.op == "Slice":
                raise bad(node, "slices a tensor; NIR cannot express it")
            else:  # Reshape: same elements per step
                if prod(out) != prod(x.feat) * B * max(x.steps, 1):
                    raise bad(node, "moves data between time steps")
                view[node.outputs[0]] = x
        elif node.op in ("QConv", "QLinear"):
            a = node.attrs
            name = a["layer"]
            w = np.asarray(a["w"], np.int64)  # fp32 layers too: w_float on its grid, w_float·2^−unit_exp
            if node.op == "QLinear":
                if a.get("weight_left", 0):
                    raise bad(node, "a weight on the left (token mixing); NIR's Linear is x·Wᵀ")
                feat, ofeat = (w.shape[1],), (w.shape[0],)
                typ = "Linear"
            else:
                pads = list(a["pads"])
                nd = int(a["nd"])
                if pads[:nd] != pads[nd:]:
                    raise bad(node, f"asymmetric padding {pads}; NIR's Conv pads both sides alike")
                feat, ofeat = tuple(g.shape(node.inputs[0])[1:]), out[1:]
                typ = "Conv2d" if nd == 2 else "Conv1d"
            if name not in seen:
                seen[name] = feat
                wf = w.astype(np.float32 if np.abs(w).max(initial=0) < 2**24 else np.float64)  # exact
                if typ == "Linear":
                    n = nir.Linear(weight=wf)
                else:
                    cls = nir.Conv2d if nd == 2 else nir.Conv1d
                    n = cls(input_shape=feat[1:] if nd == 2 else feat[1], weight=wf,
                            stride=tuple(a["strides"]) if nd == 2 else a["strides"][0],
                            padding=tuple(pads[:nd]) if nd == 2 else pads[0],
                            dilation=tuple(a["dilations"]) if nd == 2 else a["dilations"][0],
                            groups=int(a.get("group", 1)), bias=np.zeros(w.shape[0], np.float32))
                n.metadata["hqc"] = {"layer": name, "quantizer": a["quant"], "bits": int(a["bits"])}
                add(name, n, typ, node.name)
            connect(x, name, feat, node.name)
            view[node.outputs[0]] = _T(name, x.steps, tuple(ofeat))
        elif node.op == "LIF":
            name = node.attrs["neuron"]
            feat = tuple(g.shape(node.inputs[0])[2:])
            if x.steps != T:
                raise bad(node, "a neuron on a single time step")
            n, ints, lb = _lif_node(node, feat)
            n.metadata["hqc"] = ints
            add(name, n, type(n).__name__, node.name)
            connect(x, name, feat, node.name)
            if x.src in seen:
                pending_bias[x.src] = lb
            elif np.any(lb != 0):
                raise bad(node, "a neuron with a bias that follows no weight layer; NIR's LIF has no bias")
            view[node.outputs[0]] = _T(name, T, feat)
        elif node.op == "SumPool":
            a = node.attrs
            pads = list(a["pads"])
            if "mult" in a or len(a["kernel_shape"]) != 2 or pads[:2] != pads[2:]:
                raise bad(node, "a count-corrected or non-2-D sum pool; NIR's SumPool2d has neither")
            name = node.name
            add(name, nir.SumPool2d(kernel_size=np.asarray(a["kernel_shape"]), stride=np.asarray(a["strides"]),
                                    padding=np.asarray(pads[:2])), "SumPool2d", node.name)
            connect(x, name, x.feat, node.name)
            view[node.outputs[0]] = _T(name, x.steps, tuple(out[1:]))
        elif node.op == "ReduceSum":
            tax = [i for i, d in enumerate(g.shape(node.inputs[0])) if d == T and i < 2]
            if x.steps != T or list(node.attrs["axes"]) != tax[:1] or int(node.attrs["keepdims"]):
                raise bad(node, "a sum over features (pooling); NIR's graph has no reduction")
            readout["sum_over_time"] = True
            view[node.outputs[0]] = _T(x.src, 0, x.feat)
        elif node.op == "Requant":
            readout.update(mult=np.asarray(node.attrs["mult"]).reshape(-1).tolist(),
                           bias=np.asarray(node.attrs["bias"]).reshape(-1).tolist())
            view[node.outputs[0]] = x
        elif node.op == "MaxPool":
            raise bad(node, "NIR has no max pooling (SumPool2d and AvgPool2d only)")
        else:
            raise bad(node, "NIR has no node for it")
    last = view[g.outputs[0]]
    if last.steps != 0:
        raise ModelError(f"export nir: the logits {g.outputs[0]!r} are not a sum over the time steps; "
                         "the NIR readout is the sum of the output node over T")
    nodes["output"] = nir.Output(output_type={"output": np.asarray(last.feat)})
    nodes["output"].metadata["hqc"] = {"readout": "logits = mult · Σ_t output_t + bias", **readout}
    rows.append(NirNode("output", "Output", g.outputs[0]))
    edges.append((last.src, "output"))
    for name, lb in pending_bias.items():
        n = nodes[name]
        lb = lb.reshape(lb.shape[0], -1)
        if np.any(lb != lb[:, :1]):
            raise ModelError(f"export nir: layer {name!r}: a neuron bias that varies inside a channel")
        bias = lb[:, 0].astype(np.float32)
        if isinstance(n, nir.Linear):
            nodes[name] = nir.Affine(weight=n.weight, bias=bias, metadata=n.metadata)
            rows[[r.name for r in rows].index(name)].nir_type = "Affine"
        else:
            n.bias = bias
    graph = nir.NIRGraph(nodes=nodes, edges=edges, metadata={"hqc": {"dt": DT, "T": T, "producer": "hqc"}})
    return graph, rows, readout


def export_nir(directory: str | Path, out: str | Path | None = None) -> NirResult:
    """DIR → DIR/model.nir (or `out`, HDF5 via nir.write), written atomically and read back
    with nir.read. Pre: as `hqc.export_qdq.read_lowering`."""
    nir = _require("nir")

    from hqc import intref
    from hqc.export_qdq import read_lowering
    from hqc.outdir import atomic_file

    d = Path(directory)
    doc, _ = read_lowering(d)
    g = intref.load_lowered(d / "lowered.onnx")
    graph, rows, readout = build_nir(g, doc)
    path = Path(out) if out is not None else d / NIR_FILE
    if path.is_dir():
        raise ConfigError(f"{path}: is a folder; -o names the output file")
    if not path.parent.is_dir():
        raise ConfigError(f"{path.parent}: no such folder for -o")
    with atomic_file(path) as tmp:
        nir.write(str(tmp), graph)
        back = nir.read(str(tmp))
        if set(back.nodes) != set(graph.nodes):
            raise ModelError(f"internal: nir.read of {path} gives other nodes than were written")
    path.chmod(0o644)
    return NirResult(path, path.stat().st_size, rows, readout)


# --------------------------------------------------------------------------- simulate
def _modules() -> dict[Any, Any]:
    """NIR node → torch module, float64, for `nirtorch.nir_to_torch`: the layers as torch
    layers, the LIF/IF by NIR's forward-Euler equations with per-neuron parameters."""
    import nir
    import torch

    class Euler(torch.nn.Module):
        def __init__(self, n: Any) -> None:
            super().__init__()
            def f(v: Any) -> Any:
                return torch.as_tensor(np.asarray(v, np.float64))

            if isinstance(n, nir.IF):
                self.a, self.gain = None, f(DT * np.asarray(n.r))
            else:
                self.a = f(DT / np.asarray(n.tau))
                self.gain, self.leak = f(self.a.numpy() * n.r), f(self.a.numpy() * n.v_leak)
            self.thr, self.reset = f(n.v_threshold), f(n.v_reset)

        def forward(self, x: Any, state: Any = None) -> tuple[Any, Any]:
            v = torch.zeros_like(x) if state is None else state
            v = v + self.gain * x if self.a is None else v - self.a * v + self.leak + self.gain * x
            s = (v > self.thr).to(x.dtype)
            return s, torch.where(s > 0, self.reset, v)

    def conv(n: Any) -> Any:
        nd = n.weight.ndim - 2
        cls = torch.nn.Conv2d if nd == 2 else torch.nn.Conv1d
        c = cls(n.weight.shape[1] * n.groups, n.weight.shape[0], n.weight.shape[2:], stride=n.stride,
                padding=n.padding, dilation=n.dilation, groups=n.groups, dtype=torch.float64)
        c.weight.data = torch.as_tensor(np.asarray(n.weight, np.float64))
        c.bias.data = torch.as_tensor(np.asarray(n.bias, np.float64))
        return c

    def linear(n: Any) -> Any:
        lin = torch.nn.Linear(n.weight.shape[1], n.weight.shape[0], bias=isinstance(n, nir.Affine), dtype=torch.float64)
        lin.weight.data = torch.as_tensor(np.asarray(n.weight, np.float64))
        if isinstance(n, nir.Affine):
            lin.bias.data = torch.as_tensor(np.asarray(n.bias, np.float64))
        return lin

    def sumpool(n: Any) -> Any:
        k = tuple(int(v) for v in n.kernel_size)
        pool = torch.nn.AvgPool2d(k, tuple(int(v) for v in n.stride), tuple(int(v) for v in n.padding),
                                  divisor_override=1)
        return pool

    return {nir.LIF: Euler, nir.IF: Euler, nir.Conv2d: conv, nir.Conv1d: conv, nir.Linear: linear,
            nir.Affine: linear, nir.SumPool2d: sumpool,
            nir.Flatten: lambda n: torch.nn.Flatten(n.start_dim + 1, n.end_dim)}


def simulate(path: str | Path, x: np.ndarray, layout: str) -> np.ndarray:
    """Run a NIR file written by `export_nir` (nir.read → nirtorch) on inputs (G, *model
    input shape) step by step; returns the logits of its readout, (G, B, K) float64."""
    import torch

    nir, nirtorch = _require("nir"), _require("nirtorch")
    graph = nir.read(str(path))
    ro = graph.nodes["output"].metadata.get("hqc", {})
    mod = nirtorch.nir_to_torch(graph, _modules(), dtype=torch.float64)
    ta, ba = layout.index("T"), layout.index("B")
    outs = []
    for grp in np.asarray(x, np.float64):
        steps = np.moveaxis(grp, (ta, ba), (0, 1))
        state, acc = None, 0.0
        with torch.no_grad():
            for xt in steps:
                y, state = mod(torch.as_tensor(xt), state)
                acc = acc + y.numpy()
        outs.append(acc * np.asarray(ro.get("mult", 1.0)) + np.asarray(ro.get("bias", 0.0)))
    return np.stack(outs)


@dataclass
class NirAgreement:
    """The NIR graph simulated (nirtorch, float64) against the integer model."""

    samples: int
    split: str
    same_prediction: int
    accuracy_nir: float
    accuracy_int: float

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["prediction_agreement"] = self.same_prediction / self.samples if self.samples else 0.0
        return d


def agreement(directory: str | Path, nir_path: str | Path, data: str | Path, split: str = "val",
              limit: int | None = None) -> NirAgreement:
    """Predicted class of the simulated NIR graph against the integer model (numpy reference)."""
    from hqc import intref
    from hqc.export_qdq import load_split
    from hqc.verification import per_sample

    doc, g, groups, y = load_split(directory, data, split, limit)
    n = len(y)
    pi = per_sample(intref.run(g, groups)[0], n).argmax(axis=1)
    pn = per_sample(simulate(nir_path, groups, doc["input_layout"]), n).argmax(axis=1)
    return NirAgreement(n, split, int((pi == pn).sum()), float((pn == y).mean()), float((pi == y).mean()))
