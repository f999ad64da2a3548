"""Benchmark the lowered model: time per inference of the numpy reference, onnxruntime on
model.int.onnx and the compiled C kernels, per plan (all uni4, all pot4, all pot2, all
fp32, mixed), with packed weight bytes and the agreement of the three backends.

    python benchmarks/bench_kernels.py --model examples/ndigits/spikformer.onnx \
        --data examples/ndigits/ndigits.npz --samples 32

Without --model, a random-weight example Spikformer (dim 64, depth 2, T 4, 32x32) is
exported to a temporary folder first. Prints a table; --json prints the rows as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PLANS = ("uni4", "pot4", "pot2", "fp32", "mixed")


def _plan(layers, name: str) -> dict[str, str]:
    from tests.support.lowering import MIXED

    if name == "mixed":
        return {layer.name: MIXED[i % len(MIXED)] for i, layer in enumerate(layers)}
    return {layer.name: name for layer in layers}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None)
    p.add_argument("--data", default=str(REPO / "examples" / "ndigits" / "ndigits.npz"))
    p.add_argument("--split", default="val")
    p.add_argument("--samples", type=int, default=32)
    p.add_argument("--plans", default=",".join(PLANS))
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)

    from hqc import ckernels, int_onnx, intref
    from hqc.data import load_data
    from hqc.lowerdir import lower_model
    from hqc.pipeline import run_frontend
    from hqc.verification import to_groups

    with tempfile.TemporaryDirectory(prefix="hqc-bench-") as tmp:
        model = args.model
        if model is None:
            from tests.support.zoo import example_spikformer

            model = str(example_spikformer(Path(tmp), dynamo=True, depth=2, dim=64, heads=4, T=4, img=32).onnx_path)
        fe = run_frontend(model)
        x = load_data(args.data).split(args.split).x[: args.samples]
        rows = []
        for name in args.plans.split(","):
            out = Path(tmp) / f"lowered-{name}"
            r = lower_model(model, _plan(fe.layers, name), out, frontend=fe)
            groups = to_groups(x, r.doc["input_layout"], tuple(r.doc["input"]["shape"]))
            n = len(groups)
            t0 = time.perf_counter()
            ref = intref.run(r.lowered.graph, groups)[0]
            t_ref = time.perf_counter() - t0
            sess = int_onnx.session(str(out / "model.int.onnx"))
            t0 = time.perf_counter()
            ort = int_onnx.run_ort(sess, groups)
            t_ort = time.perf_counter() - t0
            exe = ckernels.build(out / "kernels")
            t0 = time.perf_counter()
            c = ckernels.run_binary(exe, groups, int(np.prod(ref.shape[1:])))
            t_c = time.perf_counter() - t0
            same = bool(np.array_equal(ort, ref) and np.array_equal(c.reshape(ref.shape), ref))
            rows.append({
                "plan": name,
                "packed_weight_bytes": r.doc["totals"]["packed_weight_bytes"],
                "fp32_weight_bytes": r.doc["totals"]["fp32_weight_bytes"],
                "ms_numpy": 1e3 * t_ref / n,
                "ms_onnxruntime": 1e3 * t_ort / n,
                "ms_c": 1e3 * t_c / n,
                "identical": same,
            })
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{'plan':<6} {'weight bytes':>12} {'fp32 bytes':>10} {'numpy ms':>9} {'ort ms':>8} {'C ms':>7}  identical")
    for r in rows:
        print(f"{r['plan']:<6} {r['packed_weight_bytes']:>12} {r['fp32_weight_bytes']:>10} {r['ms_numpy']:>9.1f} "
              f"{r['ms_onnxruntime']:>8.1f} {r['ms_c']:>7.1f}  {r['identical']}")


if __name__ == "__main__":
    main()
