"""The numpy integer reference: it *defines* the semantics of the lowered IR (`ai.hqc.int`).

Every tensor is int64; every op is exact integer arithmetic, declared once in
`hqc.intops` (each op's `ref`; the op table is in that package's docstring and in
docs/lowering.md). `run(graph, x)` takes a stack of model inputs (G, *input shape) and
returns the outputs stacked the same way.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from hqc.errors import ModelError
from hqc.intops import INT_DOMAIN, op_of
from hqc.intops.neuron import lif_int
from hqc.intops.pool import maxpool_int
from hqc.intops.weights import conv_int, imatmul
from hqc.ir import Graph, Value

log = logging.getLogger(__name__)

__all__ = ["INT_DOMAIN", "conv_int", "imatmul", "lif_int", "load_lowered", "maxpool_int", "run", "save_lowered"]


def run(graph: Graph, x: np.ndarray, names: list[str] | None = None, engine: str = "auto") -> list[np.ndarray]:
    """Lowered graph + inputs (G, *input_shape) (integer-valued) → the named tensors
    (default: the graph outputs), each (G, *shape), int64.

    Pre: `graph` came from lower-int (or `load_lowered`). Raises ModelError when an input
    is not integer-valued or has the wrong shape.
    """
    xin = np.asarray(x)
    shape = tuple(graph.shape(graph.inputs[0]) or ())
    if tuple(xin.shape[1:]) != shape:
        raise ModelError(f"integer reference: input groups have shape {list(xin.shape[1:])}; "
                         f"the model expects {list(shape)}")
    if xin.dtype.kind == "f":
        if not np.all(np.isfinite(xin)) or not np.all(xin == np.round(xin)):
            raise ModelError("integer reference: the input is not integer-valued")
    env: dict[str, np.ndarray] = {graph.inputs[0]: xin.astype(np.int64)}
    for node in graph.nodes():
        out = op_of(node).ref(node, [env[t] for t in node.inputs], engine)
        outs = out if isinstance(out, tuple) else (out,)
        for t, v in zip(node.outputs, outs, strict=True):
            env[t] = v
    return [env[t] for t in (names or graph.outputs)]


# --------------------------------------------------------------------------- persistence
def save_lowered(graph: Graph, path: str | Path) -> None:
    """Write the lowered IR as an ONNX container (custom domain ai.hqc.int; not runnable by
    onnxruntime — that is model.int.onnx)."""
    from hqc.onnx_io import to_proto

    proto = to_proto(graph)
    meta = {k: v for k, v in graph.meta.items() if k in ("bounds",)}
    helper.set_model_props(proto, {"hqc.lowered": json.dumps(meta, sort_keys=True)})
    onnx.save(proto, str(path))


def load_lowered(path: str | Path) -> Graph:
    """Read a lowered IR written by `save_lowered`."""
    try:
        model = onnx.load(str(path))
    except Exception as exc:
        raise ModelError(f"{path}: not a readable lowered model ({type(exc).__name__})") from None
    g = Graph(name=model.graph.name, opset=17)
    for vi in list(model.graph.input) + list(model.graph.output) + list(model.graph.value_info):
        tt = vi.type.tensor_type
        dims = tuple(int(d.dim_value) for d in tt.shape.dim)
        g.values[vi.name] = Value(dims, str(helper.tensor_dtype_to_np_dtype(tt.elem_type)))
    g.inputs = [i.name for i in model.graph.input]
    for n in model.graph.node:
        attrs = {}
        for a in n.attribute:
            v = helper.get_attribute_value(a)
            if isinstance(v, onnx.TensorProto):
                v = numpy_helper.to_array(v)
            elif isinstance(v, bytes):
                v = v.decode("utf-8")
            elif isinstance(v, list) and v and isinstance(v[0], bytes):
                v = [s.decode("utf-8") for s in v]
            attrs[a.name] = v
        g.add_node(n.op_type, list(n.input), list(n.output), attrs, name=n.name, domain=n.domain)
    g.outputs = [o.name for o in model.graph.output]
    props = {p.key: p.value for p in model.metadata_props}
    if "hqc.lowered" in props:
        meta = json.loads(props["hqc.lowered"])
        g.meta["bounds"] = {k: tuple(v) for k, v in meta.get("bounds", {}).items()}
    g.meta["lowered"] = True
    return g
