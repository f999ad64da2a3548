"""The compiled C model vs onnxruntime fp32 on the original ONNX: latency per sample, one
thread, the same inputs; and the weight bytes of both.

    python benchmarks/bench_latency.py --dataset ndigits,motion --plans uni4,pot2,hqc-0.3
    python benchmarks/bench_latency.py --model build/bench/sj_t4.onnx --plans uni4 --random 16

Per model and plan: the model is lowered (`hqc.lowerdir.lower_model`) with the plan — a
uniform plan by quantizer name (uni4, pot4, uni2, pot2, fp32), or a bench_quality method
name (hqc-0.3, greedy, …) whose plan and fine-tuned model are read from
build/bench/quality/<dataset>/<method>/ — and its kernels are compiled with the Makefile's
flags (gcc -O2 -std=c99) together with a timing driver (below) instead of main.c.

Timing: `--reps` rounds; in each round onnxruntime and then every plan's C binary run
each of the `--samples` inputs once, one inference at a time (so that load from other
processes hits every case alike); the figure is the median of all single-inference times. C: `clock_gettime(CLOCK_MONOTONIC)` around `hqc_model_run` in the
driver (single-threaded C, no I/O inside the timed region). onnxruntime: the original
float ONNX, `intra_op_num_threads = inter_op_num_threads = 1`, sequential execution,
default graph optimizations, batch 1 (as exported), `time.perf_counter` around
`session.run`. One warm-up inference each. The C logits' argmax is compared with
onnxruntime's (the quantized model may differ from the float one on a few samples).

Weight bytes: the weight layers in fp32 (4 B per weight, what the float ONNX stores for
them) and packed by the plan (`lowering.json` totals); plus the ONNX file's total
initializer bytes (biases, BatchNorm and every other constant included).

Memory: `lowering.json`'s `memory` section per plan (arena and peak-live bytes, constant
and flash bytes, static RAM of the test binary by `size`). Instructions (`--callgrind N`,
default 2): valgrind's callgrind counts the instructions of the timing driver run on N
inputs, minus the same driver with the inference left out, divided by N — per inference,
independent of the machine's load.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import DATASETS, REPO, machine_info, single_thread_env, write_json  # noqa: E402

single_thread_env()

import numpy as np  # noqa: E402

UNIFORM = ("fp32", "uni4", "pot4", "uni2", "pot2")
#: The flags of the generated Makefile.
CFLAGS = ("-O2", "-std=c99")

_DRIVER = r"""
/* Timing driver: bench_c INPUT SAMPLES REPS OUT_TIMES OUT_LOGITS */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <time.h>
#include "hqc_model.h"

static hqc_arena_t arena[HQC_ARENA_WORDS];

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

int main(int argc, char **argv)
{
    long n, reps, i, r;
    int16_t *x;
    int64_t logits[HQC_OUTPUT_SIZE];
    double *t, t0;
    FILE *f, *ft, *fl;
    if (argc != 6) return 2;
    n = atol(argv[2]);
    reps = atol(argv[3]);
    x = malloc(sizeof(int16_t) * HQC_INPUT_SIZE * n);
    t = malloc(sizeof(double) * n * reps);
    f = fopen(argv[1], "rb");
    if (!x || !t || !f || fread(x, sizeof(int16_t), HQC_INPUT_SIZE * n, f) != (size_t)(HQC_INPUT_SIZE * n)) return 1;
    fclose(f);
    if (hqc_model_run(arena, x, logits) != 0) return 1; /* warm-up */
    for (r = 0; r < reps; r++)
        for (i = 0; i < n; i++) {
            t0 = now();
            if (hqc_model_run(arena, x + i * HQC_INPUT_SIZE, logits) != 0) return 1;
            t[r * n + i] = now() - t0;
        }
    ft = fopen(argv[4], "w");
    fl = fopen(argv[5], "w");
    if (!ft || !fl) return 1;
    for (i = 0; i < n * reps; i++) fprintf(ft, "%.9f\n", t[i]);
    for (i = 0; i < n; i++) {
        int j;
        hqc_model_run(arena, x + i * HQC_INPUT_SIZE, logits);
        for (j = 0; j < HQC_OUTPUT_SIZE; j++) fprintf(fl, j ? " %lld" : "%lld", (long long)logits[j]);
        fprintf(fl, "\n");
    }
    fclose(ft);
    fclose(fl);
    return 0;
}
"""


def build_c(kernels: Path, work: Path, cflags: Sequence[str] = CFLAGS) -> Path:
    """Compile `kernels/hqc_model.c` with the timing driver → the executable."""
    drv = work / "bench_c.c"
    drv.write_text(_DRIVER, encoding="utf-8")
    exe = work / "bench_c"
    subprocess.run(["gcc", *cflags, "-I", str(kernels), "-o", str(exe), str(drv),
                    str(kernels / "hqc_model.c")], check=True, capture_output=True, text=True)
    return exe


def instructions(exe: Path, groups: np.ndarray, work: Path, n: int) -> float | None:
    """Instructions per inference (callgrind), or None without valgrind."""
    import shutil

    if n <= 0 or shutil.which("valgrind") is None:
        return None
    inp = work / "cg_input.bin"
    groups[:n].astype("<i2").tofile(inp)

    def count(samples: int, reps: int) -> int:
        out = work / "cg.out"
        res = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", str(exe), str(inp),
                              str(samples), str(reps), str(work / "cg_t.txt"), str(work / "cg_l.txt")],
                             capture_output=True, text=True, timeout=3600)
        tot = [ln for ln in res.stderr.splitlines() if "Collected" in ln]
        if res.returncode != 0 or not tot:
            raise RuntimeError(f"callgrind failed: {res.stderr[-300:]}")
        return int(tot[-1].split()[-1])

    # the driver runs warm-up + reps·samples + samples (logits) inferences: 2 reps minus 1 rep
    try:
        return (count(n, 2) - count(n, 1)) / n
    except RuntimeError as exc:  # e.g. an instruction valgrind does not know (-march=native)
        print(f"{exe}: no instruction count: {str(exc).splitlines()[-1][:120]}", flush=True)
        return None


def run_c(exe: Path, groups: np.ndarray, reps: int, work: Path) -> tuple[list[float], np.ndarray]:
    """Run the timing driver on model inputs (G, *input shape); (per-inference seconds, logits)."""
    inp = work / "input.bin"
    groups.astype("<i2").tofile(inp)
    ft, fl = work / "times.txt", work / "logits.txt"
    subprocess.run([str(exe), str(inp), str(len(groups)), str(reps), str(ft), str(fl)], check=True, timeout=3600)
    times = [float(v) for v in ft.read_text().split()]
    logits = np.array([ln.split() for ln in fl.read_text().splitlines()], dtype=np.int64)
    return times, logits


class OrtFp32:
    """onnxruntime on the original float ONNX: one intra-op and one inter-op thread,
    sequential execution, default graph optimizations, one model input at a time."""

    def __init__(self, model: Path, groups: np.ndarray) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.log_severity_level = 3
        self.sess = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
        self.name = self.sess.get_inputs()[0].name
        self.xs = [np.ascontiguousarray(g, dtype=np.float32) for g in groups]
        self.sess.run(None, {self.name: self.xs[0]})  # warm-up

    def round(self) -> list[float]:
        """Seconds of one inference of each input, in order."""
        times = []
        for xi in self.xs:
            t0 = time.perf_counter()
            self.sess.run(None, {self.name: xi})
            times.append(time.perf_counter() - t0)
        return times

    def logits(self) -> np.ndarray:
        return np.concatenate([self.sess.run(None, {self.name: xi})[0].reshape(1, -1) for xi in self.xs])


def initializer_bytes(model: Path) -> int:
    """Bytes of every initializer of an ONNX model (external data included)."""
    import onnx

    m = onnx.load(str(model))
    return int(sum(onnx.numpy_helper.to_array(t).nbytes for t in m.graph.initializer))


def _plan_source(plan: str, dataset: str | None, model: Path, layers: list[Any], quality: Path) -> tuple[Path, Any]:
    """(model to lower, plan) for a plan spec: a quantizer name or a bench_quality method."""
    if plan in UNIFORM:
        return model, {layer.name: plan for layer in layers}
    if dataset is None:
        raise SystemExit(f"plan {plan!r}: bench_quality methods need --dataset")
    work = quality / dataset / plan
    if not (work / "plan.yaml").is_file():
        raise SystemExit(f"plan {plan!r}: no {work / 'plan.yaml'} (run bench_quality.py --method {plan} first)")
    return work / "model.qat.onnx", work / "plan.yaml"


def bench_model(name: str, model: Path, x: np.ndarray, plans: list[str], dataset: str | None,
                reps: int, quality: Path, cflags: Sequence[str] = CFLAGS, callgrind: int = 2) -> dict[str, Any]:
    """Every plan of one model: C latency and bytes; onnxruntime fp32 latency once."""
    from hqc.errors import HqcError
    from hqc.layout import detect_layout
    from hqc.lowerdir import lower_model
    from hqc.pipeline import run_frontend
    from hqc.verification import to_groups

    fe = run_frontend(model)
    groups = to_groups(x, detect_layout(fe.graph), tuple(fe.graph.shape(fe.graph.inputs[0]) or ()))
    if len(groups) != len(x):
        raise SystemExit(f"{name}: the model takes several samples per input; export it at batch 1")
    ort_run = OrtFp32(model, groups)
    ort_pred = ort_run.logits().argmax(1)
    res: dict[str, Any] = {
        "model": str(model.relative_to(REPO)) if model.is_relative_to(REPO) else str(model),
        "layers": len(fe.layers), "params": sum(layer.params for layer in fe.layers),
        "samples": int(len(x)), "reps": reps, "cflags": list(cflags),
        "load_average_1min_start": round(os.getloadavg()[0], 2),
        "plans": [],
    }
    with tempfile.TemporaryDirectory(prefix="hqc-lat-") as tmp:
        built = []
        for plan in plans:
            try:
                src_model, src_plan = _plan_source(plan, dataset, model, fe.layers, quality)
            except SystemExit as exc:
                print(f"{name}: skipped: {exc}", flush=True)
                continue
            work = Path(tmp) / plan
            t0 = time.perf_counter()
            try:
                low = lower_model(src_model, src_plan, work / "int", input_range=(0, 255))
            except HqcError as exc:  # reported as a row: the model cannot be compiled
                print(f"{name} {plan}: lowering failed: {exc}", flush=True)
                res["lowering_errors"] = {**res.get("lowering_errors", {}), plan: str(exc)}
                continue
            lower_s = time.perf_counter() - t0
            exe = build_c(work / "int" / "kernels", work, cflags)
            obj = work / "hqc_model.o"
            subprocess.run(["gcc", *cflags, "-c", "-o", str(obj), str(work / "int" / "kernels" / "hqc_model.c")],
                           check=True, capture_output=True)
            size = subprocess.run(["size", "-A", str(obj)], capture_output=True, text=True).stdout
            sections = {ln.split()[0]: int(ln.split()[1]) for ln in size.splitlines()
                        if ln.startswith(".") and len(ln.split()) >= 2 and ln.split()[1].isdigit()}
            built.append((plan, low, lower_s, exe, work, sections))
        # rounds: onnxruntime, then every plan's C, each over all inputs once — so that load
        # from other processes hits every case alike
        t_ort: list[float] = []
        t_c: dict[str, list[float]] = {b[0]: [] for b in built}
        c_logits: dict[str, np.ndarray] = {}
        for _ in range(reps):
            t_ort += ort_run.round()
            for plan, _low, _s, exe, work, _sec in built:
                ts, c_logits[plan] = run_c(exe, groups, 1, work)
                t_c[plan] += ts
        ir = {plan: instructions(exe, groups, work, callgrind) for plan, _low, _s, exe, work, _sec in built}
    ort_ms = 1e3 * statistics.median(t_ort)
    res["onnxruntime_fp32"] = {"ms_median": ort_ms, "ms_min": 1e3 * min(t_ort),
                               "ms_p90": 1e3 * float(np.percentile(t_ort, 90)),
                               "initializer_bytes": initializer_bytes(model)}
    res["load_average_1min_end"] = round(os.getloadavg()[0], 2)
    for plan, low, lower_s, _exe, _work, sections in built:
        t = low.doc["totals"]
        c_ms = 1e3 * statistics.median(t_c[plan])
        row = {
            "plan": plan,
            "ms_median": c_ms, "ms_min": 1e3 * min(t_c[plan]), "ms_p90": 1e3 * float(np.percentile(t_c[plan], 90)),
            "speedup_vs_onnxruntime": ort_ms / c_ms,
            "packed_weight_bytes": t["packed_weight_bytes"], "fp32_weight_bytes": t["fp32_weight_bytes"],
            "object_sections": {k: sections[k] for k in (".text", ".rodata", ".data", ".bss") if k in sections},
            "same_prediction_as_onnxruntime": int((c_logits[plan].argmax(1) == ort_pred).sum()),
            "lower_seconds": round(lower_s, 1),
            "memory": low.doc.get("memory"),
            "instructions_per_inference": ir[plan],
        }
        res["plans"].append(row)
        print(f"{name:<10} {plan:<10} C {c_ms:8.3f} ms  ort fp32 {ort_ms:8.3f} ms  ×{row['speedup_vs_onnxruntime']:.2f}  "
              f"weights {t['packed_weight_bytes']} B vs {t['fp32_weight_bytes']} B", flush=True)
    return res


def main(argv: list[str] | None = None) -> None:
    """Command line: see the module docstring."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="ndigits,motion", help="shipped examples (comma list; '' for none)")
    p.add_argument("--model", type=Path, action="append", default=[], help="another ONNX model (random inputs)")
    p.add_argument("--plans", default="uni4,pot2", help="quantizer names and/or bench_quality methods")
    p.add_argument("--model-plans", default="uni4,pot2", help="plans for --model (quantizer names)")
    p.add_argument("--samples", type=int, default=16, help="val inputs (default 16)")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--random", type=int, default=16, help="random inputs for --model (event counts 0..3)")
    p.add_argument("--quality", type=Path, default=REPO / "build" / "bench" / "quality")
    p.add_argument("--json", type=Path, default=REPO / "build" / "bench" / "latency.json")
    p.add_argument("--cflags", default=" ".join(CFLAGS), help="C compiler flags (default: the Makefile's)")
    p.add_argument("--tag", default="", help="suffix of the result keys (e.g. -O3 for a second flag set)")
    p.add_argument("--callgrind", type=int, default=2, help="inputs for the instruction count (0: none)")
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    doc: dict[str, Any] = {"schema": "hqc.bench.latency/1", "machine": machine_info(),
                           "samples": args.samples, "reps": args.reps, "models": {}}
    if args.json.is_file():  # keep the models of an earlier run that this run does not redo
        old = json.loads(args.json.read_text())
        doc["models"].update(old.get("models", {}))
    for ds in [d for d in args.dataset.split(",") if d]:
        model, data = DATASETS[ds]
        with np.load(data, allow_pickle=False) as z:
            x = z["x_val"][: args.samples].astype(np.float32)
        doc["models"][ds + args.tag] = bench_model(ds, model, x, args.plans.split(","), ds, args.reps, args.quality,
                                                   args.cflags.split(), args.callgrind)
        write_json(args.json, doc)
    for m in args.model:
        from hqc.pipeline import run_frontend, sample_shape

        shape = sample_shape(run_frontend(m).graph)
        rng = np.random.default_rng(0)
        x = rng.integers(0, 4, size=(args.random, *shape)).astype(np.float32)
        doc["models"][m.stem + args.tag] = bench_model(m.stem, m, x, args.model_plans.split(","), None, args.reps,
                                                       args.quality, args.cflags.split(), args.callgrind)
        write_json(args.json, doc)
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
