"""ONNX ↔ IR. Import reads a model file (and its external data beside it) into a `Graph`;
export writes a `Graph` back as an ONNX `ModelProto` that onnxruntime runs.

Supported: opsets 13–23 of the default domain, the custom domain `ai.hqc` (op `LIF`),
models from both `torch.onnx.export` exporters (dynamo: local functions are inlined,
node metadata kept for layer names; TorchScript: Constant nodes become constants).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from hqc.errors import HqcError, ModelError, UnsupportedOpError
from hqc.ir import Graph, Value

log = logging.getLogger(__name__)

HQC_DOMAIN = "ai.hqc"
MIN_OPSET, MAX_OPSET = 13, 23
# Node metadata the dynamo exporter writes; we keep only what names torch modules.
KEPT_META = ("pkg.torch.onnx.name_scopes", "namespace")
# Refuse to materialize a declared tensor larger than this (bytes).
MAX_TENSOR_BYTES = 2 << 30

SUPPORTED_OPS = frozenset(
    """Abs Add And AveragePool BatchNormalization Cast Clip Concat Constant ConstantOfShape
    Conv Div Dropout Equal Erf Exp Expand Flatten Gather Gemm GlobalAveragePool Greater
    GreaterOrEqual Identity LayerNormalization Less LessOrEqual MatMul Max MaxPool Min Mod Mul Neg
    Not Or Pad Pow Range ReduceMax ReduceMean ReduceSum Relu Reshape Shape Sigmoid Sign Slice
    Softmax Split Sqrt Squeeze Sub Tanh Tile Transpose Unsqueeze Where Xor""".split()
)
HQC_OPS = frozenset({"LIF"})


def _np_dtype(elem_type: int) -> str:
    return str(np.dtype(helper.tensor_dtype_to_np_dtype(elem_type)))


def _tensor_to_numpy(t: onnx.TensorProto, where: str) -> np.ndarray:
    n = 1
    for d in t.dims:
        if d < 0:
            raise ModelError(f"{where}: tensor {t.name!r} has a negative dimension {list(t.dims)}")
        n *= d
    try:
        itemsize = np.dtype(helper.tensor_dtype_to_np_dtype(t.data_type)).itemsize
    except (KeyError, TypeError, ValueError):
        raise ModelError(f"{where}: tensor {t.name!r} has an unknown data type {t.data_type}") from None
    if n * itemsize > MAX_TENSOR_BYTES:
        raise ModelError(f"{where}: tensor {t.name!r} declares {list(t.dims)} ({n * itemsize} bytes), over the limit")
    try:
        return np.array(numpy_helper.to_array(t))
    except Exception as exc:  # onnx raises assorted errors on corrupt tensors
        raise ModelError(f"{where}: tensor {t.name!r} cannot be read ({type(exc).__name__}: {exc})") from exc


def _attr_value(a: onnx.AttributeProto, where: str) -> Any:
    if a.type == onnx.AttributeProto.TENSOR:
        return _tensor_to_numpy(a.t, where)
    if a.type == onnx.AttributeProto.GRAPH or a.type == onnx.AttributeProto.GRAPHS:
        raise UnsupportedOpError(f"{where}: subgraph attribute {a.name!r} (control flow) is not supported")
    v = helper.get_attribute_value(a)
    if isinstance(v, bytes):
        return v.decode("utf-8", errors="replace")
    if isinstance(v, list) and v and isinstance(v[0], bytes):
        return [x.decode("utf-8", errors="replace") for x in v]
    if isinstance(v, list):
        return list(v)
    return v


def _load_external(model: onnx.ModelProto, base: Path, where: str) -> None:
    """Load external tensor data, confined to the model's folder."""
    root = base.resolve()
    for t in _all_tensors(model):
        if t.data_location != onnx.TensorProto.EXTERNAL:
            continue
        info = {e.key: e.value for e in t.external_data}
        loc = info.get("location", "")
        target = (root / loc).resolve()
        if not loc or os.path.isabs(loc) or root not in target.parents:
            raise ModelError(f"{where}: external data {loc!r} of tensor {t.name!r} lies outside the model's folder")
        if not target.is_file():
            raise ModelError(f"{where}: external data file {loc!r} of tensor {t.name!r} is missing")
        offset = int(info.get("offset", 0) or 0)
        length = info.get("length")
        size = target.stat().st_size
        n = int(length) if length is not None else size - offset
        if offset < 0 or n < 0 or offset + n > size:
            raise ModelError(f"{where}: external data {loc!r} of tensor {t.name!r} is truncated")
        if n > MAX_TENSOR_BYTES:
            raise ModelError(f"{where}: external data of tensor {t.name!r} is over the size limit")
        with open(target, "rb") as f:
            f.seek(offset)
            t.raw_data = f.read(n)
        del t.external_data[:]
        t.data_location = onnx.TensorProto.DEFAULT


def _all_tensors(model: onnx.ModelProto):
    yield from model.graph.initializer
    for n in model.graph.node:
        for a in n.attribute:
            if a.type == onnx.AttributeProto.TENSOR:
                yield a.t


def load_onnx(path: str | os.PathLike) -> onnx.ModelProto:
    """Read an ONNX file with its external data; a clear `ModelError` on any failure."""
    p = Path(path)
    where = str(p)
    if not p.is_file():
        raise ModelError(f"{where}: no such file")
    try:
        model = onnx.load(str(p), load_external_data=False)
    except Exception as exc:
        raise ModelError(f"{where}: not a readable ONNX model ({type(exc).__name__})") from exc
    if not model.graph.node and not model.graph.output:
        raise ModelError(f"{where}: not an ONNX model (empty graph)")
    _load_external(model, p.parent, where)
    return model


def import_model(path: str | os.PathLike) -> Graph:
    """ONNX file → IR graph."""
    model = load_onnx(path)
    try:
        return from_proto(model, where=str(path))
    except HqcError:
        raise
    except (KeyError, ValueError, TypeError, IndexError, ZeroDivisionError, OverflowError, AttributeError) as exc:
        # a protobuf that parses but holds values no valid model has (unknown dtypes,
        # inconsistent dims, …)
        raise ModelError(f"{path}: malformed model ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from exc


def from_proto(model: onnx.ModelProto, where: str = "model") -> Graph:
    """ONNX ModelProto → IR graph (inlines local functions, lifts Constant nodes)."""
    opset = None
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx"):
            opset = imp.version
    if opset is None:
        raise ModelError(f"{where}: no default-domain opset import")
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise ModelError(f"{where}: opset {opset} is not supported (supported: {MIN_OPSET}–{MAX_OPSET})")
    if model.functions:
        try:
            import onnx.inliner

            model = onnx.inliner.inline_local_functions(model)
        except Exception as exc:
            raise ModelError(f"{where}: cannot inline local functions ({exc})") from exc
    try:
        inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception as exc:
        log.debug("onnx shape inference failed: %s", exc)
        inferred = model
    gp = inferred.graph

    g = Graph(name=gp.name or Path(where).stem, opset=opset)
    g.meta["producer"] = f"{model.producer_name} {model.producer_version}".strip()
    g.meta["source"] = where

    for init in gp.initializer:
        arr = _tensor_to_numpy(init, where)
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise ModelError(f"{where}: initializer {init.name!r} contains NaN or Inf")
        g.add_const(init.name, arr)
    for vi in list(gp.value_info) + list(gp.input) + list(gp.output):
        if vi.name in g.constants:
            continue
        g.values[vi.name] = _value_of(vi)
    g.inputs = [i.name for i in gp.input if i.name not in g.constants]
    if not g.inputs:
        raise ModelError(f"{where}: the model has no inputs")

    seen: set[str] = set()
    for i, n in enumerate(gp.node):
        op, domain = n.op_type, n.domain
        label = n.name or f"{op}_{i}"
        nwhere = f"{where}: node {label!r} ({op})"
        if domain in ("", "ai.onnx"):
            if op not in SUPPORTED_OPS:
                raise UnsupportedOpError(f"{where}: unsupported op {op!r} (node {label!r})")
            domain = ""
        elif domain == HQC_DOMAIN:
            if op not in HQC_OPS:
                raise UnsupportedOpError(f"{where}: unsupported op {domain}::{op} (node {label!r})")
        else:
            raise UnsupportedOpError(f"{where}: unsupported op {domain}::{op} (node {label!r})")
        attrs = {a.name: _attr_value(a, nwhere) for a in n.attribute}
        if op == "Constant":
            g.add_const(n.output[0], _constant_value(attrs, nwhere))
            continue
        name = label if label not in seen else f"{label}__{i}"
        seen.add(name)
        meta = {p.key: p.value for p in n.metadata_props if p.key in KEPT_META}
        g.add_node(op, list(n.input), list(n.output), attrs, name=name, domain=domain, meta=meta)
        for t in n.input:
            if t and t not in g.constants and t not in g.values and t not in g.inputs:
                g.values[t] = Value()
    for t in [o.name for o in gp.output]:
        g.outputs.append(t)
    _check_defined(g, where)
    return g


def _check_defined(g: Graph, where: str) -> None:
    produced = {t for n in g.g.nodes for t in g.node(n).outputs}
    known = produced | set(g.constants) | set(g.inputs)
    for nid in g.g.nodes:
        for t in g.node(nid).inputs:
            if t and t not in known:
                raise ModelError(f"{where}: node {nid!r} reads {t!r}, which no node, input or initializer defines")
    for t in g.outputs:
        if t not in known:
            raise ModelError(f"{where}: graph output {t!r} is not produced by any node")
    import networkx as nx

    if not nx.is_directed_acyclic_graph(g.g):
        cycle = nx.find_cycle(g.g)
        raise ModelError(f"{where}: the graph has a cycle through node {cycle[0][0]!r}")


def _constant_value(attrs: dict[str, Any], where: str) -> np.ndarray:
    if "value" in attrs:
        return np.asarray(attrs["value"])
    if "value_float" in attrs:
        return np.array(attrs["value_float"], dtype=np.float32)
    if "value_floats" in attrs:
        return np.array(attrs["value_floats"], dtype=np.float32)
    if "value_int" in attrs:
        return np.array(attrs["value_int"], dtype=np.int64)
    if "value_ints" in attrs:
        return np.array(attrs["value_ints"], dtype=np.int64)
    raise UnsupportedOpError(f"{where}: Constant with attributes {sorted(attrs)} is not supported")


def _value_of(vi: onnx.ValueInfoProto) -> Value:
    tt = vi.type.tensor_type
    if not vi.type.HasField("tensor_type"):
        return Value()
    dtype = _np_dtype(tt.elem_type) if tt.elem_type else None
    if not tt.HasField("shape"):
        return Value(None, dtype)
    dims: list[int | None] = []
    for d in tt.shape.dim:
        dims.append(d.dim_value if d.HasField("dim_value") and d.dim_value >= 0 else None)
    return Value(tuple(dims), dtype)


# ---------------------------------------------------------------------- export
def _attr_proto(name: str, v: Any) -> onnx.AttributeProto:
    if isinstance(v, np.ndarray):
        return helper.make_attribute(name, numpy_helper.from_array(v))
    if isinstance(v, (bool, np.bool_)):
        return helper.make_attribute(name, int(v))
    if isinstance(v, np.generic):
        return helper.make_attribute(name, v.item())
    return helper.make_attribute(name, v)


def to_proto(graph: Graph, extra_outputs: list[str] | None = None) -> onnx.ModelProto:
    """IR graph → ONNX ModelProto (constants as initializers, known shapes as value_info)."""
    nodes = []
    domains = {"": graph.opset}
    for n in graph.nodes():
        attrs = [_attr_proto(k, v) for k, v in n.attrs.items()]
        proto = helper.make_node(n.op, n.inputs, n.outputs, name=n.name, domain=n.domain or None)
        proto.attribute.extend(attrs)
        nodes.append(proto)
        if n.domain:
            domains.setdefault(n.domain, 1)
    inits = [numpy_helper.from_array(np.asarray(a), name) for name, a in sorted(graph.constants.items())]

    def vinfo(t: str) -> onnx.ValueInfoProto:
        v = graph.values.get(t, Value())
        dt = v.dtype or "float32"
        elem = helper.np_dtype_to_tensor_dtype(np.dtype(dt))
        shape = None if v.shape is None else [d if d is not None else None for d in v.shape]
        return helper.make_tensor_value_info(t, elem, shape)

    outs = list(graph.outputs) + [t for t in (extra_outputs or []) if t not in graph.outputs]
    value_info = [
        vinfo(t)
        for t in sorted(graph.values)
        if t not in graph.inputs and t not in outs and graph.values[t].dtype is not None and graph.producer(t)
    ]
    gp = helper.make_graph(
        nodes, graph.name or "hqc", [vinfo(t) for t in graph.inputs], [vinfo(t) for t in outs], inits, value_info=value_info
    )
    model = helper.make_model(
        gp,
        opset_imports=[helper.make_opsetid(d, v) for d, v in sorted(domains.items())],
        producer_name="hqc",
    )
    model.ir_version = min(model.ir_version, 10)
    return model


def save_onnx(graph: Graph, path: str | os.PathLike) -> None:
    onnx.save(to_proto(graph), str(path))
