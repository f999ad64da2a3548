"""The lowering's rounding, measured: spikes and predictions of the integer model against
the fake-quant float model at several `--resolution-bits`.

    python benchmarks/bench_rounding.py [--samples 64] [--bits 8,12,16,20,24] [--only SUBSTRING]
                                        [--ablations] [--input-range 0,255] [--out FILE]

Models (each exported with both torch exporters, dynamo and TorchScript at opset 17):
tests/support/rescale.py's ShortcutNet and AttnNet (`build`), the SpikingJelly
SpikeDrivenTransformer configured as in tests/toolchain/lowering/test_lower_rescale.py (`sdt_small`: dim 32, 2 heads,
pooling "1111", `_calibrate_bn`), and tests/support/zoo.py's `sj_spike_driven_transformer`,
`sj_qkformer`, `sj_maxformer` (default kwargs) and `snn_leaky_convnet(reset="subtract",
beta=0.9)`. Each is lowered with `tests.support.lowering.mixed_plan` (plan offsets 0 and
1: the cycle fp32/uni4/uni2/pot4/pot2 starts at the first or the second weight layer) at
every resolution R (the LIF constants and the rescaled sums together) and compared with
`tests.support.lowering.compare_with_float` on the same `--samples` random inputs
(spikes with p = 0.3, seed 11, for spike models; Poisson(0.5) event counts for the
snnTorch net, whose example input holds counts): the fraction of identical spikes over
every LIF, the worst single LIF, and the fraction of identical predicted classes.

`--ablations` adds `bias-nearest` on every model and R (every LIF bias rounded half up,
without fold_lif's rounding toward the silent input's float spikes: the lowering before
that rule) and, on the small models (ShortcutNet, AttnNet, sdt_small), the what-ifs
quoted in docs/lowering.md ("Sums of tensors with different scales", Measured), made by
patching the lowering's module-level knobs for the duration of one lowering: `sums-only`
(the sums at R, the LIFs kept at 16), `E=<e>` (the extra fraction bits of a rescaled sum's
operand, `hqc.lowering.arith.extra_bits`, fixed at e; R = 16) and `S=24` (the sum span
cap `hqc.lowering.arith.sum_bits` fixed at 24; R = 24).

The JSON also holds a sha1 of every source file of hqc.lowering and hqc.intops (the
figures depend on them; `machine.git` only says whether the tree is dirty), and per run
the LIF channels whose bias was rounded (`bias_rounded_channels`) and, of those, the ones
rounded toward the silent input's float spikes (`bias_silent_channels`, fold_lif).

Writes benchmarks/results/rounding.json (machine, arguments, one row per run) and prints
the machine, a summary table (one row per model and plan offset, one column per R; one
figure where both exporters agree to the digits shown, else "TorchScript / dynamo") and
the table of every run. One thread.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import REPO, machine_info, single_thread_env, write_json  # noqa: E402

single_thread_env()
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

BITS = (8, 12, 16, 20, 24)
OFFSETS = (0, 1)
EXPORTERS = (("ts", False), ("dynamo", True))
SMALL = ("shortcut", "attention", "sdt_small")


# --------------------------------------------------------------------------- models
def _sdt_small(tmp: Path, dynamo: bool) -> Any:
    """SpikingJelly's SpikeDrivenTransformer as tests/toolchain/lowering/test_lower_rescale.py's test builds it."""
    import torch
    from spikingjelly.activation_based.model.spike_driven_transformer import SpikeDrivenTransformer

    from tests.support.zoo import (
        _calibrate_bn,
        _finish,
        _set_user_surrogate,
        _sj_lif_params,
        _spikes,
    )

    torch.manual_seed(0)
    model = SpikeDrivenTransformer(T=2, in_channels=2, num_classes=10, embed_dims=32, num_heads=2, depths=1,
                                   mlp_ratio=2, pooling_stat="1111")
    if not dynamo:
        _set_user_surrogate(model)
    rng = np.random.default_rng(0)
    _calibrate_bn(model, [_spikes(rng, (2, 4, 2, 32, 32))], 0)
    return _finish(f"sdt_small_{'dynamo' if dynamo else 'ts'}", model, _spikes(rng, (2, 1, 2, 32, 32)), "TBCHW", 2,
                   tmp, dynamo, _sj_lif_params, {})


def _models() -> list[tuple[str, Callable[[Path, bool], Any]]]:
    """(model id, builder(tmp, dynamo) -> tests.support.zoo.ZooModel)."""
    from tests.support import zoo
    from tests.support.rescale import build

    return [
        ("shortcut", lambda tmp, dyn: build("shortcut", dyn, tmp)),
        ("attention", lambda tmp, dyn: build("attention", dyn, tmp)),
        ("sdt_small", _sdt_small),
        ("sj_spike_driven_transformer", lambda tmp, dyn: zoo.sj_spike_driven_transformer(tmp, dynamo=dyn)),
        ("sj_qkformer", lambda tmp, dyn: zoo.sj_qkformer(tmp, dynamo=dyn)),
        ("sj_maxformer", lambda tmp, dyn: zoo.sj_maxformer(tmp, dynamo=dyn)),
        ("snn_leaky_convnet-subtract-beta0.9",
         lambda tmp, dyn: zoo.snn_leaky_convnet(tmp, dynamo=dyn, reset="subtract", beta=0.9)),
    ]


def _samples(zm: Any, n: int, seed: int = 11) -> np.ndarray:
    """n samples (N, T, ...) in hqc's data layout: spikes (p = 0.3) when the model's example
    input is binary, else Poisson(0.5) event counts; the same seed for every model, so the
    first k samples of a larger n are the samples of n = k."""
    from tests.support.zoo import _counts, _spikes

    x = np.moveaxis(np.asarray(zm.example_input), zm.input_layout.index("B"), 0)[0]  # (T, ...)
    if zm.input_layout.index("T") != 0:
        raise ValueError(f"{zm.name}: the benchmark expects the time axis first, got {zm.input_layout}")
    rng = np.random.default_rng(seed)
    if np.all((x == 0) | (x == 1)):
        return _spikes(rng, (n, *x.shape))
    return _counts(rng, (n, *x.shape))


# --------------------------------------------------------------------------- what-ifs
@contextlib.contextmanager
def _variant(name: str) -> Iterator[int | None]:
    """Patch the lowering's knobs for one ablation; yields the LIF resolution to force
    (None: the run's R)."""
    import hqc.lowering.arith as arith
    import hqc.lowering.neurons as neurons

    saved = (arith.extra_bits, arith.sum_bits, neurons.fold_lif, neurons._round_bias)
    try:
        if name == "bias-nearest":  # every LIF bias rounded half up (no silent-input rounding)
            from hqc.lowering.affine import round_half_up

            neurons._round_bias = lambda n, ch, scaled, shift, attrs, window: (
                [round_half_up(v) << shift for v in scaled], 0)
        elif name == "sums-only":  # the LIFs at the default 16 bits, the sums at R
            fold = neurons.fold_lif
            neurons.fold_lif = lambda p, s, res, where, membrane=False: fold(p, s, 16, where, membrane)
        elif name.startswith("E="):
            e = int(name[2:])
            arith.extra_bits = lambda res: e
        elif name.startswith("S="):
            cap = int(name[2:])
            arith.sum_bits = lambda res: cap
        elif name != "default":
            raise ValueError(f"unknown variant {name!r}")
        yield None
    finally:
        arith.extra_bits, arith.sum_bits, neurons.fold_lif, neurons._round_bias = saved


def _ablation_runs() -> list[tuple[str, int, tuple[int, ...]]]:
    """(variant, plan offset or -1 for both, resolutions)."""
    return [
        ("sums-only", -1, (8, 12)),
        ("E=0", -1, (16,)),
        ("E=2", 1, (16,)),
        ("E=4", 1, (16,)),
        ("E=8", 1, (16,)),
        ("E=12", 1, (16,)),
        ("E=16", 1, (16,)),
        ("S=24", 1, (24,)),
    ]


# --------------------------------------------------------------------------- one run
def _spike_count(lm: Any, groups: int) -> int:
    return sum(groups * int(np.prod(lm.graph.shape(t))) for t in lm.tensor_map.values())


def measure(fe: Any, plan: dict, x: np.ndarray, R: int, input_range: tuple[int, int], variant: str) -> dict[str, Any]:
    """Lower at R (under `variant`) and compare with the fake-quant float model on x."""
    from hqc.passes.lower_int import lower_graph
    from tests.support.lowering import compare_with_float, groups_of

    t0 = time.perf_counter()
    with _variant(variant):
        lm = lower_graph(fe.graph, fe.layers, plan, input_range=input_range, resolution_bits=R)
    lower_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    r = compare_with_float(fe, plan, lm, x)
    total = _spike_count(lm, len(groups_of(x, fe)))
    return {
        "spikes": r["spikes"],
        "spikes_total": total,
        "spikes_differing": round((1.0 - r["spikes"]) * total),
        "worst_lif": r["min_layer"],
        "predictions": r["argmax"],
        "logit_err": r["logit_err"],
        "lincomb": sum(1 for nd in lm.graph.nodes() if nd.op == "LinComb"),
        "bias_rounded_channels": sum(int(n.get("bias_rounded_channels", 0)) for n in lm.neurons),
        "bias_silent_channels": sum(int(n.get("bias_silent_channels", 0)) for n in lm.neurons),
        "lower_s": round(lower_s, 2),
        "compare_s": round(time.perf_counter() - t0, 2),
    }


# --------------------------------------------------------------------------- tables
def _pct(v: float) -> str:
    """Percent with two significant digits of the difference from 100 % (1 to 4
    decimals; more when 4 would round to 100)."""
    if v >= 1.0:
        return "100 %"
    d = max(1, min(4, 2 - math.floor(math.log10(100 * (1 - v)))))
    while float(f"{100 * v:.{d}f}") >= 100.0:
        d += 1
    return f"{100 * v:.{d}f} %"


def _cell(runs: dict[str, dict[str, Any]]) -> str:
    """One table cell from the runs of both exporters: spikes (worst LIF, predictions)."""
    got = [runs[e] for e, _ in EXPORTERS if e in runs and "spikes" in runs[e]]
    if not got:
        return "; ".join(runs[e].get("error", "–")[:40] for e in runs) or "–"

    def both(key: str) -> str:
        vals = [_pct(r[key]) for r in got]
        return vals[0] if len(set(vals)) == 1 else " / ".join(vals)

    s = both("spikes")
    extra = []
    if any(r["spikes"] < 1.0 for r in got):
        extra.append(f"worst LIF {both('worst_lif')}")
    if any(r["predictions"] < 1.0 for r in got):
        extra.append(f"predictions {both('predictions')}")
    return s + (f" ({'; '.join(extra)})" if extra else "")


def summary_table(rows: list[dict[str, Any]], variant: str = "default") -> str:
    sel = [r for r in rows if r["variant"] == variant]
    bits = sorted({r["R"] for r in sel})
    keys: list[tuple[str, int]] = []
    for r in sel:
        if (r["model"], r["offset"]) not in keys:
            keys.append((r["model"], r["offset"]))
    lines = ["| model (plan offset) | spikes | " + " | ".join(f"R = {b}" for b in bits) + " |",
             "| --- | --- | " + " | ".join("---" for _ in bits) + " |"]
    for model, off in keys:
        cells = []
        for b in bits:
            runs = {r["exporter"]: r for r in sel if r["model"] == model and r["offset"] == off and r["R"] == b}
            cells.append(_cell(runs) if runs else "–")
        n = next((r["spikes_total"] for r in sel if r["model"] == model and r["offset"] == off and "spikes_total" in r), None)
        lines.append(f"| {model} ({off}) | {n:,} |" if n else f"| {model} ({off}) | – |")
        lines[-1] += " " + " | ".join(cells) + " |"
    return "\n".join(lines)


def runs_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| model | exporter | offset | variant | R | spikes identical | differing | worst LIF | predictions | "
             "LinComb | rounded biases (silent) | lower / compare s |",
             "|" + " --- |" * 12]
    for r in rows:
        if "spikes" not in r:
            lines.append(f"| {r['model']} | {r['exporter']} | {r['offset']} | {r['variant']} | {r['R']} | "
                         f"{r.get('error', '?')[:80]} |" + " |" * 6)
            continue
        lines.append(
            f"| {r['model']} | {r['exporter']} | {r['offset']} | {r['variant']} | {r['R']} | "
            f"{100 * r['spikes']:.4f} % | {r['spikes_differing']:,} of {r['spikes_total']:,} | "
            f"{100 * r['worst_lif']:.3f} % | {100 * r['predictions']:.1f} % | {r['lincomb']} | "
            f"{r['bias_rounded_channels']} ({r['bias_silent_channels']}) | {r['lower_s']:.1f} / {r['compare_s']:.1f} |")
    return "\n".join(lines)


def sources_fingerprint() -> dict[str, str]:
    """sha1 (12 hex digits) of every lowering and integer-dialect source file: the figures
    depend on them, and the git state may be dirty."""
    import hashlib

    files = sorted((REPO / "toolchain" / "lowering").glob("*.py")) + sorted((REPO / "toolchain" / "intops").glob("*.py"))
    return {str(f.relative_to(REPO)): hashlib.sha1(f.read_bytes()).hexdigest()[:12] for f in files}


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--bits", default=",".join(str(b) for b in BITS), help="resolution bits, comma-separated")
    ap.add_argument("--only", default=None, help="only models whose id contains this")
    ap.add_argument("--ablations", action="store_true", help="add the what-ifs on the small models")
    ap.add_argument("--input-range", default="0,255", help="the declared model input range lo,hi")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "rounding.json")
    args = ap.parse_args(argv)
    bits = tuple(int(b) for b in args.bits.split(","))
    lo, hi = (int(v) for v in args.input_range.split(","))

    import torch

    torch.set_num_threads(1)
    from hqc.pipeline import run_frontend
    from tests.support.lowering import mixed_plan

    machine = machine_info()
    print(f"machine: {machine['cpu']}, {machine['nproc']} cores, load {machine['load_average_1min']}, "
          f"torch {machine['torch']} ({machine['torch_threads']} thread), git {machine['git']}", flush=True)
    rows: list[dict[str, Any]] = []
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="hqc-rounding-") as tmp:
        for mid, builder in _models():
            if args.only and args.only not in mid:
                continue
            for ex, dynamo in EXPORTERS:
                base = {"model": mid, "exporter": ex}
                try:
                    t0 = time.perf_counter()
                    zm = builder(Path(tmp), dynamo)
                    fe = run_frontend(str(zm.onnx_path))
                    x = _samples(zm, args.samples)
                    rates = [n.firing_rate for n in zm.neurons if n.firing_rate is not None]
                    base.update(neurons=len(fe.neurons), weight_layers=len(fe.layers),
                                firing=[round(min(rates), 3), round(max(rates), 3)] if rates else None,
                                build_s=round(time.perf_counter() - t0, 1))
                except Exception as exc:  # a row per model, whatever fails
                    rows.append({**base, "offset": -1, "variant": "default", "R": -1,
                                 "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}",
                                 "traceback": traceback.format_exc(limit=3)})
                    print(f"{mid} {ex}: {rows[-1]['error']}", flush=True)
                    continue
                todo = [("default", off, R) for off in OFFSETS for R in bits]
                if args.ablations:
                    todo += [("bias-nearest", off, R) for off in OFFSETS for R in bits]
                if args.ablations and mid in SMALL:
                    todo += [(v, o, R) for v, offs, Rs in _ablation_runs()
                             for o in (OFFSETS if offs < 0 else (offs,)) for R in Rs]
                for variant, off, R in todo:
                    row = {**base, "offset": off, "variant": variant, "R": R, "samples": len(x)}
                    try:
                        row.update(measure(fe, mixed_plan(fe.layers, off), x, R, (lo, hi), variant))
                        msg = f"spikes {100 * row['spikes']:.4f} %, worst LIF {100 * row['worst_lif']:.3f} %, " \
                              f"predictions {100 * row['predictions']:.1f} %"
                    except Exception as exc:
                        row["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
                        row["traceback"] = traceback.format_exc(limit=3)
                        msg = row["error"]
                    rows.append(row)
                    print(f"{mid} {ex} offset {off} {variant} R {R}: {msg}", flush=True)
    wall = round(time.perf_counter() - t_all, 1)
    write_json(args.out, {"machine": machine, "sources": sources_fingerprint(), "args": {"samples": args.samples, "bits": list(bits),
                                                      "input_range": [lo, hi], "ablations": args.ablations,
                                                      "only": args.only},
                          "wall_s": wall, "rows": rows})
    print(f"\nSpikes identical between the integer and the fake-quant float model ({args.samples} samples, "
          f"input range {lo}..{hi}; 'TorchScript / dynamo' where the exporters differ), {wall:.0f} s:\n")
    print(summary_table(rows))
    for variant in dict.fromkeys(r["variant"] for r in rows if r["variant"] != "default"):
        print(f"\n{variant}:\n")
        print(summary_table(rows, variant))
    print("\nEvery run:\n")
    print(runs_table(rows))
    return 0 if all("error" not in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
