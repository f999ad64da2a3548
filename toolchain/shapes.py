"""Static shape inference for the IR.

Order of attempts: ONNX's own shape inference (with data propagation); hqc's rules for
its own ops (LIF: output = input); for whatever is still unknown, one onnxruntime run
on zero inputs at the declared input shapes, reading every unknown tensor's shape.
Symbolic input dimensions are specialized to 1 (the backend runs any batch size).
"""

from __future__ import annotations

import logging

import numpy as np
import onnx
from onnx import helper

from hqc.errors import ModelError
from hqc.ir import Graph, Value
from hqc.onnx_io import _value_of, to_proto

log = logging.getLogger(__name__)

MAX_INPUT_ELEMENTS = 1 << 26  # one export-batch input; larger is refused before allocation


def _unknown(graph: Graph) -> list[str]:
    out = []
    for nid in graph.topo_order():
        for t in graph.node(nid).outputs:
            if t and t not in graph.constants:
                v = graph.values.get(t)
                if v is None or not v.static or v.dtype is None:
                    out.append(t)
    return out


def _fix_inputs(graph: Graph) -> bool:
    changed = False
    for t in graph.inputs:
        v = graph.values.get(t)
        if v is None or v.shape is None:
            raise ModelError(f"input {t!r} has no declared shape; export the model with a static input shape")
        if any(d is None for d in v.shape):
            graph.values[t] = Value(tuple(1 if d is None else d for d in v.shape), v.dtype or "float32")
            log.info("input %s: symbolic dims specialized to 1", t)
            changed = True
        if any(d == 0 for d in graph.values[t].shape):
            raise ModelError(f"input {t!r} declares a zero-size dimension {list(v.shape)}")
        n = int(np.prod([d or 1 for d in graph.values[t].shape], dtype=np.float64))
        if n > MAX_INPUT_ELEMENTS:
            raise ModelError(f"input {t!r} declares shape {list(v.shape)} ({n} elements per call), over the limit of {MAX_INPUT_ELEMENTS}")
    return changed


def _hqc_rules(graph: Graph) -> bool:
    changed = False
    for n in graph.nodes():
        if n.domain == "ai.hqc" and n.op == "LIF":
            src = graph.values.get(n.inputs[0]) or Value(graph.shape(n.inputs[0]), "float32")
            if src.shape is not None:
                for o in n.outputs:
                    new = Value(tuple(src.shape), "float32")
                    if graph.values.get(o) != new:
                        graph.values[o] = new
                        changed = True
    return changed


def _onnx_infer(graph: Graph) -> bool:
    changed = False
    try:
        model = onnx.shape_inference.infer_shapes(to_proto(graph), data_prop=True)
    except Exception as exc:  # ONNX inference is best effort; ORT fills the rest
        log.debug("onnx shape inference failed: %s", exc)
        return False
    for vi in list(model.graph.value_info) + list(model.graph.output):
        if vi.name in graph.constants:
            continue
        new = _value_of(vi)
        old = graph.values.get(vi.name)
        if new.static and new.dtype and (old is None or not old.static or old != new):
            graph.values[vi.name] = new
            changed = True
        elif new.dtype and (old is None or old.dtype is None):
            graph.values[vi.name] = Value(old.shape if old else None, new.dtype)
            changed = True
    return changed


def _ort_infer(graph: Graph, names: list[str]) -> bool:
    import onnxruntime as ort

    if any(n.domain for n in graph.nodes()):
        return False
    model = to_proto(graph)
    del model.graph.output[:]
    typed: list[str] = []
    for t in list(graph.outputs) + names:
        dt = graph.dtype(t)
        if dt is None:
            continue
        model.graph.output.append(helper.make_tensor_value_info(t, helper.np_dtype_to_tensor_dtype(np.dtype(dt)), None))
        typed.append(t)
    keep = {vi.name for vi in model.graph.value_info if vi.name not in typed}
    vis = [vi for vi in model.graph.value_info if vi.name in keep]
    del model.graph.value_info[:]
    model.graph.value_info.extend(vis)
    feeds = {}
    for t in graph.inputs:
        v = graph.values[t]
        feeds[t] = np.zeros(v.shape, dtype=v.dtype or "float32")
    try:
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        outs = sess.run(typed, feeds)
    except Exception as exc:
        raise ModelError(f"cannot resolve tensor shapes: onnxruntime failed on the model ({str(exc).splitlines()[0]})") from exc
    changed = False
    for t, a in zip(typed, outs, strict=True):
        new = Value(tuple(int(d) for d in a.shape), str(a.dtype))
        if graph.values.get(t) != new:
            graph.values[t] = new
            changed = True
    return changed


def infer_shapes(graph: Graph, strict: bool = True) -> bool:
    """Fill `graph.values` with static shapes and dtypes; returns whether anything changed.
    With strict=False, tensors left unknown are not an error (a later fold may fix them)."""
    changed = _fix_inputs(graph)
    if not _unknown(graph):
        return changed
    for _ in range(3):
        step = _onnx_infer(graph)
        step |= _hqc_rules(graph)
        changed |= step
        if not step or not _unknown(graph):
            break
    missing = _unknown(graph)
    if missing and strict:
        changed |= _ort_infer(graph, missing)
        changed |= _hqc_rules(graph)
    missing = _unknown(graph)
    if missing and strict:
        raise ModelError(f"cannot resolve the static shape of {len(missing)} tensor(s), e.g. {missing[0]!r}")
    return changed
