"""Lowering a model to integer/shift-only form, and the lowering folder it is written to.

    lower(model.onnx, plan) → Lowering (in memory); write_lowering(lowering, DIR)
    lower_model(model.onnx, plan) → DIR/{model.int.onnx, kernels/, lowered.onnx, lowering.json}
        written atomically (hqc.outdir.atomic_dir): built in a temporary folder beside DIR,
        then renamed; on any error nothing is left behind.
    read_lowering_doc(DIR) → its lowering.json (hqc.lowering/1), checked
    lowered_source(doc, DIR) → the float model the folder was lowered from

The commands `hqc lower` and `hqc compile` call these; verification is hqc.verification.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hqc.choices import QuantChoice
from hqc.errors import ConfigError, DataError, ModelError
from hqc.ir import Graph
from hqc.layers import LayerInfo

log = logging.getLogger(__name__)

LOWERING_SCHEMA = "hqc.lowering/1"
LOWERING_JSON = "lowering.json"
INT_ONNX = "model.int.onnx"
LOWERED_IR = "lowered.onnx"
KERNELS = "kernels"


# --------------------------------------------------------------------------- helpers
def fake_quant_model(graph: Graph, layers: Sequence[LayerInfo], plan: Mapping[str, QuantChoice],
                     input_layout: str | None = None) -> Any:
    """Frontend IR + plan → TorchModel whose weights are Q(w) (hqc.quant.fake_quant_torch,
    per output channel of the PyTorch layout), the float model the lowering is compared to;
    with the learned scales the graph carries (`hqc.lowering.weights.learned_scale`)."""
    from hqc.backend import TorchModel
    from hqc.lowering.weights import learned_scale
    from hqc.passes.lower_int import weight_transposed
    from hqc.quant import fake_quant_torch

    model = TorchModel(graph, input_layout)
    for layer in layers:
        choice = plan[layer.name]
        if choice.kind == "fp32":
            continue
        s = learned_scale(graph, layer, choice)
        if weight_transposed(graph, layer):
            model.set_weight_transform(layer.weight, lambda w, c=choice, s=s: fake_quant_torch(w.t(), c, s).t())
        else:
            model.set_weight_transform(layer.weight, lambda w, c=choice, s=s: fake_quant_torch(w, c, s))
    model.eval()
    return model


def integer_inputs(x: np.ndarray, where: str) -> tuple[int, int]:
    """Check that event data holds integers; returns (min, max). DataError otherwise."""
    if x.size == 0:
        return 0, 0
    if not np.all(np.isfinite(x)) or not np.array_equal(x, np.round(x)):
        bad = int(np.count_nonzero(x != np.round(x)))
        raise DataError(f"{where}: {bad} input values are not integers; the integer lowering needs "
                        "integer-valued inputs (event counts or spikes)")
    return int(x.min()), int(x.max())




def layout_of(graph: Graph, input_layout: str | None) -> str:
    """The model input's layout (BT…/TB…): the option, the graph's record, else detected."""
    from hqc.layout import detect_layout

    return (input_layout or graph.meta.get("input_layout") or detect_layout(graph)).upper()


def integer_ranges(g: Graph, c_types: Mapping[str, str]) -> list[dict[str, Any]]:
    """Per tensor of the lowered graph: its producer, the range proven by interval
    arithmetic from the input range, the signed width it needs and the C type of its
    buffer (`c_types`, from the C emitter: chosen from the range; logits are int64)."""
    rows = []
    bounds = g.meta["bounds"]
    x = g.inputs[0]
    rows.append({"tensor": x, "node": None, "op": "input", "range": list(bounds[x]),
                 "bits": signed_bits(*bounds[x]), "c_type": c_types[x]})
    for node in g.nodes():
        for t in node.outputs:
            lo, hi = bounds[t]
            rows.append({"tensor": t, "node": node.name, "op": node.op, "range": [lo, hi],
                         "bits": signed_bits(lo, hi), "c_type": c_types[t]})
    return rows


def signed_bits(lo: int, hi: int) -> int:
    """Bits of the smallest two's-complement (or, for lo ≥ 0, unsigned) integer holding lo..hi."""
    if lo >= 0:
        return max(1, int(hi).bit_length())
    return max(int(hi).bit_length(), int(-lo - 1).bit_length()) + 1


@dataclass
class Lowering:
    """An integer model in memory: the lowering.json document, the lowered IR and records,
    the ONNX model and the kernel sources."""

    doc: dict[str, Any]
    lowered: Any
    onnx_model: Any
    kernel_files: dict[str, str]
    scales: dict[str, Any] = field(default_factory=dict)  # learned scales used (hqc.quant.LearnedScales)


@dataclass
class LoweringResult:
    """What `lower_model` wrote: the folder, the lowering.json document, the lowered model."""

    out_dir: Path
    doc: dict[str, Any]
    lowered: Any


def lower(
    model: str | Path,
    plan: str | Path | Mapping[str, QuantChoice | str],
    *,
    data: str | Path | Any = None,
    input_layout: str | None = None,
    input_range: tuple[int, int] | None = None,
    resolution_bits: int | None = None,
    logit_bits: int | None = None,
    frontend: Any = None,
    scales: str | Path | Mapping[str, Any] | None = None,
) -> Lowering:
    """model.onnx + plan (plan.yaml or {layer: choice}) → Lowering (in memory, nothing written).

    Pre: the plan names every layer with a known quantizer (else PlanError); `data`, when
    given (an NPZ path or a loaded `hqc.data.Dataset`), holds integer-valued inputs (else
    DataError) and widens the input range (default 0..255). `frontend` reuses an already
    imported model (`hqc compile`). `scales`: the fine-tune's learned scales
    (hqc.quant.LearnedScales or its scales.npz; default: the file the plan.yaml's `scales`
    key names, beside it); layers without one get scales recomputed from the weights.
    Post: the three artifacts agree bit for bit (see docs/lowering.md).
    """
    from hqc import ckernels, int_onnx
    from hqc.passes import lower_int
    from hqc.pipeline import run_frontend
    from hqc.plan import read_plan, resolve_plan

    model = Path(model)
    fe = frontend if frontend is not None else run_frontend(model, input_layout)
    if isinstance(plan, (str, Path)):
        choices = read_plan(plan, fe.layers)
        plan_src = str(plan)
        if scales is None:
            from hqc.plan import load_plan_yaml

            ref = load_plan_yaml(plan).get("scales")
            scales = Path(plan).parent / str(ref) if ref else None
    else:
        choices = resolve_plan(plan, fe.layers)
        plan_src = "<mapping>"
    rng = tuple(input_range) if input_range is not None else lower_int.DEFAULT_INPUT_RANGE
    input_check: dict[str, Any] = {"checked": False}
    if data is not None:
        from hqc.data import load_data

        ds = data if hasattr(data, "splits") else load_data(data)
        data = getattr(ds, "path", data)
        lo = hi = 0
        count = 0
        for name, split in ds.splits.items():
            a, b = integer_inputs(split.x, f"{data}:{name}")
            lo, hi = min(lo, a), max(hi, b)
            count += len(split)
        log.info("data %s: %d samples, inputs integer-valued in %d..%d", data, count, lo, hi)
        input_check = {"checked": True, "data": str(data), "samples": count, "integer_valued": True,
                       "observed_range": [lo, hi]}
        if input_range is None:
            rng = (min(rng[0], lo), max(rng[1], hi))
        elif lo < rng[0] or hi > rng[1]:
            raise DataError(f"{data}: inputs span {lo}..{hi}, outside the input range {list(rng)}")
    # ---- learned scales (issue 14): handed to the lowering through graph.meta
    from hqc.lowering.weights import LEARNED_SCALES_META
    from hqc.quant import SCALES_FILE, load_scales

    scales_src = None if scales is None or isinstance(scales, Mapping) else str(scales)
    if scales_src is not None:
        try:
            scales = load_scales(scales_src)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    learned = {k: v for k, v in (scales or {}).items() if k in choices and v[0] == choices[k].name}
    fe.graph.meta[LEARNED_SCALES_META] = learned
    # ----
    lm = lower_int.lower_graph(
        fe.graph, fe.layers, choices, rng,
        lower_int.DEFAULT_RESOLUTION_BITS if resolution_bits is None else resolution_bits,
        lower_int.DEFAULT_LOGIT_BITS if logit_bits is None else logit_bits,
    )
    from hqc.intops import check_lowered

    check_lowered(lm.graph)
    cm = ckernels.emit_kernels(lm.graph)
    files, weight_bytes = cm.files, cm.weight_bytes
    proto = int_onnx.to_int_onnx(lm.graph)
    by_layer = {w["layer"]: w["bytes"] for w in weight_bytes}
    for rec in lm.layers:
        if by_layer.get(rec["name"]) != rec["packed_bytes"]:
            raise ModelError(f"internal: layer {rec['name']!r} packed into {by_layer.get(rec['name'])} bytes, "
                             f"expected {rec['packed_bytes']}")
    packed = sum(r["packed_bytes"] for r in lm.layers)
    fp32 = sum(r["fp32_bytes"] for r in lm.layers)
    from hqc.data import fingerprint

    layout = layout_of(fe.graph, input_layout)
    doc = {
        "schema": LOWERING_SCHEMA,
        "model": {"path": str(model.resolve()), "fingerprint": fingerprint(model)},
        "plan": {"source": plan_src, "layers": {k: v.name for k, v in choices.items()}},
        "input_layout": layout,
        "input": {**lm.input, "c_type": "int16", "check": input_check},
        "options": {
            "resolution_bits": lower_int.DEFAULT_RESOLUTION_BITS if resolution_bits is None else resolution_bits,
            "logit_bits": lower_int.DEFAULT_LOGIT_BITS if logit_bits is None else logit_bits,
        },
        "logits": lm.logits,
        "layers": lm.layers,
        "neurons": [{**n, "tensor": t, "lowered_tensor": lt}
                    for n, (t, lt) in zip(lm.neurons, lm.tensor_map.items(), strict=True)],
        "totals": {
            "layers": len(lm.layers),
            "params": sum(r["params"] for r in lm.layers),
            "packed_weight_bytes": packed,
            "fp32_weight_bytes": fp32,
            "compression": round(fp32 / packed, 3) if packed else None,
        },
        "integer_ranges": integer_ranges(lm.graph, cm.c_types),
        "files": {"onnx": INT_ONNX, "kernels": KERNELS + "/", "lowered_ir": LOWERED_IR},
    }
    if learned:
        doc["scales"] = {"file": SCALES_FILE, "source": scales_src or "<mapping>", "layers": sorted(learned)}
    return Lowering(doc, lm, proto, files, learned)


def write_lowering(low: Lowering, directory: str | Path) -> None:
    """Write model.int.onnx, kernels/, lowered.onnx and lowering.json into an existing folder
    (not atomic by itself: `lower_model` and `hqc compile` call it inside `atomic_dir`).
    lowering.json gets the `memory` section (arena, peak-live bound, constant/flash bytes,
    static RAM measured by `size` on the built kernels) of every lowering folder."""
    import onnx

    from hqc import intref
    from hqc.ckernels import memory_section

    if "memory" not in low.doc:
        low.doc["memory"] = memory_section(low.kernel_files)

    d = Path(directory)
    onnx.save(low.onnx_model, str(d / INT_ONNX))
    intref.save_lowered(low.lowered.graph, d / LOWERED_IR)
    (d / KERNELS).mkdir(exist_ok=True)
    for name, text in low.kernel_files.items():
        (d / KERNELS / name).write_text(text, encoding="utf-8")
    if low.scales:
        from hqc.quant import SCALES_FILE, save_scales

        save_scales(d / SCALES_FILE, low.scales)
    (d / LOWERING_JSON).write_text(json.dumps(low.doc, indent=2) + "\n", encoding="utf-8")


def lower_model(
    model: str | Path,
    plan: str | Path | Mapping[str, QuantChoice | str],
    out_dir: str | Path | None = None,
    **options: Any,
) -> LoweringResult:
    """model.onnx + plan → DIR with model.int.onnx, kernels/, lowered.onnx and lowering.json,
    written atomically. `options` are those of `lower`.

    Pre: as `lower`; DIR absent, empty or a previous lowering (else ConfigError).
    Post: DIR complete, or untouched (and no temporary folder left) on error.
    Default DIR: build/<model stem>/.
    """
    from hqc.outdir import atomic_dir

    model = Path(model)
    out = Path(out_dir) if out_dir is not None else Path("build") / model.stem
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / LOWERING_JSON).is_file())):
        raise ConfigError(f"{out}: exists and is not an hqc lowering folder; remove it or choose another -o")
    low = lower(model, plan, **options)
    with atomic_dir(out) as tmp:
        write_lowering(low, tmp)
    t = low.doc["totals"]
    log.info("lowered %s into %s (%d packed weight bytes, fp32 %d)", model, out,
             t["packed_weight_bytes"], t["fp32_weight_bytes"])
    return LoweringResult(out, low.doc, low.lowered)


def read_lowering_doc(d: Path) -> dict[str, Any]:
    """DIR/lowering.json, checked to be an hqc.lowering/1 document; ConfigError otherwise."""
    p = d / LOWERING_JSON
    if not p.is_file():
        raise ConfigError(f"{d}: not an hqc lowering folder (no {LOWERING_JSON})")
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{p}: unreadable ({type(exc).__name__})") from None
    if doc.get("schema") != LOWERING_SCHEMA:
        raise ConfigError(f"{p}: schema {doc.get('schema')!r}, expected {LOWERING_SCHEMA!r}")
    return doc


def lowered_source(doc: dict[str, Any], directory: Path, purpose: str) -> Path:
    """The float model a lowering folder came from: the path lowering.json records, or,
    when that is gone, the file of the same name in the folder (a `hqc compile` folder
    lowers DIR/model.qat.onnx under a temporary name; a moved folder). Its fingerprint
    must still be the recorded one. ConfigError names `purpose` when it cannot be found."""
    from hqc.data import fingerprint

    src = Path(doc["model"]["path"])
    if not src.is_file() and (directory / src.name).is_file():
        src = directory / src.name
    if not src.is_file():
        raise ConfigError(f"{src}: the lowered model's source is gone; cannot {purpose}")
    if fingerprint(src) != doc["model"]["fingerprint"]:
        raise ConfigError(f"{src}: changed since it was lowered; lower it again")
    return src
