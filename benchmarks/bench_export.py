"""`hqc export --format qdq` on the shipped examples: file sizes, agreement with the
integer model and onnxruntime latency of the QDQ model vs model.int.onnx vs the fp32
original, side by side in one run.

    python benchmarks/bench_export.py [--dataset ndigits,motion] [--plans uni4,mixed]
                                      [--samples 32] [--reps 5] [--json benchmarks/results/export.json]

Per dataset and plan: the model is lowered (`hqc.lowerdir.lower_model`; plan `uni4` =
uni4 on every layer, `mixed` = the first layer and the head uni4, the others cycling
fp32/uni4/uni2/pot4/pot2, the plan of tests/e2e/test_lower_examples.py), exported
(`hqc.export_qdq.export_qdq`) and compared with the integer model on the whole
validation split (`hqc.export_qdq.agreement`: predicted class, and every neuron's spikes).

Timing: onnxruntime sessions on the fp32 original, model.int.onnx and model.qdq.onnx, each
`intra_op_num_threads = inter_op_num_threads = 1`, sequential execution, default graph
optimizations, batch 1 as exported; `--reps` rounds, in each round every session runs
each of the first `--samples` validation inputs once (so that load from other processes
hits all alike); the figures are the median and the minimum of all single-inference
times (`time.perf_counter` around `session.run`), after one warm-up inference each. The
QDQ model is timed twice: as onnxruntime runs it by default (the DequantizeLinear nodes
execute on every inference) and with `session.disable_quant_qdq = 1` (no QDQ node units,
so constant folding turns the DequantizeLinear of the constant weights into float
weights once, at load).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import DATASETS, REPO, machine_info, single_thread_env, write_json  # noqa: E402

MIXED = ("fp32", "uni4", "uni2", "pot4", "pot2")


def plan_for(name: str, layers: list[Any]) -> dict[str, str]:
    if name == "uni4":
        return {layer.name: "uni4" for layer in layers}
    if name == "mixed":
        plan = {layer.name: MIXED[i % len(MIXED)] for i, layer in enumerate(layers)}
        plan[layers[0].name] = plan[layers[-1].name] = "uni4"
        return plan
    raise SystemExit(f"unknown plan {name!r} (uni4, mixed)")


class Timed:
    """One onnxruntime session, one thread, inputs of one dtype."""

    def __init__(self, model: Path, xs: list[Any], dtype: Any, config: dict[str, str] | None = None) -> None:
        import numpy as np
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.log_severity_level = 3
        for k, v in (config or {}).items():
            opts.add_session_config_entry(k, v)
        self.sess = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
        self.name = self.sess.get_inputs()[0].name
        self.xs = [np.ascontiguousarray(x, dtype=dtype) for x in xs]
        self.sess.run(None, {self.name: self.xs[0]})

    def round(self) -> list[float]:
        out = []
        for x in self.xs:
            t0 = time.perf_counter()
            self.sess.run(None, {self.name: x})
            out.append(time.perf_counter() - t0)
        return out


def bench(dataset: str, plan_name: str, work: Path, samples: int, reps: int) -> dict[str, Any]:
    import numpy as np

    from hqc.data import load_data
    from hqc.export_qdq import agreement, export_qdq
    from hqc.lowerdir import lower_model
    from hqc.pipeline import run_frontend
    from hqc.verification import to_groups

    model, data = DATASETS[dataset]
    fe = run_frontend(model)
    d = work / f"{dataset}-{plan_name}"
    r = lower_model(model, plan_for(plan_name, fe.layers), d, data=data, frontend=fe)
    q = export_qdq(d)
    t0 = time.perf_counter()
    a = agreement(d, q.path, data, "val")
    agree_s = time.perf_counter() - t0
    x = load_data(data).split("val").x[:samples]
    groups = list(to_groups(x, r.doc["input_layout"], tuple(r.doc["input"]["shape"])))
    sessions = {"fp32": Timed(model, groups, np.float32), "int_onnx": Timed(d / "model.int.onnx", groups, np.int64),
                "qdq": Timed(q.path, groups, np.float32),
                "qdq_folded": Timed(q.path, groups, np.float32, {"session.disable_quant_qdq": "1"})}
    times: dict[str, list[float]] = {k: [] for k in sessions}
    for _ in range(reps):
        for k, s in sessions.items():
            times[k] += s.round()
    ms = {k: round(1e3 * statistics.median(v), 3) for k, v in times.items()}
    ms_min = {k: round(1e3 * min(v), 3) for k, v in times.items()}
    storage: dict[str, int] = {}
    for layer in q.layers:
        storage[layer.storage] = storage.get(layer.storage, 0) + 1
    row = {
        "dataset": dataset, "plan": plan_name,
        "bytes": {"fp32_onnx": model.stat().st_size, "int_onnx": q.int_onnx_bytes, "qdq_onnx": q.bytes},
        "qdq_weight_storage": storage, "opset": q.opset,
        "agreement": a.to_dict(), "agreement_seconds": round(agree_s, 1),
        "latency_ms_median": ms, "latency_ms_min": ms_min, "timed_inferences_per_model": len(times["fp32"]),
        "qdq_vs_int_onnx_speedup": round(ms["int_onnx"] / ms["qdq"], 2),
        "qdq_vs_fp32_speedup": round(ms["fp32"] / ms["qdq"], 2),
    }
    print(f"{dataset:8s} {plan_name:6s} bytes fp32 {row['bytes']['fp32_onnx']:>9,} int {q.int_onnx_bytes:>9,} "
          f"qdq {q.bytes:>9,}  same class {a.same_prediction}/{a.samples}  spikes "
          f"{100 * (a.spike_agreement or 0):.4f} %  ms (median/min) fp32 {ms['fp32']}/{ms_min['fp32']} "
          f"int {ms['int_onnx']}/{ms_min['int_onnx']} qdq {ms['qdq']}/{ms_min['qdq']} "
          f"qdq folded {ms['qdq_folded']}/{ms_min['qdq_folded']}",
          flush=True)
    return row


def main(argv: list[str] | None = None) -> None:
    single_thread_env()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="ndigits,motion")
    ap.add_argument("--plans", default="uni4,mixed")
    ap.add_argument("--samples", type=int, default=32)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--json", type=Path, default=REPO / "benchmarks" / "results" / "export.json")
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="hqc-bench-export-") as tmp:
        for ds in args.dataset.split(","):
            for plan in args.plans.split(","):
                rows.append(bench(ds, plan, Path(tmp), args.samples, args.reps))
    write_json(args.json, {"schema": "hqc.bench.export/1", "machine": machine_info(),
                           "options": {"samples": args.samples, "reps": args.reps}, "rows": rows})
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
