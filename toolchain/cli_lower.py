"""`hqc lower` and `hqc verify`, thin commands over `lower_model` and `verify_dir`.

    lower(model.onnx, plan) → Lowering (in memory); write_lowering(lowering, DIR)
    lower_model(model.onnx, plan) → DIR/{model.int.onnx, kernels/, lowered.onnx, lowering.json}
        written atomically (hqc.outdir.atomic_dir): built in a temporary folder beside DIR,
        then renamed; on any error nothing is left behind.
    verify_dir(DIR, data) → agreement of the numpy reference, onnxruntime (model.int.onnx)
        and the compiled C kernels on every sample (identical integer logits), the
        integer model's accuracy, the fake-quant float model's accuracy and the fraction
        of identical spikes between the two.

`hqc compile` calls both functions; the commands only parse options and print.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import click
import numpy as np

from hqc.choices import QuantChoice, parse_choice
from hqc.cli_options import config_file_option
from hqc.errors import ConfigError, DataError, ModelError, PlanError
from hqc.ir import Graph
from hqc.layers import LayerInfo
from hqc.results import verify_document

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


def to_groups(x: np.ndarray, layout: str, input_shape: Sequence[int]) -> np.ndarray:
    """Samples (N, T, ...) → model inputs (G, *input_shape), padded with copies of sample 0."""
    lay = layout.upper()
    b0 = int(input_shape[lay.index("B")]) if "B" in lay else 1
    n = x.shape[0]
    pad = (-n) % b0
    if pad:
        x = np.concatenate([x, np.repeat(x[:1], pad, axis=0)])
    g = x.reshape((-1, b0) + x.shape[1:])
    if lay.startswith("TB"):
        g = np.swapaxes(g, 1, 2)
    if tuple(g.shape[1:]) != tuple(input_shape):
        raise DataError(f"data samples of shape {list(x.shape[1:])} do not fit the model input {list(input_shape)}")
    return g


def _per_sample(logits: np.ndarray, n: int) -> np.ndarray:
    """(G, B0, C) logits → (N, C)."""
    if logits.ndim != 3:
        raise ModelError(f"logits of shape {list(logits.shape[1:])} per model input; expected (batch, classes)")
    return logits.reshape(-1, logits.shape[-1])[:n]


def _layout_of(graph: Graph, input_layout: str | None) -> str:
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
                 "bits": _signed_bits(*bounds[x]), "c_type": c_types[x]})
    for node in g.nodes():
        for t in node.outputs:
            lo, hi = bounds[t]
            rows.append({"tensor": t, "node": node.name, "op": node.op, "range": [lo, hi],
                         "bits": _signed_bits(lo, hi), "c_type": c_types[t]})
    return rows


def _signed_bits(lo: int, hi: int) -> int:
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
    from hqc.plan import read_plan

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
        names = {layer.name for layer in fe.layers}
        unknown = [k for k in plan if k not in names]
        if unknown:
            raise PlanError(f"plan: no layer named {unknown[0]!r} in the model")
        choices = {k: v if isinstance(v, QuantChoice) else parse_choice(v) for k, v in plan.items()}
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

    layout = _layout_of(fe.graph, input_layout)
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
    (not atomic by itself: `lower_model` and `hqc compile` call it inside `atomic_dir`)."""
    import onnx

    from hqc import intref

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
    # --- memory (issue 15): arena, peak-live bound, constant/flash bytes, static RAM by `size`
    from hqc.ckernels import memory_section

    low.doc["memory"] = memory_section(low.kernel_files)
    # --- end memory
    with atomic_dir(out) as tmp:
        write_lowering(low, tmp)
    t = low.doc["totals"]
    log.info("lowered %s into %s (%d packed weight bytes, fp32 %d)", model, out,
             t["packed_weight_bytes"], t["fp32_weight_bytes"])
    return LoweringResult(out, low.doc, low.lowered)


# --------------------------------------------------------------------------- verify
@dataclass
class VerifyResult:
    """Per backend: logits identical to the numpy reference (count of samples)."""

    samples: int
    split: str
    agree: dict[str, int] = field(default_factory=dict)
    accuracy_int: float = 0.0
    accuracy_float: float | None = None
    float_vs_int_predictions: int | None = None
    spike_agreement: float | None = None
    spikes_compared: int = 0
    input_range: tuple[int, int] = (0, 0)

    @property
    def identical(self) -> bool:
        return all(v == self.samples for v in self.agree.values())

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["identical"] = self.identical
        return d


def _read_doc(d: Path) -> dict[str, Any]:
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


def verify_dir(
    directory: str | Path,
    data: str | Path,
    split: str = "val",
    limit: int | None = None,
    backends: Sequence[str] = ("onnxruntime", "c"),
    float_model: bool = True,
    chunk: int = 32,
    dataset: Any = None,
    frontend: Any = None,
) -> VerifyResult:
    """A lowering folder + data → agreement of the numpy reference with onnxruntime and the
    compiled C kernels, the integer accuracy and (float_model) the fake-quant float model's
    accuracy and spike agreement.

    Pre: DIR written by `lower_model`; the data split exists and holds integer-valued inputs
    within the lowered input range. Post: nothing in DIR changes (C is built in a temporary
    copy). `dataset` (`data` loaded) and `frontend` (the lowered float model, imported)
    reuse what `hqc compile` already has in memory.
    """
    from hqc import ckernels, int_onnx, intref
    from hqc.data import load_data

    d = Path(directory)
    doc = _read_doc(d)
    g = intref.load_lowered(d / LOWERED_IR)
    from hqc.intops import check_lowered

    check_lowered(g)
    ds = dataset if dataset is not None else load_data(data)
    sp = ds.split(split)
    x, y = sp.x, sp.y
    if limit is not None:
        if limit < 1:
            raise ConfigError(f"--limit must be ≥ 1, got {limit}")
        x, y = x[:limit], y[:limit]
    lo, hi = integer_inputs(x, f"{data}:{split}")
    rlo, rhi = doc["input"]["range"]
    if lo < rlo or hi > rhi:
        raise DataError(f"{data}:{split}: inputs span {lo}..{hi}, outside the lowered input range {rlo}..{rhi}")
    shape = tuple(doc["input"]["shape"])
    groups = to_groups(x, doc["input_layout"], shape)
    n = len(y)
    res = VerifyResult(samples=n, split=split, input_range=(lo, hi))
    fl = _FloatSide(doc, x, groups, d, frontend) if float_model else None
    ref_chunks = []
    for i in range(0, len(groups), chunk):  # one reference run gives the logits and the spikes
        outs = intref.run(g, groups[i: i + chunk], names=[g.outputs[0]] + (fl.lowered if fl else []))
        ref_chunks.append(outs[0])
        if fl is not None:
            fl.step(i, chunk, outs[1:])
    ref = np.concatenate(ref_chunks)
    ref_s = _per_sample(ref, n)
    if "onnxruntime" in backends:
        sess = int_onnx.session(str(d / INT_ONNX))
        ort = _per_sample(int_onnx.run_ort(sess, groups), n)
        res.agree["onnxruntime"] = int(np.all(ort == ref_s, axis=1).sum())
    if "c" in backends:
        with tempfile.TemporaryDirectory(prefix="hqc-verify-") as tmp:
            kd = Path(tmp) / KERNELS
            shutil.copytree(d / KERNELS, kd)
            exe = ckernels.build(kd)
            c = ckernels.run_binary(exe, groups, int(np.prod(ref.shape[1:])))
        res.agree["c"] = int(np.all(_per_sample(c.reshape(ref.shape), n) == ref_s, axis=1).sum())
    pred_int = ref_s.argmax(axis=1)
    res.accuracy_int = float((pred_int == y).mean())
    if fl is not None:
        fl.finish(pred_int, y, res)
    return res


class _FloatSide:
    """The fake-quant float model of a lowering folder, run chunk by chunk beside the
    integer reference: its predictions and its spikes against the integer model's."""

    def __init__(self, doc: dict[str, Any], x: np.ndarray, groups: np.ndarray, directory: Path,
                 frontend: Any = None) -> None:
        from hqc.pipeline import run_frontend

        if frontend is not None:
            fe = frontend
        else:
            mpath = lowered_source(doc, directory, "run the fake-quant float model")
            fe = run_frontend(mpath, doc["input_layout"])
        plan = {k: parse_choice(v) for k, v in doc["plan"]["layers"].items()}
        if doc.get("scales"):  # the learned scales the lowering used
            from hqc.lowering.weights import LEARNED_SCALES_META
            from hqc.quant import load_scales

            try:
                fe.graph.meta[LEARNED_SCALES_META] = load_scales(directory / doc["scales"]["file"])
            except ValueError as exc:
                raise ConfigError(str(exc)) from None
        self.model = fake_quant_model(fe.graph, fe.layers, plan, doc["input_layout"])
        neurons = [(nr["tensor"], nr["lowered_tensor"]) for nr in doc["neurons"]]
        self.names = [fe.graph.outputs[0]] + [t for t, _ in neurons]
        self.lowered = [lt for _, lt in neurons]
        self.b0 = groups.shape[1] if doc["input_layout"].startswith("B") else groups.shape[2]
        pad = len(groups) * self.b0 - len(x)
        self.x = np.concatenate([x, np.repeat(x[:1], pad, axis=0)]) if pad else x
        self.preds: list[np.ndarray] = []
        self.same = self.total = 0

    def step(self, i: int, chunk: int, ints: list[np.ndarray]) -> None:
        import torch

        b0 = self.b0
        xs = torch.from_numpy(np.ascontiguousarray(self.x[i * b0: (i + chunk) * b0], dtype=np.float32))
        with torch.no_grad():
            outs = self.model.forward_all(xs, names=self.names)
        self.preds.append(self.model.scores(outs[0], grouped=True).numpy())
        for fo, io in zip(outs[1:], ints, strict=True):
            fo = fo.numpy()
            self.same += int((fo == io[: fo.shape[0]]).sum())
            self.total += fo.size

    def finish(self, pred_int: np.ndarray, y: np.ndarray, res: VerifyResult) -> None:
        pred_f = np.concatenate(self.preds)[: len(y)].argmax(axis=1)
        res.accuracy_float = float((pred_f == y).mean())
        res.float_vs_int_predictions = int((pred_f == pred_int).sum())
        res.spike_agreement = self.same / self.total if self.total else None
        res.spikes_compared = self.total


# --------------------------------------------------------------------------- commands
def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.2f} %"


@click.command("lower")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--plan", "plan", required=True, type=click.Path(dir_okay=False), help="plan.yaml: a quantizer per layer.")
@click.option("-o", "--out", "out", default=None, type=click.Path(file_okay=False), help="Output folder (default build/<model stem>).")
@click.option("--data", default=None, type=click.Path(dir_okay=False), help="NPZ: checks that inputs are integers and sets their range.")
@click.option("--input-layout", default=None, help="Where the model input keeps batch and time: BT… or TB….")
@click.option("--resolution-bits", default=None, type=int, help="LIF bias resolution: |b − b̂| ≤ θ·2^-(bits+1) (default 16).")
@click.option("--logit-bits", default=None, type=int, help="Fraction bits of the integer logits (default 16).")
@click.option("--json", "as_json", is_flag=True, help="Print lowering.json (hqc.lowering/1) instead of the table.")
@config_file_option
def lower_cmd(model: str, plan: str, out: str | None, data: str | None, input_layout: str | None,
              resolution_bits: int | None, logit_bits: int | None, as_json: bool, config_path: str | None) -> None:
    """Lower MODEL (ONNX) with a plan to integer/shift-only form: model.int.onnx and C kernels."""
    r = lower_model(model, plan, out, data=data, input_layout=input_layout,
                    resolution_bits=resolution_bits, logit_bits=logit_bits)
    if as_json:
        click.echo(json.dumps(r.doc, indent=2))
        return
    rows = [["layer", "quantizer", "params", "packed bytes", "input", "F"]]
    for x in r.doc["layers"]:
        rows.append([x["name"], x["quantizer"], str(x["params"]), str(x["packed_bytes"]), x["input"],
                     "-" if x["fraction_bits"] is None else str(x["fraction_bits"])])
    from hqc.cli import _table

    for line in _table(rows, {2, 3, 5}):
        click.echo(line)
    t = r.doc["totals"]
    click.echo("")
    click.echo(f"weights  {t['packed_weight_bytes']} bytes packed (fp32: {t['fp32_weight_bytes']} bytes, "
               f"{t['compression']}x smaller)")
    chk = r.doc["input"]["check"]
    if chk["checked"]:
        click.echo(f"inputs   integer-valued in {chk['data']} ({chk['samples']} samples, "
                   f"{chk['observed_range'][0]}..{chk['observed_range'][1]}); range {r.doc['input']['range']}")
    else:
        click.echo(f"inputs   assumed integers in {r.doc['input']['range']} (pass --data to check)")
    click.echo(f"wrote    {r.out_dir}/ ({INT_ONNX}, {KERNELS}/, {LOWERED_IR}, {LOWERING_JSON})")


@click.command("verify")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--data", required=True, type=click.Path(dir_okay=False), help="NPZ with the samples.")
@click.option("--split", default="val", show_default=True, type=click.Choice(["train", "val", "test"]))
@click.option("--limit", default=None, type=int, help="Use the first N samples only.")
@click.option("--no-c", is_flag=True, help="Skip compiling and running the C kernels.")
@click.option("--no-float", is_flag=True, help="Skip the fake-quant float model.")
@click.option("--json", "as_json", is_flag=True, help="Print the stable JSON document (hqc.verify/1).")
@config_file_option
def verify_cmd(directory: str, data: str, split: str, limit: int | None, no_c: bool, no_float: bool,
               as_json: bool, config_path: str | None) -> None:
    """Check that the numpy reference, onnxruntime and the C kernels of DIRECTORY give identical
    integer logits on the data; report the integer and fake-quant float accuracy.
    Exit status 1 when a backend disagrees."""
    backends = ("onnxruntime",) if no_c else ("onnxruntime", "c")
    r = verify_dir(directory, data, split, limit, backends, not no_float)
    if as_json:
        click.echo(json.dumps(verify_document(r), indent=2))
    else:
        click.echo(f"verify {directory}  ({r.split} split, {r.samples} samples, inputs {r.input_range[0]}..{r.input_range[1]})")
        for b, v in r.agree.items():
            click.echo(f"  numpy reference vs {b:<12} {v}/{r.samples} identical integer logits")
        click.echo(f"  integer model accuracy       {_pct(r.accuracy_int)}")
        if r.accuracy_float is not None:
            click.echo(f"  fake-quant float accuracy    {_pct(r.accuracy_float)}  "
                       f"(same prediction on {r.float_vs_int_predictions}/{r.samples})")
            click.echo(f"  spike agreement int vs float {100 * (r.spike_agreement or 0):.4f} % of {r.spikes_compared} spikes")
    if not r.identical:
        raise click.exceptions.Exit(1)


def register_commands(group: click.Group) -> None:
    """Add `lower` and `verify` to the hqc command group."""
    group.add_command(lower_cmd)
    group.add_command(verify_cmd)
