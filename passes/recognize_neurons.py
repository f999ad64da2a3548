"""recognize-neurons: lift every unrolled spiking neuron into one `ai.hqc::LIF` node.

Rewrite (per neuron, all T steps at once):

    x_t = Gather|Squeeze∘Slice|Squeeze∘Split (X, t)          for t < T
    {elementwise chain: Add/Sub/Mul/Div/compare/Cast/Where…}  (the unrolled membrane)
    S = Concat(Unsqueeze(s_0), …, Unsqueeze(s_{T-1}))
        →  S = LIF(X)   with explicit tau, v_threshold, reset, decay_input, comparison

How a neuron is found does not depend on the exporter: the elementwise ops of the graph
are split into connected components; a component holding a comparison is a neuron
candidate. Its boundary inputs are the T input currents x_t and its boundary outputs the
T spike trains s_t (ordered by data dependence: s_t depends on x_0..x_t). The parameters
are identified by *probing the component numerically* (its membrane before the compare,
at chosen inputs) and then checked by simulating the fitted LIF against the component on
random inputs. Anything that does not fit — several neurons merged by a per-step
residual, a membrane used outside the neuron, an unknown charge equation — is a
`NeuronError` naming the ONNX nodes; it is never passed through as float ops.

When the inputs are not slices of one tensor (snnTorch runs its layers per time step),
the lift stacks them (Unsqueeze+Concat) and slices the outputs (Gather), so the LIF node
is always multi-step.

Pre: canonicalized graph (static shapes). Post: no comparison op outside a LIF node.
Idempotent: LIF nodes are not elementwise, so a second run finds no candidate.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from hqc.errors import NeuronError
from hqc.ir import Graph, Node, Value, module_path
from hqc.lif import LIFParams, lif_numpy
from hqc.numpy_ops import COMPARE, ELEMENTWISE, evaluate
from hqc.passes.base import Context, Pass, PassResult, register

log = logging.getLogger(__name__)

AGREEMENT = 0.999  # fraction of spikes the fitted LIF must reproduce on random probes


@dataclass
class Component:
    nodes: list[str]  # topological order
    inputs: list[str]  # boundary input tensors, time order
    outputs: list[str]  # spike tensors, time order
    compares: list[str]  # compare node per step (feeding outputs[t])


def _components(graph: Graph) -> list[list[str]]:
    order = graph.topo_order()
    ew = [n for n in order if graph.node(n).op in ELEMENTWISE and not graph.node(n).domain]
    ew_set = set(ew)
    parent = {n: n for n in ew}

    def find(a: str) -> str:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for n in ew:
        for t in graph.node(n).inputs:
            p = graph.producer(t) if t else None
            if p is not None and p.name in ew_set:
                ra, rb = find(n), find(p.name)
                if ra != rb:
                    parent[ra] = rb
    groups: dict[str, list[str]] = {}
    for n in ew:
        groups.setdefault(find(n), []).append(n)
    comps = [g for g in groups.values() if any(graph.node(n).op in COMPARE for n in g)]
    return sorted(comps, key=lambda g: order.index(g[0]))


def _names(graph: Graph, nodes: list[str], limit: int = 4) -> str:
    shown = ", ".join(nodes[:limit])
    return shown + (f" … ({len(nodes)} nodes)" if len(nodes) > limit else "")


def _analyze(graph: Graph, nodes: list[str]) -> Component:
    members = set(nodes)
    inputs: list[str] = []
    for n in nodes:
        for t in graph.node(n).inputs:
            if not t or graph.is_const(t):
                continue
            p = graph.producer(t)
            if (p is None or p.name not in members) and t not in inputs:
                inputs.append(t)
    outputs: list[str] = []
    for n in nodes:
        for t in graph.node(n).outputs:
            external = t in graph.outputs or any(c.name not in members for c in graph.consumers(t))
            if external:
                outputs.append(t)
    where = _names(graph, nodes)
    if not inputs:
        raise NeuronError(f"spiking nonlinearity with no input current (nodes {where})")
    # dependence of each output on the inputs, inside the component
    deps: dict[str, set[str]] = {}
    for n in nodes:
        node = graph.node(n)
        acc: set[str] = set()
        for t in node.inputs:
            if t in inputs:
                acc.add(t)
            elif t in deps:
                acc |= deps[t]
        for t in node.outputs:
            deps[t] = acc
    T = len(inputs)
    in_rank = {x: sum(1 for o in outputs if x in deps[o]) for x in inputs}
    out_rank = {o: len(deps[o]) for o in outputs}
    if len(outputs) != T or sorted(in_rank.values()) != list(range(1, T + 1)) or sorted(out_rank.values()) != list(
        range(1, T + 1)
    ):
        raise NeuronError(
            f"cannot lift spiking nonlinearity: {T} input current(s) and {len(outputs)} output(s) "
            f"do not form one neuron unrolled over time (nodes {where})"
        )
    inputs = sorted(inputs, key=lambda x: -in_rank[x])
    outputs = sorted(outputs, key=lambda o: out_rank[o])
    compares = []
    for o in outputs:
        c = _compare_of(graph, o, members)
        if c is None:
            raise NeuronError(f"cannot lift spiking nonlinearity: output {o!r} is not a spike (nodes {where})")
        compares.append(c)
    return Component(nodes, inputs, outputs, compares)


def _compare_of(graph: Graph, tensor: str, members: set[str]) -> str | None:
    """Follow Cast / Mul(·, 1) / Where(c, 1, 0) back from a spike tensor to its comparison node."""
    for _ in range(4):
        p = graph.producer(tensor)
        if p is None or p.name not in members:
            return None
        if p.op in COMPARE:
            return p.name
        if p.op == "Cast":
            tensor = p.inputs[0]
        elif p.op == "Mul" and any(_is_one(graph, t) for t in p.inputs):
            tensor = next(t for t in p.inputs if not _is_one(graph, t))  # graded spikes × 1
        elif p.op == "Where":
            a, b = graph.const(p.inputs[1]), graph.const(p.inputs[2])
            if a is None or b is None or not (np.all(a == 1) and np.all(b == 0)):
                return None
            tensor = p.inputs[0]
        else:
            return None
    return None


def _is_one(graph: Graph, t: str) -> bool:
    c = graph.const(t)
    return c is not None and c.size == 1 and float(c.reshape(-1)[0]) == 1.0


def _threshold_and_margin(graph: Graph, cmp: Node) -> tuple[float, str, str, int]:
    """(v_threshold, comparison, membrane-side tensor, sign) of spike = sign·(m - θ) ≥/> 0."""
    a, b = cmp.inputs
    op = cmp.op
    if graph.is_const(a) and not graph.is_const(b):
        a, b = b, a
        op = {"Greater": "Less", "Less": "Greater", "GreaterOrEqual": "LessOrEqual", "LessOrEqual": "GreaterOrEqual"}[op]
    cb = graph.const(b)
    if cb is None or cb.size != 1:
        raise NeuronError(f"comparison {cmp.name!r} does not compare against a scalar constant")
    if op not in ("Greater", "GreaterOrEqual"):
        raise NeuronError(f"comparison {cmp.name!r} ({op}) fires below a threshold; not a LIF neuron")
    comparison = ">" if op == "Greater" else ">="
    th = float(cb.reshape(-1)[0])
    membrane = a
    if th == 0.0:
        p = graph.producer(a)
        if p is not None and p.op == "Sub" and graph.is_const(p.inputs[1]) and graph.const(p.inputs[1]).size == 1:
            th = float(graph.const(p.inputs[1]).reshape(-1)[0])
            membrane = p.inputs[0]
        elif p is not None and p.op == "Add" and graph.is_const(p.inputs[1]) and graph.const(p.inputs[1]).size == 1:
            th = -float(graph.const(p.inputs[1]).reshape(-1)[0])
            membrane = p.inputs[0]
    return th, comparison, membrane, 1


class _Probe:
    """Evaluates a component in float64 numpy on chosen boundary inputs."""

    def __init__(self, graph: Graph, comp: Component, watch: list[str]) -> None:
        self.graph, self.comp, self.watch = graph, comp, watch
        self.shape = tuple(int(d) for d in graph.shape(comp.inputs[0]))  # type: ignore[union-attr]
        self.consts: dict[str, np.ndarray] = {}
        for nid in comp.nodes:
            for t in graph.node(nid).inputs:
                c = graph.const(t) if t else None
                if c is not None and t not in self.consts:
                    c = c.astype(np.float64) if c.dtype.kind == "f" else c
                    if c.size > 1 and np.all(c == c.reshape(-1)[0]):
                        c = np.full((1,) * c.ndim, c.reshape(-1)[0], c.dtype)  # uniform → scalar
                    self.consts[t] = c
        rank = len(self.shape)
        uniform = all(c.size == 1 for c in self.consts.values())
        n = int(np.prod(self.shape)) if self.shape else 1
        # probes need the full shape only when a constant varies per element
        self.probe_shape = ((1,) * (rank - 1) + (min(n, 4096),)) if uniform and rank else self.shape

    def run(self, xs: list[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        env: dict[str, np.ndarray] = {t: x for t, x in zip(self.comp.inputs, xs, strict=True)}
        for nid in self.comp.nodes:
            node = self.graph.node(nid)
            args = []
            for t in node.inputs:
                if t in env:
                    args.append(env[t])
                elif t in self.consts:
                    args.append(self.consts[t])
                else:
                    args.append(None)
            attrs = dict(node.attrs)
            if node.op == "Cast" and attrs.get("to") in (1, 10, 16):  # keep probes in float64
                attrs["to"] = 11
            outs = evaluate(node.op, attrs, args)
            for t, v in zip(node.outputs, outs, strict=False):
                env[t] = v
        return [env[w] for w in self.watch], [np.asarray(env[o], np.float64) for o in self.comp.outputs]


def _fit(graph: Graph, comp: Component) -> LIFParams:
    where = _names(graph, comp.nodes)
    T = len(comp.inputs)
    ths, cmps, membranes = [], [], []
    for c in comp.compares:
        th, cmpop, mem, _ = _threshold_and_margin(graph, graph.node(c))
        ths.append(th)
        cmps.append(cmpop)
        membranes.append(mem)
    if len(set(ths)) != 1 or len(set(cmps)) != 1:
        raise NeuronError(f"cannot lift spiking nonlinearity: thresholds or comparisons differ across time steps (nodes {where})")
    th, comparison = ths[0], cmps[0]
    shapes = {tuple(graph.shape(x) or ()) for x in comp.inputs}
    if len(shapes) != 1:
        raise NeuronError(f"cannot lift spiking nonlinearity: input currents differ in shape (nodes {where})")
    probe = _Probe(graph, comp, membranes)
    shape = probe.shape

    scalar_shape = (1,) * len(shape)  # broadcasts against per-channel / batch constants

    def h(xs_scalar: list[float]) -> list[float]:
        mem, _ = probe.run([np.full(scalar_shape, v, np.float64) for v in xs_scalar])
        return [float(np.asarray(m).reshape(-1)[0]) for m in mem]

    zero = [0.0] * T
    h0 = h(zero)
    c0 = h0[0]
    beta_in = h([1.0] + zero[1:])[0] - c0
    if abs(beta_in) < 1e-9:
        raise NeuronError(f"cannot lift spiking nonlinearity: the membrane does not depend on the input (nodes {where})")

    def x_for(h_target: float) -> float:
        return (h_target - c0) / beta_in

    scale = max(1.0, abs(th))
    if T >= 2:
        lo1, lo2 = th - 0.5 * scale, th - 0.25 * scale
        r1 = h([x_for(lo1)] + zero[1:])
        r2 = h([x_for(lo2)] + zero[1:])
        alpha = (r2[1] - r1[1]) / (r2[0] - r1[0])
        gamma = r1[1] - alpha * r1[0]
        hi1, hi2 = th + 0.5 * scale, th + 0.75 * scale
        s1 = h([x_for(hi1)] + zero[1:])
        s2 = h([x_for(hi2)] + zero[1:])
        if abs(alpha) < 1e-9:
            raise NeuronError(f"cannot lift spiking nonlinearity: no membrane carried between steps (nodes {where})")
        v1 = (s1[1] - gamma) / alpha
        v2 = (s2[1] - gamma) / alpha
        tol = 1e-6 * scale
        if abs(v1 - v2) < tol:
            v_reset: float | None = v1
            reset_by = None
        elif abs((s1[0] - v1) - (s2[0] - v2)) < tol:
            v_reset = None
            reset_by = s1[0] - v1
        else:
            raise NeuronError(f"cannot lift spiking nonlinearity: the reset is neither hard nor subtractive (nodes {where})")
        v_init = (c0 - gamma) / alpha
    else:
        alpha, gamma, v_reset, reset_by, v_init = 0.5, 0.0, 0.0, None, 0.0
    decay_input = abs(beta_in - 1.0) > 1e-6
    if decay_input:
        tau = 1.0 / beta_in
        ok = abs(alpha - (1.0 - 1.0 / tau)) < 1e-6
    else:
        tau = math.inf if abs(1.0 - alpha) < 1e-9 else 1.0 / (1.0 - alpha)
        ok = True
    vr = v_reset if v_reset is not None else 0.0
    expect_gamma = vr / tau if math.isfinite(tau) else 0.0
    if not ok or abs(gamma - expect_gamma) > 1e-6 * scale or tau <= 0:
        raise NeuronError(f"cannot lift spiking nonlinearity: unsupported charge equation (nodes {where})")
    params = LIFParams(
        tau=_snap(tau),
        v_threshold=th,
        v_reset=None if v_reset is None else _snap(v_reset),
        decay_input=decay_input,
        comparison=comparison,
        reset_by=None if reset_by is None else _snap(reset_by),
        v_init=_snap(v_init),
    )
    _validate(graph, comp, probe, params, where)
    return params


def _snap(v: float) -> float:
    """Undo float32 noise of the probe (2.0000001 → 2.0); keeps 6 significant digits."""
    if not math.isfinite(v) or v == 0:
        return v
    return float(f"{v:.6g}")


def _validate(graph: Graph, comp: Component, probe: _Probe, p: LIFParams, where: str) -> None:
    rng = np.random.default_rng(0)
    T = len(comp.inputs)
    scale = max(1.0, abs(p.v_threshold))
    shape = (T,) + probe.probe_shape
    x = rng.normal(0.0, 1.0, size=shape) * scale
    x += rng.choice([0.0, 1.0, 2.0], size=shape) * scale  # spike-count-like currents
    _, outs = probe.run([x[t] for t in range(T)])
    got = np.stack(outs)
    want = lif_numpy(x, p)
    agree = float(np.mean(got == want))
    if agree < AGREEMENT:
        raise NeuronError(
            f"cannot lift spiking nonlinearity: fitted LIF reproduces only {agree:.1%} of its spikes (nodes {where})"
        )


def _time_source(graph: Graph, xs: list[str]) -> tuple[str, int] | None:
    """If x_t = X[t] along one axis of one tensor X, return (X, axis)."""
    src: list[tuple[str, int, int]] = []
    for x in xs:
        p = graph.producer(x)
        if p is None:
            return None
        if p.op == "Gather":
            idx = graph.const(p.inputs[1])
            if idx is None or idx.ndim != 0:
                return None
            ax = p.attrs.get("axis", 0) % len(graph.shape(p.inputs[0]))
            n = graph.shape(p.inputs[0])[ax]
            src.append((p.inputs[0], ax, int(idx) % n))
            continue
        if p.op != "Squeeze":
            return None
        axes = graph.const(p.inputs[1]) if len(p.inputs) > 1 and p.inputs[1] else p.attrs.get("axes")
        if axes is None or np.asarray(axes).size != 1:
            return None
        inner = graph.producer(p.inputs[0])
        if inner is None:
            return None
        rank = len(graph.shape(inner.inputs[0]))
        ax = int(np.asarray(axes).reshape(-1)[0]) % rank
        if inner.op == "Slice":
            starts, ends = graph.const(inner.inputs[1]), graph.const(inner.inputs[2])
            axs = graph.const(inner.inputs[3]) if len(inner.inputs) > 3 and inner.inputs[3] else np.array([0])
            steps = graph.const(inner.inputs[4]) if len(inner.inputs) > 4 and inner.inputs[4] else np.array([1])
            if any(a is None or a.size != 1 for a in (starts, ends, axs, steps)) or int(steps.reshape(-1)[0]) != 1:
                return None
            n = graph.shape(inner.inputs[0])[int(axs.reshape(-1)[0]) % rank]
            s = int(starts.reshape(-1)[0])
            s = s + n if s < 0 else s
            e = min(int(ends.reshape(-1)[0]), n)
            if int(axs.reshape(-1)[0]) % rank != ax or e - s != 1:
                return None
            src.append((inner.inputs[0], ax, s))
        elif inner.op == "Split":
            if inner.attrs.get("axis", 0) % rank != ax or graph.shape(inner.outputs[0])[ax] != 1:
                return None
            src.append((inner.inputs[0], ax, inner.outputs.index(p.inputs[0])))
        else:
            return None
    tensors = {s[0] for s in src}
    axes_ = {s[1] for s in src}
    if len(tensors) != 1 or len(axes_) != 1:
        return None
    X, ax = src[0][0], src[0][1]
    if [s[2] for s in src] != list(range(len(xs))) or graph.shape(X)[ax] != len(xs):
        return None
    return X, ax


def _stack_sink(graph: Graph, outs: list[str], axis: int, members: set[str]) -> str | None:
    """If the spikes are used only as Concat(Unsqueeze(s_t, axis)) in order, return it."""
    concat = None
    for t, s in enumerate(outs):
        users = [u for u in graph.consumers(s) if u.name not in members]
        if len(users) != 1 or users[0].op != "Unsqueeze" or s in graph.outputs:
            return None
        u = users[0]
        axes = graph.const(u.inputs[1]) if len(u.inputs) > 1 and u.inputs[1] else u.attrs.get("axes")
        rank = len(graph.shape(u.outputs[0]))
        if axes is None or np.asarray(axes).size != 1 or int(np.asarray(axes).reshape(-1)[0]) % rank != axis:
            return None
        cs = graph.consumers(u.outputs[0])
        if len(cs) != 1 or cs[0].op != "Concat" or cs[0].attrs.get("axis", 0) % rank != axis:
            return None
        if concat is None:
            concat = cs[0]
        if cs[0].name != concat.name or concat.inputs.index(u.outputs[0]) != t:
            return None
    if concat is None or len(concat.inputs) != len(outs):
        return None
    return concat.name


def _lift(graph: Graph, comp: Component, params: LIFParams, index: int) -> str:
    T = len(comp.inputs)
    xshape = tuple(graph.shape(comp.inputs[0]))
    ts = _time_source(graph, comp.inputs)
    name = _neuron_name(graph, comp, index)
    if ts is not None:
        X, axis = ts
    else:
        axis = 0
        ax_c = graph.add_const(graph.fresh(f"{name}.axis"), np.array([0], np.int64))
        ups = []
        for x in comp.inputs:
            u = graph.fresh(f"{name}.in")
            graph.add_node("Unsqueeze", [x, ax_c], [u], name=f"{name}.stack_in")
            graph.values[u] = Value((1,) + xshape, "float32")
            ups.append(u)
        X = graph.fresh(f"{name}.X")
        graph.add_node("Concat", ups, [X], {"axis": 0}, name=f"{name}.stack")
        graph.values[X] = Value((T,) + xshape, "float32")
    sink = _stack_sink(graph, comp.outputs, axis, set(comp.nodes))
    for nid in comp.nodes:
        graph.remove_node(nid)
    p = LIFParams(**{**params.__dict__, "time_axis": axis})
    if sink is not None:
        S = graph.node(sink).outputs[0]
        graph.remove_node(sink)
        graph.add_node("LIF", [X], [S], p.to_attrs(), name=name, domain="ai.hqc")
    else:
        S = graph.fresh(f"{name}.S")
        graph.add_node("LIF", [X], [S], p.to_attrs(), name=name, domain="ai.hqc")
        graph.values[S] = Value(tuple(graph.shape(X)), "float32")
        for t, s in enumerate(comp.outputs):
            idx = graph.add_const(graph.fresh(f"{name}.t"), np.array(t, np.int64))
            graph.add_node("Gather", [S, idx], [s], {"axis": axis}, name=f"{name}.step{t}")
            graph.values[s] = Value(xshape, "float32")
    return name


def _neuron_name(graph: Graph, comp: Component, index: int) -> str:
    """The torch module of the neuron when the exporter recorded it, else lif_<i>."""
    counts: dict[str, int] = {}
    for nid in comp.nodes:
        m = module_path(graph.node(nid))
        if m:
            counts[m] = counts.get(m, 0) + 1
    base = max(sorted(counts), key=lambda k: counts[k]) if counts else f"lif_{index}"
    return base if base not in graph.g else graph.fresh(base)


@register
class RecognizeNeurons(Pass):
    name = "recognize-neurons"

    def run(self, graph: Graph, ctx: Context) -> PassResult:
        comps = _components(graph)
        lifted = []
        for i, nodes in enumerate(comps):
            comp = _analyze(graph, nodes)
            params = _fit(graph, comp)
            lifted.append(_lift(graph, comp, params, i))
        dead = graph.remove_dead()
        if lifted:
            from hqc.shapes import infer_shapes

            infer_shapes(graph)
        existing = sum(1 for n in graph.nodes() if n.op == "LIF")
        return PassResult(graph, bool(lifted), {"lifted": len(lifted), "neurons": existing, "dead": dead, "nodes": len(graph)})
