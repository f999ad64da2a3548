"""Supernet cost vs fixed-plan QAT, side by side in one run, on one model and batch.

    python benchmarks/bench_supernet.py                       # example Spikformer, random spikes
    python benchmarks/bench_supernet.py --model examples/ndigits/spikformer.onnx \
        --data examples/ndigits/ndigits.npz --threads 1

Part 1 — one training step (forward + backward) on the same batch:
  float model; fixed-plan QAT (fake-quant, cached scales); the composite supernet (soft
  gates: search step 2; hard gates with frozen weights: step 1); the naive K-branch
  supernet (K convs per layer); and both with scales recomputed at every step. Target:
  composite supernet / QAT ≤ 1.25. Also the cost of one `refresh_scales()`.
Part 2 — a whole search epoch (both steps) vs a QAT epoch over the same training data,
  through `run_search` (its progress events carry epoch times), for several held-out
  fractions: the weight step sees (1 − f) of the data, the α step one held-out batch per
  weight batch, so the search epoch costs ≈ (1 − f) · (t_step1 + t_step2) / t_qat of a
  QAT epoch.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]


def machine() -> str:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from benchlib import cpu_model

    cpu = cpu_model()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"nproc {os.cpu_count()}, CPU {cpu}, torch {torch.__version__}, "
            f"torch threads {torch.get_num_threads()}, load average {load:.2f}")


def export_example(path: Path, T: int, dim: int, depth: int, img: int, classes: int) -> None:
    """The example Spikformer (examples/spikformer/model.py), TorchScript export, BN
    calibrated on random spikes so that its layers fire."""
    sys.path.insert(0, str(REPO / "examples" / "spikformer"))
    from model import Spikformer  # type: ignore[import-not-found]

    torch.manual_seed(0)
    m = Spikformer(T=T, in_channels=2, img_size=img, dim=dim, heads=max(1, dim // 16), depth=depth,
                   num_classes=classes)
    m.train()
    with torch.no_grad():
        for _ in range(3):
            m((torch.rand(16, T, 2, img, img) < 0.2).float())
    m.eval()
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(m, (torch.zeros(1, T, 2, img, img),), str(path), dynamo=False, opset_version=17)


def interleaved(cases: list[tuple[str, object]], reps: int) -> list[tuple[str, float]]:
    """Median seconds of each case, the cases run round-robin (rep 1 of all, rep 2 of all,
    ...) so that load from other processes hits them alike; one warm-up each."""
    for _, fn in cases:
        fn()  # type: ignore[operator]
    times: dict[str, list[float]] = {name: [] for name, _ in cases}
    for _ in range(reps):
        for name, fn in cases:
            t0 = time.perf_counter()
            fn()  # type: ignore[operator]
            times[name].append(time.perf_counter() - t0)
    return [(name, statistics.median(times[name])) for name, _ in cases]


def part1(model_path: Path, x: torch.Tensor, y: torch.Tensor, reps: int) -> list[tuple[str, float]]:
    from hqc.backend import TorchModel
    from hqc.choices import DEFAULT_CHOICES, parse_choice
    from hqc.pipeline import run_frontend
    from hqc.supernet import Supernet
    from hqc.targets import load_target

    fe = run_frontend(model_path)
    five = [parse_choice(c) for c in DEFAULT_CHOICES]
    cands = {layer.name: five for layer in fe.layers}
    tgt = load_target("cmos45")
    # one network per case family, so that one case's scale cache never serves another
    comp = Supernet(TorchModel(fe.graph.copy()), fe.layers, cands, tgt).train()
    qat = Supernet(TorchModel(fe.graph.copy()), fe.layers, cands, tgt).train()
    naive = Supernet(TorchModel(fe.graph.copy()), fe.layers, cands, tgt, composite=False).train()
    gen = torch.Generator().manual_seed(0)
    plan = {n: five[1 + i % 4] for i, n in enumerate(comp.names)}  # a mixed quantized plan
    qat.set_plan(plan)
    for net in (comp, naive, qat):
        net.refresh_scales()

    def mode(net, setup, refresh=False, frozen=False):
        def run():
            setup()
            if refresh:
                net.refresh_scales()
            for p in net.weight_parameters():
                p.requires_grad_(not frozen)
            net.zero_grad(set_to_none=True)
            F.cross_entropy(net(x), y).backward()
            for p in net.weight_parameters():
                p.requires_grad_(True)
        return run

    soft = lambda: comp.sample(1.0, gen, hard=False, grad=False)  # noqa: E731
    cases = [
        ("float model", mode(qat, qat.set_float)),
        ("QAT, fixed plan (cached scales)", mode(qat, lambda: qat.set_plan(plan))),
        ("QAT, fixed plan (scales every step)", mode(qat, lambda: qat.set_plan(plan), refresh=True)),
        ("supernet composite, soft (step 2, cached scales)", mode(comp, soft)),
        ("supernet composite, soft (scales every step)", mode(comp, soft, refresh=True)),
        ("supernet composite, hard (step 1, weights frozen)",
         mode(comp, lambda: comp.sample(1.0, gen, hard=True), frozen=True)),
        ("supernet naive K-branch, soft", mode(naive, lambda: naive.sample(1.0, gen, hard=False, grad=False))),
        ("refresh_scales() alone (all layers, 4 quantizers)", comp.refresh_scales),
    ]
    rows = interleaved(cases, reps)
    return rows


def part2(model_path: Path, data_path: Path, fractions: list[float], batch: int) -> list[tuple[float, float, float, int, int]]:
    from hqc.search import SearchConfig, run_search

    out = []
    for f in fractions:
        times: dict[str, tuple[float, int]] = {}

        def progress(event, info, times=times):
            if event == "phase":
                times[info["phase"] + "_steps"] = (0.0, info["steps"])
            if event == "epoch":
                times[info["phase"]] = (info["seconds"], times[info["phase"] + "_steps"][1])

        with tempfile.TemporaryDirectory() as tmp:
            run_search(model_path, data_path, out_dir=tmp, progress=progress,
                       config=SearchConfig(epochs=1, finetune_epochs=1, holdout_fraction=f, batch_size=batch))
        (ts, ns), (tq, nq) = times["search"], times["finetune"]
        out.append((f, ts, tq, ns, nq))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, help="ONNX model (default: export the example Spikformer)")
    ap.add_argument("--data", type=Path, help="NPZ for part 2 (default: random spikes)")
    ap.add_argument("--T", type=int, default=4)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--depth", type=int, default=2)
    ap.add_argument("--img", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--limit", type=int, default=320, help="training samples used in part 2")
    ap.add_argument("--fractions", default="0.1,0.2,0.5")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--skip-epochs", action="store_true", help="part 1 only")
    ap.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        tmpd = Path(tmp)
        model = args.model
        if model is None:
            model = tmpd / "spikformer.onnx"
            export_example(model, args.T, args.dim, args.depth, args.img, 10)
            print(f"model: example Spikformer T={args.T} dim={args.dim} depth={args.depth} img={args.img} (random weights)")
        else:
            print(f"model: {model}")
        from hqc.backend import TorchModel
        from hqc.pipeline import run_frontend

        tm = TorchModel(run_frontend(model).graph)
        shape = list(tm.input_shape)
        shape.pop(tm.layout.index("B"))
        classes = int(run_frontend(model).graph.shape(tm.outputs[0])[-1])
        rng = np.random.default_rng(0)
        if args.data is not None:
            with np.load(args.data) as d:
                xs, ys = d["x"][: args.limit].astype(np.float32), d["y"][: args.limit]
                xv, yv = (d["x_val"][:64], d["y_val"][:64]) if "x_val" in d else (xs[:64], ys[:64])
        else:
            xs = (rng.random((args.limit, *shape)) < 0.15).astype(np.float32)
            ys = rng.integers(0, classes, args.limit)
            xv, yv = xs[:64], ys[:64]
        x = torch.from_numpy(np.ascontiguousarray(xs[: args.batch_size]))
        y = torch.from_numpy(ys[: args.batch_size].astype(np.int64))
        print(f"batch: {tuple(x.shape)}\n")
        rows = part1(model, x, y, args.reps)
        ref = dict(rows)["QAT, fixed plan (cached scales)"]
        w = max(len(r[0]) for r in rows)
        print(f"{'forward + backward, one batch':<{w}}  {'median s':>9}  {'× QAT':>6}")
        for name, t in rows:
            print(f"{name:<{w}}  {t:9.4f}  {t / ref:6.2f}")
        ratio = dict(rows)["supernet composite, soft (step 2, cached scales)"] / ref
        print(f"\ncomposite supernet / QAT = {ratio:.2f} (target <= 1.25: {'met' if ratio <= 1.25 else 'NOT met'})")
        doc = {"schema": "hqc.bench.supernet/1", "machine": machine(), "model": str(args.model or "example"),
               "batch": list(x.shape), "reps": args.reps,
               "part1": [{"case": name, "seconds": t, "vs_qat": t / ref} for name, t in rows],
               "composite_vs_qat": ratio, "part2": None}
        if args.skip_epochs:
            _write_json(args.json, doc)
            return
        data = tmpd / "data.npz"
        np.savez(data, x=xs, y=ys, x_val=xv, y_val=yv)
        fr = [float(v) for v in args.fractions.split(",")]
        print(f"\nwhole epochs over the same {len(xs)} training samples (batch {args.batch_size}):")
        print(f"{'held-out f':>10}  {'search epoch s':>14}  {'steps':>5}  {'QAT epoch s':>11}  {'steps':>5}  {'search/QAT':>10}")
        doc["part2"] = {"training_samples": len(xs), "rows": []}
        for f, ts, tq, ns, nq in part2(model, data, fr, args.batch_size):
            print(f"{f:10.2f}  {ts:14.2f}  {ns:5d}  {tq:11.2f}  {nq:5d}  {ts / tq:10.2f}")
            doc["part2"]["rows"].append({"holdout_fraction": f, "search_epoch_s": ts, "search_steps": ns,
                                         "qat_epoch_s": tq, "qat_steps": nq, "ratio": ts / tq})
        _write_json(args.json, doc)


def _write_json(path: Path | None, doc: dict) -> None:
    if path is not None:
        import json

        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
