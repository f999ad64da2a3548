"""Every zoo model × exporter through `hqc lower` and `hqc verify`: the table of docs/lowering.md.

    python benchmarks/zoo_lowering_table.py [--samples 100] [--only SUBSTRING] [--no-docs]

The models are tests/support/zoo.py's (`all_models()` and `family_models()`: SpikingJelly 2.0's
zoo transformers and CNNs, snnTorch nets with spike-count and membrane readouts, the
hand-written and example models), each built small and seeded with neurons calibrated to
fire, and exported with both torch exporters. Per model: ONNX nodes, weight layers,
neurons (and their firing-rate range on the example input), then `lower_model` with a
plan cycling through all five quantizers and `verify_dir` on `--samples` random event
inputs drawn like the model's example input: numpy reference = onnxruntime = C (samples
with identical integer logits in each), and the fake-quant float model vs the integer
model (same predicted class; spikes identical). Times are wall-clock (lower: frontend +
lowering + writing; verify: all three back ends + the float model), one thread.

Writes benchmarks/results/zoo_lowering.json and rewrites the table between the markers
`<!-- zoo-table begin -->` / `<!-- zoo-table end -->` in docs/lowering.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import REPO, machine_info, single_thread_env, write_json  # noqa: E402

single_thread_env()
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

MIXED = ("fp32", "uni4", "uni2", "pot4", "pot2")
BEGIN, END = "<!-- zoo-table begin -->", "<!-- zoo-table end -->"


def _samples(zm: Any, n: int, seed: int) -> np.ndarray:
    """n samples (N, T, …) drawn like the example input (spikes, or event counts)."""
    x = np.asarray(zm.example_input)
    lay = zm.input_layout
    b = lay.index("B")
    x = np.moveaxis(x, b, 0)[0]  # one sample (T, …): hqc's data layout whatever the model's
    rng = np.random.default_rng(seed)
    if np.all((x == 0) | (x == 1)):
        p = max(0.05, float(x.mean()))
        return (rng.random((n, *x.shape)) < p).astype(np.float32)
    return rng.poisson(max(0.1, float(x.mean())), size=(n, *x.shape)).astype(np.float32)


def run_one(builder: Any, kwargs: dict[str, Any], samples: int, tmp: Path) -> dict[str, Any]:
    import onnx

    from hqc.lowerdir import lower_model
    from hqc.pipeline import run_frontend
    from hqc.verification import verify_dir
    from tests.support.zoo import model_id

    row: dict[str, Any] = {"model": model_id(builder, kwargs), "exporter": "dynamo" if kwargs.get("dynamo", True) else "torchscript"}
    try:
        t0 = time.perf_counter()
        zm = builder(tmp, **kwargs)
    except Exception as exc:  # the builder itself (export, calibration) failed
        row.update(result=f"build failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}", onnx_nodes="–")
        return row
    row["build_s"] = round(time.perf_counter() - t0, 2)
    row["onnx_nodes"] = len(onnx.load(str(zm.onnx_path), load_external_data=False).graph.node)
    rates = [n.firing_rate for n in zm.neurons if n.firing_rate is not None]
    row["firing"] = [round(min(rates), 3), round(max(rates), 3)] if rates else None
    try:
        t0 = time.perf_counter()
        fe = run_frontend(zm.onnx_path)
        row["weight_layers"] = len(fe.layers)
        row["neurons"] = len(fe.neurons)
        plan = {layer.name: MIXED[i % len(MIXED)] for i, layer in enumerate(fe.layers)}
        x = _samples(zm, samples, seed=11)
        y = np.random.default_rng(12).integers(0, 10, size=len(x))
        data = tmp / f"{row['model']}.npz"
        np.savez(data, x=x, y=y, x_val=x, y_val=y)
        out = tmp / f"{row['model']}_low"
        lower_model(zm.onnx_path, plan, out, data=data)
        row["lower_s"] = round(time.perf_counter() - t0, 2)
        t0 = time.perf_counter()
        v = verify_dir(out, data, "val")
        row["verify_s"] = round(time.perf_counter() - t0, 2)
        row["samples"] = v.samples
        row["onnxruntime"] = v.agree.get("onnxruntime")
        row["c"] = v.agree.get("c")
        row["identical"] = v.identical
        row["same_prediction"] = v.float_vs_int_predictions
        row["spike_agreement"] = v.spike_agreement
        row["result"] = "verified" if v.identical else "BACKENDS DIFFER"
    except Exception as exc:  # a row per model, whatever fails
        row["result"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
        row["traceback"] = traceback.format_exc(limit=3)
    return row


def _table(rows: list[dict[str, Any]]) -> str:
    head = ("| model | exporter | ONNX nodes | weight layers | neurons (firing) | lower + verify | "
            "numpy = ORT = C | int = fake-quant (predictions) | spikes identical | time lower / verify |")
    lines = [head, "|" + "---|" * 10]
    for r in rows:
        fire = f"{r.get('neurons', '–')} ({r['firing'][0]:.0%}–{r['firing'][1]:.0%})" if r.get("firing") else str(r.get("neurons", "–"))
        if r.get("samples"):
            n = r["samples"]
            eq = f"{min(r['onnxruntime'], r['c'])}/{n}"
            pred = f"{r['same_prediction']}/{n} ({r['same_prediction'] / n:.0%})"
            sp = f"{100 * r['spike_agreement']:.3f} %" if r.get("spike_agreement") is not None else "–"
            times = f"{r['lower_s']:.1f} s / {r['verify_s']:.1f} s"
        else:
            eq = pred = sp = times = "–"
        lines.append(f"| {r['model']} | {r['exporter']} | {r['onnx_nodes']} | {r.get('weight_layers', '–')} | {fire} | "
                     f"{r['result']} | {eq} | {pred} | {sp} | {times} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=100)
    ap.add_argument("--only", default=None, help="only models whose id contains this")
    ap.add_argument("--no-docs", action="store_true", help="do not rewrite docs/lowering.md")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "zoo_lowering.json")
    args = ap.parse_args(argv)
    from tests.support.zoo import all_models, family_models, model_id

    models = [(b, k) for b, k in all_models() + family_models() if not args.only or args.only in model_id(b, k)]
    rows = []
    with tempfile.TemporaryDirectory(prefix="hqc-zoo-") as tmp:
        for b, k in models:
            r = run_one(b, k, args.samples, Path(tmp))
            print(f"{r['model']:<70} {r['result']}", flush=True)
            rows.append(r)
    write_json(args.out, {"machine": machine_info(), "samples": args.samples, "rows": rows})
    table = _table(rows)
    if not args.no_docs and not args.only:
        doc = REPO / "docs" / "lowering.md"
        text = doc.read_text(encoding="utf-8")
        if BEGIN in text and END in text:
            pre, rest = text.split(BEGIN, 1)
            _, post = rest.split(END, 1)
            doc.write_text(pre + BEGIN + "\n" + table + "\n" + END + post, encoding="utf-8")
    print(table)
    return 0 if all(r.get("identical") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
