"""The paper-scale Spikformer through every hqc command: export, inspect, cost, lower, verify.

SpikingJelly 2.0's own `Spikformer` in the Spikformer paper's CIFAR10-DVS configuration
(export_big_spikformer.py --paper: 4-conv tokenizer, 2 blocks, dim 256, 16 heads, T = 16,
2×128×128 input, patch 16 → 8×8 tokens; 2.56 M parameters, ~6 G MACs per sample, ~3,100
ONNX nodes with the dynamo exporter), BatchNorm set so that its neurons fire.

    python benchmarks/bench_paper_spikformer.py [--work build/bench/paper] [--samples 8]

Each command runs as a user would run it (a subprocess of the `hqc` console script) and
is timed wall-clock; `hqc lower` uses a plan cycling through all five quantizers, `hqc
verify` checks numpy reference = onnxruntime = C on `--samples` random event inputs and
compares with the fake-quant float model. Writes benchmarks/results/paper_spikformer.json.
The C-vs-onnxruntime latency of this model is measured by bench_latency.py (see
benchmarks/README.md); its figures go into BENCHMARKS.md §3 with the others.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import REPO, machine_info, single_thread_env, write_json  # noqa: E402

single_thread_env()

import numpy as np  # noqa: E402

MIXED = ("fp32", "uni4", "uni2", "pot4", "pot2")


def _run(cmd: list[str], log: Path) -> tuple[float, str]:
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    log.write_text(res.stdout + res.stderr, encoding="utf-8")
    if res.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({res.returncode}): {(res.stderr or res.stdout).strip()[-400:]}")
    return seconds, res.stdout


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=REPO / "build" / "bench" / "paper")
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "paper_spikformer.json")
    args = ap.parse_args(argv)
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    model = work / "spikformer_paper.onnx"
    doc: dict[str, Any] = {"machine": machine_info(), "model": str(model.relative_to(REPO)) if model.is_relative_to(REPO) else str(model)}
    if not model.exists():
        t, out = _run([sys.executable, str(REPO / "benchmarks" / "export_big_spikformer.py"), "--paper", str(model)],
                      work / "export.log")
        doc["export_s"] = round(t, 1)
        doc["export"] = out.strip()
    import onnx

    doc["onnx_nodes"] = len(onnx.load(str(model), load_external_data=False).graph.node)

    t, out = _run(["hqc", "inspect", str(model)], work / "inspect.log")
    doc["inspect_s"] = round(t, 2)
    doc["inspect_summary"] = [ln for ln in out.splitlines() if ln.startswith(("total", "model", "input"))]

    from hqc.pipeline import run_frontend

    fe = run_frontend(model)
    plan = {layer.name: MIXED[i % len(MIXED)] for i, layer in enumerate(fe.layers)}
    plan_path = work / "plan.yaml"
    import yaml

    plan_path.write_text(yaml.safe_dump({"schema": "hqc.plan/1", "layers": {k: {"choice": v} for k, v in plan.items()}}))
    t, out = _run(["hqc", "cost", str(model), "--target", "cmos45", "--plan", str(plan_path), "--json"], work / "cost.log")
    cost = json.loads(out)
    doc["cost_s"] = round(t, 2)
    doc["cost_total"] = cost.get("total")

    rng = np.random.default_rng(0)
    shape = tuple(int(d) for d in fe.graph.shape(fe.graph.inputs[0]))  # (T, 1, C, H, W)
    x = (rng.random((args.samples, shape[0], *shape[2:])) < 0.15).astype(np.float32)
    y = rng.integers(0, 10, size=args.samples)
    data = work / "events.npz"
    np.savez(data, x=x, y=y, x_val=x, y_val=y)

    low = work / "lowered"
    t, out = _run(["hqc", "lower", str(model), "--plan", str(plan_path), "-o", str(low), "--data", str(data)],
                  work / "lower.log")
    doc["lower_s"] = round(t, 1)
    ld = json.loads((low / "lowering.json").read_text())
    doc["lowering_totals"] = ld["totals"]
    doc["int_onnx_bytes"] = (low / "model.int.onnx").stat().st_size
    doc["c_source_bytes"] = (low / "kernels" / "hqc_model.c").stat().st_size

    t, out = _run(["hqc", "verify", str(low), "--data", str(data), "--split", "val", "--json"], work / "verify.log")
    doc["verify_s"] = round(t, 1)
    doc["verify"] = json.loads(out)
    write_json(args.out, doc)
    print(json.dumps({k: v for k, v in doc.items() if k != "machine"}, indent=1))
    return 0 if doc["verify"]["identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
