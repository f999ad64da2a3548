"""recognize-neurons: lift every unrolled spiking neuron into one `ai.hqc::LIF` node.

Rewrite (per neuron, all T steps at once):

    x_t = Gather|Squeeze∘Slice|Squeeze∘Split (X, t)          for t < T
    {elementwise chain: Add/Sub/Mul/Div/compare/Cast/Where…}  (the unrolled membrane)
    S = Concat(Unsqueeze(s_0), …, Unsqueeze(s_{T-1}))
    [M = Concat(Unsqueeze(h_0), …, Unsqueeze(h_{T-1}))]       (membrane read out)
        →  S[, M] = LIF(X)   with explicit tau, v_threshold, reset, decay_input, comparison

How a neuron is found does not depend on the exporter: the elementwise ops of the graph
are split into connected components; a component holding a comparison is a neuron
candidate. Its comparisons, grouped by the tensor they read, are the fire events; the
events of one neuron form a chain by data dependence (s_t depends on x_0..x_t), and a
component whose chains branch (the TorchScript exporter shares the first steps of two
neurons that read the same currents) holds one neuron per root-to-leaf chain, the shared
nodes belonging to each. A neuron's boundary outputs are spikes s_t (a compare, through
Cast / ×1 / Where(c, 1, 0)) or its charged membrane h_t (snnTorch's `mem`, read out as
logits); the last fire of a neuron whose spikes nobody reads may be dead code the
exporter dropped. The parameters are identified by *probing the component numerically*
(its membrane before the compare, at chosen inputs) and then checked by simulating the
fitted LIF against the component on random inputs, spikes and membrane outputs alike.
Anything that does not fit — several neurons merged by a per-step residual, a membrane
after the reset used outside the neuron, an unknown charge equation — is a `NeuronError`
naming the ONNX nodes; it is never passed through as float ops.

When the inputs are not slices of one tensor (snnTorch runs its layers per time step),
the lift stacks them (Unsqueeze+Concat) and slices the outputs (Gather), so the LIF node
is always multi-step. It has the membrane output M only when some h_t is read.

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
SNAP_RTOL = 1e-6  # a subtractive reset this close to thr or thr/beta is that value


@dataclass
class Component:
    """One neuron (all T steps) found in a connected component of elementwise ops."""

    nodes: list[str]  # topological order; may share a prefix with a sibling neuron
    inputs: list[str]  # boundary input currents x_t, time order
    spikes: list[list[str]]  # per step t, the boundary outputs that are s_t
    membranes: list[list[str]]  # per step t, the boundary outputs that claim to be h_t
    compares: list[list[str]]  # per step t, its comparison nodes ([] for a dead last fire)
    watch: list[str]  # per step t, the tensor the probe reads as h_t


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


def _not_one_neuron(T: int, n_out: int, where: str) -> NeuronError:
    return NeuronError(
        f"cannot lift spiking nonlinearity: {T} input current(s) and {n_out} output(s) "
        f"do not form one neuron unrolled over time (nodes {where})"
    )


def _neurons(graph: Graph, nodes: list[str]) -> list[Component]:
    """Split one component into its neurons.

    A fire event is the set of comparisons that read one tensor (snnTorch's TorchScript
    export recomputes each spike for the next step's reset). Within a neuron the events
    form a chain by data dependence; exporters that share common subexpressions (the
    TorchScript exporter's CSE merges two neurons that read the same currents up to
    their first compare) make the chains of several neurons a tree. Each root-to-leaf
    path is one neuron; nodes on the shared prefix belong to every neuron through it.
    """
    members = set(nodes)
    where = _names(graph, nodes)
    index = {n: i for i, n in enumerate(nodes)}
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
            if t in graph.outputs or any(c.name not in members for c in graph.consumers(t)):
                outputs.append(t)
    if not inputs:
        raise NeuronError(f"spiking nonlinearity with no input current (nodes {where})")
    anc: dict[str, int] = {}  # node -> bit set of its ancestors in the component (itself included)
    deps: dict[str, frozenset[str]] = {}  # tensor -> the boundary inputs it depends on
    for n in nodes:
        node = graph.node(n)
        mask, acc = 1 << index[n], set()
        for t in node.inputs:
            p = graph.producer(t) if t else None
            if p is not None and p.name in members:
                mask |= anc[p.name]
            if t in inputs:
                acc.add(t)
            elif t in deps:
                acc |= deps[t]
        anc[n] = mask
        for t in node.outputs:
            deps[t] = frozenset(acc)

    events: dict[tuple[str, ...], list[str]] = {}
    for n in nodes:
        node = graph.node(n)
        if node.op in COMPARE:
            key = tuple(t for t in node.inputs if not graph.is_const(t))
            events.setdefault(key, []).append(n)
    keys = list(events)
    ev_bits = [sum(1 << index[c] for c in events[k]) for k in keys]
    ev_anc: list[set[int]] = []
    for i, k in enumerate(keys):
        reach = 0
        for c in events[k]:
            reach |= anc[c]
        ev_anc.append({j for j in range(len(keys)) if j != i and ev_bits[j] & reach})
    parent: list[int | None] = []
    for i in range(len(keys)):
        if not ev_anc[i]:
            parent.append(None)
            continue
        up = max(ev_anc[i], key=lambda j: len(ev_anc[j]))
        if ev_anc[i] != ev_anc[up] | {up}:  # the spikes of two neurons meet: not one chain
            raise _not_one_neuron(len(inputs), len(outputs), where)
        parent.append(up)
    children = {i: [j for j in range(len(keys)) if parent[j] == i] for i in range(len(keys))}
    paths = []
    for leaf in (i for i in range(len(keys)) if not children[i]):
        path = [leaf]
        while parent[path[-1]] is not None:
            path.append(parent[path[-1]])  # type: ignore[arg-type]
        paths.append(path[::-1])
    paths.sort(key=lambda p: min(index[c] for c in events[keys[p[-1]]]))
    compare_event = {c: i for i, k in enumerate(keys) for c in events[k]}

    def events_of(t: str) -> set[int]:
        p = graph.producer(t)
        bits = anc[p.name] if p is not None else 0
        return {j for j in range(len(keys)) if ev_bits[j] & bits}

    # Each boundary output goes to the neuron(s) whose events explain it; one shared by
    # several (a CSE'd prefix) goes to the neuron whose other outputs share its sink.
    spike_event = {o: compare_event.get(_compare_of(graph, o, members) or "") for o in outputs}
    candidates = {}
    for o in outputs:
        evs = events_of(o)
        if spike_event[o] is not None:
            evs.add(spike_event[o])
        candidates[o] = [k for k, p in enumerate(paths) if evs <= set(p)]
        if not candidates[o]:
            raise _not_one_neuron(len(inputs), len(outputs), where)
    owner = {o: c[0] for o, c in candidates.items() if len(c) == 1}
    for o, cands in candidates.items():
        if o not in owner:
            mine = _sinks(graph, o, members)
            owner[o] = next(
                (k for k in cands if any(_sinks(graph, q, members) & mine for q, kq in owner.items() if kq == k)),
                cands[0],
            )
    comps = []
    for k, path in enumerate(paths):
        outs = [o for o in outputs if owner[o] == k]
        if not outs:  # every output of this chain is an equal one of a sibling's
            continue
        bits = 0
        for o in outs:
            bits |= anc[graph.producer(o).name]  # type: ignore[union-attr]
        mine = [n for n in nodes if bits >> index[n] & 1]
        path_events = [[c for c in events[keys[i]] if bits >> index[c] & 1] for i in path]
        if not all(path_events):
            raise _not_one_neuron(len(inputs), len(outputs), where)
        comps.append(_neuron(graph, mine, inputs, outs, path_events, deps, spike_event, path))
    return comps


def _sinks(graph: Graph, tensor: str, members: set[str]) -> set[str]:
    """The nodes outside the component that consume a tensor (looking through Unsqueeze)."""
    out = set()
    for c in graph.consumers(tensor):
        if c.name in members:
            continue
        if c.op == "Unsqueeze":
            out |= {d.name for d in graph.consumers(c.outputs[0])}
        else:
            out.add(c.name)
    return out


def _neuron(
    graph: Graph,
    nodes: list[str],
    all_inputs: list[str],
    outs: list[str],
    path_events: list[list[str]],
    deps: dict[str, frozenset[str]],
    spike_event: dict[str, int | None],
    path: list[int],
) -> Component:
    """Order one neuron's inputs and outputs in time and classify its outputs."""
    where = _names(graph, nodes)
    used = {t for n in nodes for t in graph.node(n).inputs}
    inputs = [x for x in all_inputs if x in used]
    T = len(inputs)
    anchors = [deps[graph.node(ev[0]).outputs[0]] for ev in path_events] + [deps[o] for o in outs]
    levels = sorted(set(anchors), key=len)
    if [len(lv) for lv in levels] != list(range(1, T + 1)) or any(
        not a < b for a, b in zip(levels, levels[1:], strict=False)
    ):
        raise _not_one_neuron(T, len(outs), where)
    inputs = [next(iter(levels[0]))] + [next(iter(b - a)) for a, b in zip(levels, levels[1:], strict=False)]
    ev_steps = [len(deps[graph.node(ev[0]).outputs[0]]) - 1 for ev in path_events]
    K = len(path_events)
    spikes: list[list[str]] = [[] for _ in range(T)]
    membranes: list[list[str]] = [[] for _ in range(T)]
    step_of_event = dict(zip(path, ev_steps, strict=True))
    for o in outs:
        t = len(deps[o]) - 1
        e = spike_event[o]
        if e is not None and e in step_of_event:
            if step_of_event[e] != t:
                raise _not_one_neuron(T, len(outs), where)
            spikes[t].append(o)
        else:
            membranes[t].append(o)
    if ev_steps != list(range(K)) or not (K == T or (K == T - 1 and membranes[T - 1])):
        raise _not_one_neuron(T, len(outs), where)
    compares = [list(ev) for ev in path_events] + [[]] * (T - K)
    watch = [_threshold_and_margin(graph, graph.node(ev[0]))[2] for ev in path_events]
    if K < T:
        watch.append(membranes[T - 1][0])
    return Component(nodes, inputs, spikes, membranes, compares, watch)


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

    def __init__(self, graph: Graph, comp: Component) -> None:
        self.graph, self.comp = graph, comp
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

    def run(self, xs: list[np.ndarray], read: list[str]) -> list[np.ndarray]:
        """The values of the tensors `read` (float64) when the inputs are xs."""
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
        return [np.asarray(env[t], np.float64) for t in read]


def _fit(graph: Graph, comp: Component, ctx: Context) -> LIFParams:
    where = _names(graph, comp.nodes)
    T = len(comp.inputs)
    ths, cmps = [], []
    for c in (c for step in comp.compares for c in step):
        th, cmpop, _, _ = _threshold_and_margin(graph, graph.node(c))
        ths.append(th)
        cmps.append(cmpop)
    if len(set(ths)) != 1 or len(set(cmps)) != 1:
        raise NeuronError(f"cannot lift spiking nonlinearity: thresholds or comparisons differ across time steps (nodes {where})")
    th, comparison = ths[0], cmps[0]
    shapes = {tuple(graph.shape(x) or ()) for x in comp.inputs}
    if len(shapes) != 1:
        raise NeuronError(f"cannot lift spiking nonlinearity: input currents differ in shape (nodes {where})")
    probe = _Probe(graph, comp)
    shape = probe.shape

    scalar_shape = (1,) * len(shape)  # broadcasts against per-channel / batch constants

    def h(xs_scalar: list[float]) -> list[float]:
        mem = probe.run([np.full(scalar_shape, v, np.float64) for v in xs_scalar], comp.watch)
        return [float(m.reshape(-1)[0]) for m in mem]

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
    tau = _snap_tau(tau, decay_input, beta_in, alpha)
    th = _snap(th)
    if reset_by is not None:
        # snnTorch's subtract reset is thr/beta in this form: keep it exact, not rounded
        beta = 1.0 - 1.0 / tau if math.isfinite(tau) else 1.0
        nice = [th, th / beta] if beta > 0 else [th]
        reset_by = next((c for c in nice if abs(reset_by - c) <= SNAP_RTOL * abs(c)), _snap(reset_by, scale))
    params = LIFParams(
        tau=tau,
        v_threshold=th,
        v_reset=None if v_reset is None else _snap(v_reset, scale),
        decay_input=decay_input,
        comparison=comparison,
        reset_by=reset_by,
        v_init=_snap(v_init, scale),
    )
    _validate(graph, comp, probe, params, where, ctx.rng)
    return params


def _snap(v: float, scale: float = 0.0) -> float:
    """The shortest decimal with the same float32 value as v: the probe computes in
    float64 on the graph's float32 constants, so 0.30000001192 (float32 0.3) and
    2.0000000000000004 are 0.3 and 2.0 — the value the user wrote, exact in float32.
    A value within float64 noise of 0 at this scale (a v_reset of -1.7e-16) is 0."""
    if not math.isfinite(v) or abs(v) <= 1e-12 * scale:
        return 0.0 if math.isfinite(v) else v
    f32 = np.float32(v)
    for digits in range(1, 10):
        c = float(f"{v:.{digits}g}")
        if np.float32(c) == f32:
            return c
    return v


def _snap_tau(tau: float, decay_input: bool, beta_in: float, alpha: float) -> float:
    """tau, read from whichever constant the graph holds: tau itself (SpikingJelly divides,
    `Div(·, 3.0)`), 1/tau (PLIF multiplies the input by sigmoid(w)) or beta (snnTorch
    multiplies the membrane, `Mul(0.9, ·)`: float32 0.9 gives tau 9.9999976 but beta 0.9).
    Each reading is snapped (`_snap`); the shortest decimal wins."""
    if not math.isfinite(tau):
        return tau
    cands = [_snap(tau)]
    k = _snap(beta_in) if decay_input else 1.0 - _snap(alpha)
    if k > 0:
        cands.append(float(f"{1.0 / k:.12g}"))  # drop the float64 noise of the division
    return min(cands, key=lambda c: len(repr(c)))


def _validate(graph: Graph, comp: Component, probe: _Probe, p: LIFParams, where: str,
              rng: np.random.Generator) -> None:
    """Simulate the fitted LIF against the component on random currents: its spikes (the
    compares of every step) and its membrane outputs (h_t) must agree."""
    T = len(comp.inputs)
    scale = max(1.0, abs(p.v_threshold))
    shape = (T,) + probe.probe_shape
    x = rng.normal(0.0, 1.0, size=shape) * scale
    x += rng.choice([0.0, 1.0, 2.0], size=shape) * scale  # spike-count-like currents
    spiking = [(t, graph.node(c).outputs[0]) for t, cs in enumerate(comp.compares) for c in cs]
    spiking += [(t, s) for t, ss in enumerate(comp.spikes) for s in ss]
    mems = [(t, m) for t, ms in enumerate(comp.membranes) for m in ms]
    got = probe.run([x[t] for t in range(T)], [s for _, s in spiking] + [m for _, m in mems])
    want_s, want_h = lif_numpy(x, p, return_membrane=True)
    agree = [got[i] == want_s[t] for i, (t, _) in enumerate(spiking)]
    rate = float(np.mean(np.concatenate([a.reshape(-1) for a in agree])))
    if rate < AGREEMENT:
        raise NeuronError(
            f"cannot lift spiking nonlinearity: fitted LIF reproduces only {rate:.1%} of its spikes (nodes {where})"
        )
    for i, (t, m) in enumerate(mems):
        h = got[len(spiking) + i]
        close = float(np.mean(np.isclose(h, want_h[t], rtol=1e-5, atol=1e-6 * scale)))
        if close < AGREEMENT:
            raise NeuronError(
                f"cannot lift spiking nonlinearity: output {m!r} is neither a spike nor the membrane "
                f"of the neuron (nodes {where})"
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


def _lift(graph: Graph, comp: Component, params: LIFParams, name: str, members: set[str]) -> str:
    """Replace the neuron's nodes by `S[, M] = LIF(X)`; members: every node of its component."""
    T = len(comp.inputs)
    xshape = tuple(graph.shape(comp.inputs[0]))
    ts = _time_source(graph, comp.inputs)
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
    kinds = [comp.spikes] + ([comp.membranes] if any(comp.membranes) else [])
    sinks = [
        _stack_sink(graph, [o[0] for o in per_step], axis, members) if all(len(o) == 1 for o in per_step) else None
        for per_step in kinds
    ]
    for nid in comp.nodes:
        if nid in graph.g:  # a prefix shared with a sibling neuron goes with the first
            graph.remove_node(nid)
    outs = []
    for sink, suffix in zip(sinks, ("S", "M"), strict=False):
        if sink is not None:
            outs.append(graph.node(sink).outputs[0])
            graph.remove_node(sink)
        else:
            outs.append(graph.fresh(f"{name}.{suffix}"))
            graph.values[outs[-1]] = Value(tuple(graph.shape(X)), "float32")
    p = LIFParams(**{**params.__dict__, "time_axis": axis})
    graph.add_node("LIF", [X], outs, p.to_attrs(), name=name, domain="ai.hqc")
    for out, sink, per_step, kind in zip(outs, sinks, kinds, ("step", "mem"), strict=False):
        if sink is not None:
            continue
        for t, tensors in enumerate(per_step):
            for s in tensors:
                idx = graph.add_const(graph.fresh(f"{name}.t"), np.array(t, np.int64))
                graph.add_node("Gather", [out, idx], [s], {"axis": axis}, name=f"{name}.{kind}{t}")
                graph.values[s] = Value(xshape, "float32")
    return name


def _module_of(graph: Graph, comp: Component) -> str | None:
    """The torch module of the neuron when the exporter recorded it (most of its nodes)."""
    counts: dict[str, int] = {}
    for nid in comp.nodes:
        m = module_path(graph.node(nid))
        if m:
            counts[m] = counts.get(m, 0) + 1
    return max(sorted(counts), key=lambda k: counts[k]) if counts else None


@register
class RecognizeNeurons(Pass):
    name = "recognize-neurons"

    def run(self, graph: Graph, ctx: Context) -> PassResult:
        lifted: list[str] = []
        for nodes in _components(graph):
            neurons = _neurons(graph, nodes)
            # fit and name them all before any lift: siblings may share a prefix of nodes
            fitted = [(comp, _fit(graph, comp, ctx), _module_of(graph, comp)) for comp in neurons]
            for comp, params, module in fitted:
                name = module or f"lif_{len(lifted)}"
                name = name if name not in graph.g else graph.fresh(name)
                lifted.append(_lift(graph, comp, params, name, set(nodes)))
        dead = graph.remove_dead()
        if lifted:
            from hqc.shapes import infer_shapes

            infer_shapes(graph)
        existing = sum(1 for n in graph.nodes() if n.op == "LIF")
        return PassResult(graph, bool(lifted), {"lifted": len(lifted), "neurons": existing, "dead": dead, "nodes": len(graph)})
