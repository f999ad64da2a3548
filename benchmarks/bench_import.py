"""Import-speed benchmark: SpikingJelly's Spikformer (depth 2, dim 256, 16 heads, T=16,
32×32, 2 channels) through `hqc`'s frontend (import → canonicalize → recognize-neurons →
annotate-layers), both exporters, plus a depth-3 dynamo export (≈4,200 ONNX nodes).

    python benchmarks/bench_import.py [--cache build/bench] [--repeat 3]

Exports are cached in --cache (the dynamo export itself takes about a minute). Prints
ONNX nodes, IR nodes after recognition, neurons, layers, and the median frontend time.
Target (issue 2): ≤ 5 s on 2 cores and < 300 IR nodes.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", default="build/bench")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    cases = [
        ("dynamo, depth 2", cache / "sj_spikformer_d2.onnx", []),
        ("torchscript, depth 2", cache / "sj_spikformer_d2_ts.onnx", ["--no-dynamo"]),
        ("dynamo, depth 3", cache / "sj_spikformer_d3.onnx", ["--depth", "3"]),
    ]
    for _, path, extra in cases:
        if not path.exists():
            subprocess.run(
                [sys.executable, str(HERE / "export_big_spikformer.py"), *extra, str(path)],
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
    from hqc.pipeline import run_frontend

    print(f"machine: {_cpu()}, {os.cpu_count()} cores, python {platform.python_version()}")
    print(f"{'export':24} {'ONNX nodes':>10} {'IR nodes':>9} {'LIF':>4} {'layers':>6} {'median s':>9} {'runs':>20}")
    for label, path, _ in cases:
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            fe = run_frontend(path)
            times.append(time.perf_counter() - t0)
        runs = " ".join(f"{t:.2f}" for t in times)
        print(
            f"{label:24} {fe.onnx_nodes:>10} {len(fe.graph):>9} {len(fe.neurons):>4} {len(fe.layers):>6} "
            f"{statistics.median(times):>9.2f} {runs:>20}"
        )


if __name__ == "__main__":
    main()
