"""`hqc export DIR --format qdq`: the lowered model as standard quantized ONNX.

    lowering folder (lowering.json, lowered.onnx) + the float model it lowered
        → model.qdq.onnx: the float model's graph (its unrolled LIF chains as they are),
          every quantized weight initializer W replaced by
          DequantizeLinear(w, unit, axis = output channel) with w the lowered integers
          (int4 when |w| ≤ 7, int8 when ≤ 127, else int16) and unit the per-channel unit of
          `hqc.quant` (uniform: s_c; power-of-two: s_c·2^−kmax), so DQ(w) = Q_c(W) bit for
          bit: the fake-quant float model in an ONNX file onnxruntime runs.

Pre: DIR was written by `hqc lower` / `hqc compile`; its source model (DIR/model.qat.onnx,
else the path in lowering.json) is unchanged (fingerprint). Post: onnx.checker passes,
onnxruntime opens the file; nothing is written on error. See docs/export.md.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from hqc.errors import ConfigError, DataError, ModelError

log = logging.getLogger(__name__)

QDQ_ONNX = "model.qdq.onnx"
QDQ_OPSET = 21  # DequantizeLinear on int4 / int16 weights

_DTYPES = ((7, TensorProto.INT4, "int4", 4), (127, TensorProto.INT8, "int8", 8), (32767, TensorProto.INT16, "int16", 16))


@dataclass
class QdqLayer:
    """One weight layer of the exported model: its quantizer and how its weight is stored."""

    name: str
    quantizer: str
    storage: str  # int4 | int8 | int16 | float32
    params: int
    weight_bytes: int


@dataclass
class QdqResult:
    """What `export_qdq` wrote."""

    path: Path
    source: Path
    opset: int
    bytes: int
    int_onnx_bytes: int
    layers: list[QdqLayer] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["path"], d["source"] = str(self.path), str(self.source)
        return d


# --------------------------------------------------------------------------- the folder
def read_lowering(directory: str | Path) -> tuple[dict[str, Any], Path]:
    """A lowering folder → (lowering.json document, the float model it lowered).

    The model is the path recorded in lowering.json, or, when that is gone, the file of the
    same name in DIR (a `hqc compile` folder lowers DIR/model.qat.onnx under a temporary
    name; the rule of `hqc verify`); its fingerprint must match the record (ConfigError)."""
    from hqc.lowerdir import lowered_source, read_lowering_doc

    d = Path(directory)
    if not d.is_dir():
        raise ConfigError(f"{d}: no such folder (expected the output folder of hqc lower or hqc compile)")
    doc = read_lowering_doc(d)
    src = lowered_source(doc, d, f"export {d}")
    return doc, src


def lowered_weights(directory: str | Path) -> dict[str, np.ndarray]:
    """Per weight layer of DIR/lowered.onnx: its integer weights w (PyTorch layout; fp32
    layers: their float weights)."""
    from hqc import intref

    g = intref.load_lowered(Path(directory) / "lowered.onnx")
    out = {}
    for node in g.nodes():
        if node.op in ("QConv", "QLinear"):
            a = node.attrs
            out[a["layer"]] = np.asarray(a["w_float"] if a["quant"] == "fp32" else a["w"])
    return out


def channel_units(w: np.ndarray, choice: Any) -> np.ndarray:
    """Per output channel, the real value of integer weight 1 (float32): uniform s_c,
    power-of-two s_c·2^−kmax (exact: a power-of-two multiple)."""
    from hqc.quant import channel_scales, kmax_pot

    s = channel_scales(w, choice)
    if choice.kind == "pot":
        return (s * np.float32(2.0 ** -kmax_pot(choice.bits))).astype(np.float32)
    return s


def _storage(w: np.ndarray, max_bits: int) -> tuple[int, str, int]:
    m = int(np.abs(w).max()) if w.size else 0
    for lim, dtype, name, bits in _DTYPES:
        if m <= lim and bits <= max_bits:
            return dtype, name, bits
    raise ModelError(f"internal: integer weights up to {m} do not fit int16")


def _with_opset(model: onnx.ModelProto, opset: int) -> onnx.ModelProto:
    cur = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if cur >= opset:
        return model
    if cur >= 20:
        # opset 21 changed only the type lists of its ops (int4/uint4/float8 added): 20 → 21
        # is a relabel; below 20 the ONNX version converter rewrites what changed
        for o in model.opset_import:
            if o.domain in ("", "ai.onnx"):
                o.version = opset
        return model
    from onnx import version_converter

    try:
        return version_converter.convert_version(model, opset)
    except Exception as exc:  # the converter raises plain RuntimeError/ValueError
        raise ModelError(f"cannot raise the model from opset {cur} to {opset} for int4 weights: "
                         f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None


# --------------------------------------------------------------------------- build
def _uniform_constants(model: onnx.ModelProto, min_elements: int = 64) -> list[onnx.NodeProto]:
    """Initializers whose elements are all one value (the exporters' initial membranes,
    `zeros_like`) → ConstantOfShape nodes: same tensor, a few bytes instead of 4 per element."""
    nodes = []
    graph_inputs = {i.name for i in model.graph.input}
    for t in list(model.graph.initializer):
        if t.name in graph_inputs or int(np.prod(t.dims)) < min_elements:
            continue
        a = numpy_helper.to_array(t)
        if a.dtype.kind not in "fiu" or not np.all(a == a.flat[0]):
            continue
        shape = numpy_helper.from_array(np.asarray(a.shape, np.int64), t.name + "_shape")
        model.graph.initializer.remove(t)
        model.graph.initializer.append(shape)
        nodes.append(helper.make_node("ConstantOfShape", [shape.name], [t.name], name=t.name + "_fill",
                                      value=numpy_helper.from_array(a.flat[:1].copy())))
    return nodes


def build_qdq(doc: Mapping[str, Any], source: str | Path, weights: Mapping[str, np.ndarray],
              max_bits: int = 16) -> tuple[onnx.ModelProto, list[QdqLayer]]:
    """(lowering.json, source model, lowered integer weights) → the QDQ ONNX model.

    Pre: `weights` are `lowered_weights` of the same folder. Post: for every quantized
    layer, DequantizeLinear(w, unit) equals hqc.quant's fake-quant weight bit for bit
    (checked; ModelError otherwise)."""
    from hqc.choices import parse_choice
    from hqc.onnx_io import load_onnx
    from hqc.passes.lower_int import weight_transposed
    from hqc.pipeline import run_frontend
    from hqc.quant import fake_quant_numpy

    fe = run_frontend(Path(source), doc["input_layout"])
    plan = {k: parse_choice(v) for k, v in doc["plan"]["layers"].items()}
    model = load_onnx(source)
    inits = {t.name: t for t in model.graph.initializer}
    new_nodes: list[onnx.NodeProto] = []
    rows: list[QdqLayer] = []
    for layer in fe.layers:
        choice = plan[layer.name]
        w_ir = fe.graph.const(layer.weight)
        init = inits.get(layer.weight)
        if init is None or w_ir is None or not np.array_equal(numpy_helper.to_array(init), w_ir):
            raise ModelError(f"layer {layer.name!r}: its weight {layer.weight!r} is not an initializer of "
                             f"{source} as the frontend reads it; cannot attach a DequantizeLinear")
        if choice.kind == "fp32":
            rows.append(QdqLayer(layer.name, choice.name, "float32", layer.params, 4 * layer.params))
            continue
        transposed = weight_transposed(fe.graph, layer)
        w_torch = np.asarray(w_ir.T if transposed else w_ir, np.float32)
        units = channel_units(w_torch, choice)
        w_int = np.asarray(weights[layer.name], np.int64)
        if w_int.shape != w_torch.shape:
            raise ModelError(f"internal: layer {layer.name!r}: lowered weights {list(w_int.shape)}, "
                             f"model weights {list(w_torch.shape)}")
        deq = (w_int.astype(np.float32) * units.reshape((-1,) + (1,) * (w_int.ndim - 1))).astype(np.float32)
        if not np.array_equal(deq, fake_quant_numpy(w_torch, choice)):
            raise ModelError(f"internal: layer {layer.name!r}: the lowered integers times their units differ "
                             "from the fake-quant weights")
        dtype, name, bits = _storage(w_int, max_bits)
        stored = w_int.T if transposed else w_int
        q = helper.make_tensor(layer.weight + "_quantized", dtype, list(stored.shape),
                               stored.astype(np.int8 if bits <= 8 else np.int16).ravel().tolist())
        scale = numpy_helper.from_array(units, layer.weight + "_scale")
        model.graph.initializer.remove(init)
        model.graph.initializer.extend([q, scale])
        new_nodes.append(helper.make_node("DequantizeLinear", [q.name, scale.name], [layer.weight],
                                          name=layer.weight + "_dequantize", axis=1 if transposed else 0))
        rows.append(QdqLayer(layer.name, choice.name, name, layer.params, (layer.params * bits + 7) // 8))
    nodes = new_nodes + _uniform_constants(model) + list(model.graph.node)
    for node in nodes:  # the exporter's debug records (stack traces, module paths): half the file
        node.doc_string = ""
        del node.metadata_props[:]
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    model = _with_opset(model, QDQ_OPSET)
    model.producer_name = "hqc"
    onnx.checker.check_model(model)
    return model, rows


def export_qdq(directory: str | Path, out: str | Path | None = None) -> QdqResult:
    """DIR → DIR/model.qdq.onnx (or `out`), written atomically.

    Pre: as `read_lowering`. Post: the file opens in onnxruntime; on error nothing is
    written."""
    from hqc.int_onnx import session
    from hqc.outdir import atomic_file

    d = Path(directory)
    doc, src = read_lowering(d)
    model, rows = build_qdq(doc, src, lowered_weights(d))
    path = Path(out) if out is not None else d / QDQ_ONNX
    if path.is_dir():
        raise ConfigError(f"{path}: is a folder; -o names the output file")
    if not path.parent.is_dir():
        raise ConfigError(f"{path.parent}: no such folder for -o")
    data = model.SerializeToString()
    session(model)
    with atomic_file(path) as tmp:
        tmp.write_bytes(data)
    os.chmod(path, 0o644)
    log.info("wrote %s (%d bytes, model.int.onnx %d)", path, len(data), (d / "model.int.onnx").stat().st_size)
    return QdqResult(path, src, QDQ_OPSET, len(data), (d / "model.int.onnx").stat().st_size, rows)


# --------------------------------------------------------------------------- agreement
@dataclass
class Agreement:
    """The QDQ model against the integer model on a data split."""

    samples: int
    split: str
    same_prediction: int
    accuracy_qdq: float
    accuracy_int: float
    spikes_same: int = 0
    spikes_compared: int = 0
    neurons_compared: int = 0
    neurons: int = 0

    @property
    def prediction_agreement(self) -> float:
        return self.same_prediction / self.samples if self.samples else 0.0

    @property
    def spike_agreement(self) -> float | None:
        return self.spikes_same / self.spikes_compared if self.spikes_compared else None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["prediction_agreement"] = self.prediction_agreement
        d["spike_agreement"] = self.spike_agreement
        return d


def qdq_session(path: str | Path, extra_outputs: list[str] | None = None) -> Any:
    """An onnxruntime session (one thread) on a QDQ model, optionally with inner tensors
    (the neurons' spike tensors) as extra outputs."""
    from hqc.int_onnx import session

    model = onnx.load(str(path))
    if extra_outputs:
        have = {o.name for o in model.graph.output}
        for t in extra_outputs:
            if t not in have:
                model.graph.output.append(helper.make_empty_tensor_value_info(t))
    return session(model)


def load_split(directory: str | Path, data: str | Path, split: str = "val",
               limit: int | None = None) -> tuple[dict[str, Any], Any, np.ndarray, np.ndarray]:
    """A lowering folder and a data split → (lowering.json, the lowered IR, the samples as
    model inputs (G, *input shape), the labels). DataError when the inputs are not
    integers or lie outside the lowered input range (as `hqc verify`)."""
    from hqc import intref
    from hqc.data import load_data
    from hqc.lowerdir import integer_inputs
    from hqc.verification import to_groups

    d = Path(directory)
    doc, _ = read_lowering(d)
    g = intref.load_lowered(d / "lowered.onnx")
    sp = load_data(data).split(split)
    x, y = sp.x, sp.y
    if limit is not None:
        x, y = x[:limit], y[:limit]
    lo, hi = integer_inputs(x, f"{data}:{split}")
    rlo, rhi = doc["input"]["range"]
    if lo < rlo or hi > rhi:
        raise DataError(f"{data}:{split}: inputs span {lo}..{hi}, outside the lowered input range {rlo}..{rhi}")
    return doc, g, to_groups(x, doc["input_layout"], tuple(doc["input"]["shape"])), y


def agreement(directory: str | Path, qdq_path: str | Path, data: str | Path, split: str = "val",
              limit: int | None = None, spikes: bool = True) -> Agreement:
    """Predicted class (and, with `spikes`, every neuron's spikes) of the QDQ model under
    onnxruntime against the integer model (the numpy reference) on a data split."""
    from hqc import intref
    from hqc.verification import per_sample

    doc, g, groups, y = load_split(directory, data, split, limit)
    names = _tensor_names(qdq_path)
    # a neuron's spikes are compared where the frontend kept the exporter's tensor (one
    # stacked tensor of all steps); unrolled exports (snnTorch loops) have one per step
    neurons = [(nr["tensor"], nr["lowered_tensor"]) for nr in doc["neurons"] if nr["tensor"] in names] if spikes else []
    sess = qdq_session(qdq_path, [t for t, _ in neurons])
    in_name = sess.get_inputs()[0].name
    out_names = [o.name for o in sess.get_outputs()]
    n_out = len(out_names) - len(neurons)
    per_step = bool(doc["logits"].get("mean_over_time"))  # (T, B, K) per step: scored by the mean
    ints, flts = [], []
    same = total = 0
    for grp in groups:
        ref = intref.run(g, grp[None], names=[g.outputs[0]] + [lt for _, lt in neurons])
        outs = sess.run(out_names, {in_name: grp.astype(np.float32)})
        ints.append(ref[0][0])
        flts.append(np.asarray(outs[0]).mean(axis=0) if per_step else np.asarray(outs[0]))
        for fo, io in zip(outs[n_out:], ref[1:], strict=True):
            fo = np.asarray(fo)
            io = io[0].reshape(fo.shape)
            same += int((fo == io).sum())
            total += fo.size
    n = len(y)
    pi = per_sample(np.stack(ints), n).argmax(axis=1)
    pf = per_sample(np.stack(flts), n).argmax(axis=1)
    return Agreement(n, split, int((pi == pf).sum()), float((pf == y).mean()), float((pi == y).mean()), same, total,
                     len(neurons), len(doc["neurons"]))


def _tensor_names(path: str | Path) -> set[str]:
    m = onnx.load(str(path), load_external_data=False)
    return {t for node in m.graph.node for t in node.output}
