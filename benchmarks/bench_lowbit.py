"""Low-bit fine-tune on N-Digits: fixed plans (every layer at one quantizer) after the
default fine-tune, the new one (learned LSQ scales, distillation, warm-up + cosine) beside
the old one (MSE-grid scales, straight-through, AdamW 3e-5 → 1e-5, no distillation).

    python benchmarks/bench_lowbit.py                      # uni2, pot2, uni4; new and old
    python benchmarks/bench_lowbit.py --plans uni2 --fine-tunes new
    python benchmarks/bench_lowbit.py --plans ""    # step timing only, kept results

For each (plan, fine-tune): `hqc.search.run_search` with the plan file (the search is
skipped, the fine-tune runs with `SearchConfig()`'s defaults, or the old settings), then
`lower_model` and `verify_dir` on the test split: float / fake-quant / deployed integer
test accuracy (the integer model's logits checked numpy = onnxruntime = C on every test
sample), the fine-tune's seconds per epoch. Runs are sequential in one process, so their
times compare side by side (the machine is shared: times are ratios, not absolutes).
Writes benchmarks/results/lowbit.json; working folders in build/bench/lowbit/.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import DATASETS, REPO, machine_info, single_thread_env, write_json  # noqa: E402

single_thread_env()

SCHEMA = "hqc.bench.lowbit/1"
#: The fine-tune before issue 14 (its defaults then), as SearchConfig overrides.
OLD = {"learn_scales": False, "finetune_lr": 3e-5, "finetune_min_lr": 1e-5, "finetune_warmup": 0.0,
       "finetune_distill": 0.0}


def run_one(plan_q: str, fine_tune: str, root: Path, threads: int) -> dict[str, Any]:
    """Fine-tune the all-`plan_q` plan with the `fine_tune` settings, lower, verify on test."""
    import torch
    import yaml

    from hqc.lowerdir import lower_model
    from hqc.pipeline import run_frontend
    from hqc.search import SearchConfig, run_search
    from hqc.verification import verify_dir

    torch.set_num_threads(threads)
    model, data = DATASETS["ndigits"]
    work = root / f"{fine_tune}-{plan_q}"
    work.mkdir(parents=True, exist_ok=True)
    fe = run_frontend(model)
    plan_file = work / "given_plan.yaml"
    plan_file.write_text(yaml.safe_dump({"layers": {layer.name: plan_q for layer in fe.layers}}), encoding="utf-8")
    cfg = SearchConfig(**(OLD if fine_tune == "old" else {}))
    epochs: list[float] = []

    def progress(kind: str, info: dict[str, Any]) -> None:
        if kind == "epoch" and info.get("phase") == "finetune":
            epochs.append(round(float(info["seconds"]), 2))

    t0 = time.perf_counter()
    sr = run_search(model, data, out_dir=work, config=cfg, plan=plan_file, progress=progress)
    search_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    low = lower_model(sr.qat_model_path, sr.plan_path, work / "int", data=str(data))
    vr = verify_dir(work / "int", data, split="test")
    if not vr.identical:
        raise SystemExit(f"{work}: integer logits differ between numpy, onnxruntime and C")
    acc = sr.document["accuracy"]
    return {
        "plan": f"18x{plan_q}" if len(fe.layers) == 18 else f"all {plan_q}",
        "fine_tune": fine_tune,
        "config": {k: getattr(cfg, k) for k in ("finetune_epochs", "finetune_lr", "finetune_min_lr",
                                                "finetune_warmup", "scale_lr", "finetune_distill",
                                                "learn_scales", "batch_size", "seed")},
        "test": {"float": acc["test"]["float"], "fake_quant": acc["test"]["fake_quant"],
                 "fake_quant_verify": vr.accuracy_float, "integer": vr.accuracy_int,
                 "samples": vr.samples, "agree": vr.agree,
                 "integer_vs_fake_quant_predictions": vr.float_vs_int_predictions,
                 "spike_agreement": vr.spike_agreement},
        "val": {"float": acc["float"], "fake_quant": acc["fake_quant"]},
        "learned_scales": sorted(low.doc.get("scales", {}).get("layers", [])),
        "seconds": {"finetune_epochs": epochs, "run_search": round(search_seconds, 1),
                    "lower_verify": round(time.perf_counter() - t0, 1)},
    }


def step_times(plan_q: str, rounds: int, steps: int, threads: int) -> dict[str, Any]:
    """Seconds per fine-tune step, new vs old, measured interleaved in one process: per
    round, `steps` steps of `_Run.finetune_epoch` with the old settings and `steps` with
    the new (order alternating between rounds), wall and CPU time, on the same `steps · batch` training samples (the old one's scale refresh every
    10 steps included; the new one's teacher logits computed beforehand, as run_search does)."""
    import numpy as np
    import torch

    from hqc.backend import TorchModel
    from hqc.choices import parse_choice
    from hqc.data import Split, load_data
    from hqc.passes import Context, run_passes
    from hqc.passes.insert_quant_choices import candidates_of
    from hqc.pipeline import run_frontend
    from hqc.search import SearchConfig, _Dist, _Run, predict
    from hqc.supernet import Supernet
    from hqc.targets import load_target

    torch.set_num_threads(threads)
    model, data = DATASETS["ndigits"]
    runs = {}
    for ft in ("old", "new"):
        fe = run_frontend(model)
        graph, _ = run_passes(fe.graph, ["insert-quant-choices"], Context(options={}))
        net = Supernet(TorchModel(graph), fe.layers, candidates_of(graph, fe.layers), load_target("cmos45"))
        cfg = SearchConfig(**(OLD if ft == "old" else {}))
        ds = load_data(data, None)
        n = steps * cfg.batch_size
        train = Split(ds.train.x[:n], ds.train.y[:n])
        run = _Run(net, train, None, train, cfg, _Dist(), None)
        net.set_float()
        run.teacher = predict(net, train, cfg.eval_batch_size) if cfg.finetune_distill > 0 else None
        net.set_plan({layer.name: parse_choice(plan_q) for layer in fe.layers})
        run.start_finetune()
        cfg.finetune_epochs = rounds
        runs[ft] = run
    seconds: dict[str, list[float]] = {"old": [], "new": []}
    cpu: dict[str, list[float]] = {"old": [], "new": []}
    for r in range(rounds):
        for ft in ("old", "new") if r % 2 == 0 else ("new", "old"):
            t0, c0 = time.perf_counter(), time.process_time()
            runs[ft].finetune_epoch(r)
            seconds[ft].append((time.perf_counter() - t0) / steps)
            cpu[ft].append((time.process_time() - c0) / steps)
    med = {ft: float(np.median(v)) for ft, v in seconds.items()}
    med_cpu = {ft: float(np.median(v)) for ft, v in cpu.items()}
    return {"plan": plan_q, "rounds": rounds, "steps_per_round": steps,
            "seconds_per_step": {ft: [round(x, 4) for x in v] for ft, v in seconds.items()},
            "cpu_seconds_per_step": {ft: [round(x, 4) for x in v] for ft, v in cpu.items()},
            "median_seconds_per_step": {ft: round(v, 4) for ft, v in med.items()},
            "median_cpu_seconds_per_step": {ft: round(v, 4) for ft, v in med_cpu.items()},
            "new_over_old": round(med["new"] / med["old"], 3),
            "new_over_old_cpu": round(med_cpu["new"] / med_cpu["old"], 3)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--plans", default="uni2,pot2,uni4", help="quantizers of the fixed plans")
    p.add_argument("--fine-tunes", default="new,old", help="new (the default fine-tune) and/or old")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--timing-rounds", type=int, default=6, help="interleaved old/new step timing rounds (0: none)")
    p.add_argument("--timing-steps", type=int, default=10, help="steps per timing round")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "lowbit.json"))
    args = p.parse_args(argv)
    root = REPO / "build" / "bench" / "lowbit"
    timing = None
    if args.timing_rounds:
        timing = step_times("uni2", args.timing_rounds, args.timing_steps, args.threads)
        print(f"fine-tune step, interleaved: old {timing['median_seconds_per_step']['old']:.3f} s, "
              f"new {timing['median_seconds_per_step']['new']:.3f} s (new/old {timing['new_over_old']:.2f}; "
              f"CPU time new/old {timing['new_over_old_cpu']:.2f})", flush=True)
    rows = []
    for q in [s for s in args.plans.split(",") if s]:
        for ft in [s for s in args.fine_tunes.split(",") if s]:
            if ft not in ("new", "old"):
                raise SystemExit(f"unknown fine-tune {ft!r} (new, old)")
            row = run_one(q, ft, root, args.threads)
            t = row["test"]
            print(f"{row['plan']:>9} {ft:>3}: test float {100 * t['float']:.2f} %  fake-quant "
                  f"{100 * t['fake_quant']:.2f} %  integer {100 * t['integer']:.2f} %  "
                  f"epochs {row['seconds']['finetune_epochs']} s", flush=True)
            rows.append(row)
    out = Path(args.out)
    doc = {"schema": SCHEMA, "machine": machine_info(),
           "command": shlex.join(["python", "benchmarks/bench_lowbit.py", *(argv or sys.argv[1:])]),
           "step_timing": timing, "results": rows}
    if not rows and out.is_file():  # timing only: keep the accuracy results already there
        import json

        old = json.loads(out.read_text(encoding="utf-8"))
        doc = {**old, "step_timing": timing, "step_timing_machine": doc["machine"],
               "step_timing_command": doc["command"]}
    write_json(out, doc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
