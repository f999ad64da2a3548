"""Quality of hqc's plans against the baselines, on the shipped examples, one result per run.

    python benchmarks/bench_quality.py --dataset ndigits --method fp32,fixed-uni4,hqc-0.3
    python benchmarks/bench_quality.py --dataset all --method all      # every missing result

Each (dataset, method) writes build/bench/quality/<dataset>/<method>.json (and its working
folder <method>/ with plan.yaml, model.qat.onnx and the lowered integer model int/). An
existing JSON is kept (cached; `--force` reruns), and an interrupted search resumes from
its checkpoint, so runs can be split across processes and sessions.

Methods (the same 3-epoch fine-tune, learning rate and seed for every trained plan):

    fp32           the imported float model, no training; lowered with every layer fp32
    fixed-Q        every layer at Q (uni4, pot4, uni2, pot2), QAT fine-tune
    greedy         AQ4SViT-style layer-by-layer lowering (`greedy_plan`), then the fine-tune
    greedy-B       the same with a budget of B points instead of `--budget` (1 point)
    random-REF     a random plan at the average bits of method REF's plan (`random_plan`)
    hqc-L          hqc's search at λ = L (search epochs, then the fine-tune)

Per method: accuracy on val and test of the imported float model, of the fake-quant model
(the search's figure) and of the *deployed integer model* — the lowered model run by the
numpy reference and checked sample for sample against the compiled C kernels (and
onnxruntime with `--backends onnxruntime,c`); energy as a fraction of fp32 (paper model
and spike-aware, firing rates measured as `hqc compile` does: the float model on 256 val
samples); storage fraction and average bits (as the report computes them); wall time.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import DATASETS, REPO, machine_info, plan_costs, single_thread_env, write_json  # noqa: E402

single_thread_env()

import numpy as np  # noqa: E402

log = logging.getLogger("bench_quality")

SCHEMA = "hqc.bench.quality/1"
FIXED = ("uni4", "pot4", "uni2", "pot2")
#: Default order of `--method all`: the most informative runs first.
PRIORITY = ("fp32", "fixed-uni4", "fixed-pot2", "hqc-0.1", "hqc-0.3", "hqc-1", "greedy",
            "fixed-pot4", "fixed-uni2", "hqc-3", "random-hqc-1", "hqc-0.03")


# ---------------------------------------------------------------------------- baselines
def greedy_plan(model: str | Path, data: str | Path, *, seed: int = 0, budget: float = 0.01,
                holdout_fraction: float = 0.2, target: str = "cmos45",
                eval_batch: int = 64) -> tuple[dict[str, str], dict[str, Any]]:
    """AQ4SViT-style greedy plan: lower one layer at a time while the accuracy stays within
    `budget` of the float model's.

        all fp32 --for each layer, largest possible energy saving first--> try its cheaper
        candidates, cheapest first; keep the first whose post-training fake-quant accuracy
        on the held-out part of the training split is ≥ float accuracy − budget

    The held-out part is `hqc.search.holdout_split(train.y, holdout_fraction, seed)`, the
    data hqc's α step sees; val and test are never looked at. Scales are those of the
    lowering (`hqc.quant.channel_scales` of the unchanged float weights).
    Returns ({layer: choice}, a record of every trial).
    """
    from hqc.backend import TorchModel
    from hqc.choices import parse_choice
    from hqc.data import Split, load_data
    from hqc.passes import Context, run_passes
    from hqc.passes.insert_quant_choices import candidates_of
    from hqc.pipeline import run_frontend
    from hqc.search import evaluate, holdout_split
    from hqc.supernet import Supernet
    from hqc.targets import load_target

    t0 = time.perf_counter()
    fe = run_frontend(model)
    graph, _ = run_passes(fe.graph, ["insert-quant-choices"], Context(options={"search_space": None}))
    cands = candidates_of(graph, fe.layers)
    tm = TorchModel(graph)
    per_sample = list(tm.input_shape)
    per_sample.pop(tm.layout.index("B"))
    ds = load_data(data, tuple(per_sample))
    _, hidx = holdout_split(ds.train.y, holdout_fraction, seed)
    held = Split(ds.train.x[hidx], ds.train.y[hidx])
    net = Supernet(tm, fe.layers, cands, load_target(target)).eval()
    net.set_float()
    net.refresh_scales()  # not in fixed mode: the scales of every candidate, computed once
    base = evaluate(net, held, eval_batch)
    floor = base - budget
    terms = net.energy_terms_pj
    plan = {n: parse_choice("fp32") for n in net.names}
    order = sorted(net.names, key=lambda n: -(terms[n]["fp32"] - min(terms[n].values())))
    trials = []
    for name in order:
        cheaper = sorted((c for c in cands[name] if terms[name][c.name] < terms[name][plan[name].name]),
                         key=lambda c: terms[name][c.name])
        for c in cheaper:
            trial = {**plan, name: c}
            net.set_plan(trial)
            acc = evaluate(net, held, eval_batch)
            ok = acc >= floor - 1e-9
            trials.append({"layer": name, "choice": c.name, "holdout_accuracy": round(acc, 6), "accepted": ok})
            log.info("greedy: %-28s %-5s holdout %.4f (floor %.4f) %s", name, c.name, acc, floor,
                     "accept" if ok else "reject")
            if ok:
                plan = trial
                break
    net.set_plan(plan)
    final = evaluate(net, held, eval_batch)
    info = {
        "holdout_samples": int(hidx.size), "holdout_float_accuracy": round(base, 6), "budget": budget,
        "holdout_final_accuracy": round(final, 6), "order": order, "trials": trials,
        "evaluations": len(trials) + 2, "seconds": round(time.perf_counter() - t0, 1),
    }
    return {n: c.name for n, c in plan.items()}, info


def random_plan(layers: Sequence[Any], candidates: Sequence[str], average_bits: float, *,
                seed: int = 0, draws: int = 200_000, tolerance: float = 0.05) -> tuple[dict[str, str], dict[str, Any]]:
    """A random plan whose average bits match `average_bits`.

        `draws` plans, each layer uniform over `candidates` (numpy Generator(seed)) →
        the first within `tolerance` bits of the target (else the closest)

    The first draw within tolerance is a draw from the uniform distribution restricted to
    plans near the target.
    """
    from hqc.choices import parse_choice

    rng = np.random.default_rng(seed)
    params = np.array([layer.params for layer in layers], dtype=np.float64)
    bits = np.array([parse_choice(c).bits for c in candidates], dtype=np.float64)
    idx = rng.integers(0, len(candidates), size=(draws, len(layers)))
    avg = (bits[idx] * params).sum(axis=1) / params.sum()
    err = np.abs(avg - average_bits)
    within = np.flatnonzero(err <= tolerance)
    pick = int(within[0]) if within.size else int(np.argmin(err))
    plan = {layer.name: candidates[int(k)] for layer, k in zip(layers, idx[pick], strict=True)}
    return plan, {"target_average_bits": average_bits, "average_bits": float(avg[pick]), "draw": pick,
                  "draws": draws, "within_tolerance": int(within.size), "tolerance": tolerance, "seed": seed}


# ---------------------------------------------------------------------------- one run
def _write_plan_file(path: Path, plan: Mapping[str, str]) -> Path:
    from hqc.plan import write_plan

    path.parent.mkdir(parents=True, exist_ok=True)
    write_plan(path, {"layers": {n: {"choice": c} for n, c in plan.items()}})
    return path


def integer_accuracy(int_dir: Path, data: str | Path, splits: Sequence[str], backends: Sequence[str],
                     check_limit: int | None) -> dict[str, dict[str, Any]]:
    """Accuracy of the deployed integer model on each split: the compiled C kernels of
    `int_dir` (built once) on every sample. The numpy reference (which defines the integer
    semantics) runs beside them on the first `check_limit` samples (None: all) of each
    split, and so does onnxruntime when in `backends`; any logit that differs stops the run.
    """
    import json
    import shutil

    from hqc import ckernels, int_onnx, intref
    from hqc.data import load_data
    from hqc.verification import to_groups

    doc = json.loads((int_dir / "lowering.json").read_text())
    ds = load_data(data)
    ref_graph = intref.load_lowered(int_dir / "lowered.onnx")
    classes = int(doc["logits"]["shape"][-1])
    out: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="hqc-acc-") as tmp:
        kd = Path(tmp) / "kernels"
        shutil.copytree(int_dir / "kernels", kd)
        exe = ckernels.build(kd)
        for split in splits:
            t0 = time.perf_counter()
            sp = ds.split(split)
            groups = to_groups(sp.x, doc["input_layout"], tuple(doc["input"]["shape"]))
            c = ckernels.run_binary(exe, groups, int(np.prod(doc["logits"]["shape"])))
            n_check = len(groups) if not check_limit else min(check_limit, len(groups))
            ref = intref.run(ref_graph, groups[:n_check])[0].reshape(n_check, -1)
            agree = {"c": int(np.all(c[:n_check].reshape(n_check, -1) == ref, axis=1).sum())}
            if "onnxruntime" in backends:
                ort = int_onnx.run_ort(int_onnx.session(str(int_dir / "model.int.onnx")), groups[:n_check])
                agree["onnxruntime"] = int(np.all(ort.reshape(n_check, -1) == ref, axis=1).sum())
            if any(v != n_check for v in agree.values()):
                raise SystemExit(f"{int_dir}: integer backends disagree with the numpy reference on {split}: {agree}")
            pred = c.reshape(-1, classes)[: len(sp.y)].argmax(axis=1)
            out[split] = {"accuracy": float((pred == sp.y).mean()), "samples": len(sp.y),
                          "checked_samples": n_check, "agree": agree,
                          "seconds": round(time.perf_counter() - t0, 1)}
    return out


def run_method(dataset: str, method: str, root: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Run one method on one dataset into root/<dataset>/<method>/; returns the result."""
    from hqc.choices import DEFAULT_CHOICES
    from hqc.lowerdir import lower_model
    from hqc.pipeline import measure_firing_rates, run_frontend
    from hqc.plan import read_plan
    from hqc.search import SearchConfig, run_search
    from hqc.targets import load_target

    model, data = DATASETS[dataset]
    data = _data_path(data, root, args.limit)
    work = root / dataset / method
    work.mkdir(parents=True, exist_ok=True)
    fe = run_frontend(model)
    t_start = time.perf_counter()
    cfg = SearchConfig(epochs=args.epochs, finetune_epochs=args.finetune_epochs, seed=args.seed)
    plan_file: Path | None = None
    extra: dict[str, Any] = {}
    pre_seconds = 0.0
    if method == "fp32":
        cfg.finetune_epochs = 0
        plan_file = _write_plan_file(work / "given_plan.yaml", {layer.name: "fp32" for layer in fe.layers})
    elif method.startswith("fixed-"):
        q = method.split("-", 1)[1]
        if q not in FIXED:
            raise SystemExit(f"unknown method {method!r}: fixed-{{{','.join(FIXED)}}}")
        plan_file = _write_plan_file(work / "given_plan.yaml", {layer.name: q for layer in fe.layers})
    elif method == "greedy" or method.startswith("greedy-"):
        budget = args.budget if method == "greedy" else float(method.split("-", 1)[1]) / 100
        plan, info = greedy_plan(model, data, seed=args.seed, budget=budget)
        pre_seconds = info["seconds"]
        extra["greedy"] = info
        plan_file = _write_plan_file(work / "given_plan.yaml", plan)
    elif method.startswith("random-"):
        ref = method.split("-", 1)[1]
        ref_json = root / dataset / f"{ref}.json"
        if not ref_json.is_file():
            raise SystemExit(f"{method}: needs {ref_json} (run --method {ref} first)")
        import json

        target_bits = json.loads(ref_json.read_text())["cost"]["average_bits"]
        plan, info = random_plan(fe.layers, list(DEFAULT_CHOICES), target_bits, seed=args.seed)
        extra["random"] = {**info, "matched_to": ref}
        plan_file = _write_plan_file(work / "given_plan.yaml", plan)
    elif method.startswith("hqc-"):
        cfg.lam = float(method.split("-", 1)[1])
    else:
        raise SystemExit(f"unknown method {method!r}")

    resumed = (work / "search.ckpt").is_file()
    t0 = time.perf_counter()
    sr = run_search(model, data, out_dir=work, config=cfg, plan=plan_file, resume=True)
    search_seconds = time.perf_counter() - t0
    (work / "search.ckpt").unlink(missing_ok=True)
    plan_names = {n: c.name for n, c in read_plan(sr.plan_path, fe.layers).items()}

    t0 = time.perf_counter()
    int_dir = work / "int"
    lower_model(sr.qat_model_path, sr.plan_path, int_dir, data=str(data))
    lower_seconds = time.perf_counter() - t0
    backends = [b for b in args.backends.split(",") if b]
    acc_doc = sr.document["accuracy"]
    accuracy: dict[str, Any] = {}
    integer = integer_accuracy(int_dir, data, ("val", "test"), backends, args.check_limit or None)
    for split in ("val", "test"):
        ia = integer[split]
        fq = acc_doc["fake_quant"] if split == acc_doc["split"] else (acc_doc.get("test") or {}).get("fake_quant")
        fl = acc_doc["float"] if split == acc_doc["split"] else (acc_doc.get("test") or {}).get("float")
        accuracy[split] = {"float": fl, "fake_quant": fq, "integer": ia["accuracy"], "samples": ia["samples"],
                           "reference_checked_samples": ia["checked_samples"], "agree": ia["agree"],
                           "verify_seconds": ia["seconds"]}
    rates = measure_firing_rates(fe.graph, fe.layers, str(data), split="val")
    cost = plan_costs(fe.layers, plan_names, load_target("cmos45"), rates)
    counts: dict[str, int] = {}
    for c in plan_names.values():
        counts[c] = counts.get(c, 0) + 1
    doc = {
        "schema": SCHEMA,
        "dataset": dataset,
        "method": method,
        "model": str(Path(model).relative_to(REPO)),
        "data": str(data if args.limit else Path(data).relative_to(REPO)),
        "limit": args.limit,
        "config": {"lambda": cfg.lam if method.startswith("hqc-") else None, "epochs": cfg.epochs
                   if method.startswith("hqc-") else 0, "finetune_epochs": cfg.finetune_epochs,
                   "seed": cfg.seed, "batch_size": cfg.batch_size, "finetune_lr": cfg.finetune_lr,
                   "target": "cmos45", "backends": backends},
        "plan": plan_names,
        "plan_counts": counts,
        "accuracy": accuracy,
        "accuracy_before_finetune": acc_doc.get("fake_quant_before_finetune"),
        "cost": cost,
        "expected_energy_ratio": sr.expected_energy_ratio,
        "seconds": {
            "plan": round(pre_seconds + search_seconds, 1),  # greedy decisions + search + fine-tune
            "pre_search": round(pre_seconds, 1),
            "run_search": round(search_seconds, 1),
            "lower": round(lower_seconds, 1),
            "total": round(time.perf_counter() - t_start, 1),
            "resumed": resumed,
        },
        "machine": machine_info(),
        **extra,
    }
    return doc


def _data_path(data: Path, root: Path, limit: int | None) -> Path:
    """The data file, or (smoke tests) a copy with the first `limit` samples of each split."""
    if not limit:
        return data
    out = root / f"{data.stem}-limit{limit}.npz"
    if not out.is_file():
        with np.load(data, allow_pickle=False) as z:
            arrays = {k: (z[k][:limit] if z[k].ndim else z[k]) for k in z.files}
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=root, suffix=".npz", delete=False) as f:
            np.savez(f, **arrays)
        Path(f.name).replace(out)
    return out


def main(argv: list[str] | None = None) -> None:
    """Command line: see the module docstring."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="all", help="ndigits, motion or all (comma list)")
    p.add_argument("--method", default="all", help=f"comma list, or all = {','.join(PRIORITY)}")
    p.add_argument("--out", type=Path, default=REPO / "build" / "bench" / "quality")
    p.add_argument("--epochs", type=int, default=10, help="search epochs of hqc-L (default 10; hqc search defaults to 6)")
    p.add_argument("--finetune-epochs", type=int, default=3, help="QAT epochs of every trained plan (default 3)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--budget", type=float, default=0.01, help="greedy: accuracy budget (fraction, default 0.01)")
    p.add_argument("--backends", default="c", help="integer backends checked against the numpy reference")
    p.add_argument("--check-limit", type=int, default=64,
                   help="samples per split on which the numpy reference checks the backends (0: all)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--limit", type=int, default=None, help="smoke test: first N samples of each split")
    p.add_argument("--force", action="store_true", help="rerun even when the result JSON exists")
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("hqc.passes").setLevel(logging.WARNING)
    datasets = list(DATASETS) if args.dataset == "all" else args.dataset.split(",")
    methods = list(PRIORITY) if args.method == "all" else args.method.split(",")
    for ds in datasets:
        if ds not in DATASETS:
            raise SystemExit(f"unknown dataset {ds!r}: {', '.join(DATASETS)}")
        for m in methods:
            path = args.out / ds / f"{m}.json"
            if path.is_file() and not args.force:
                log.info("%s/%s: cached (%s)", ds, m, path)
                continue
            log.info("%s/%s: start", ds, m)
            doc = run_method(ds, m, args.out, args)
            write_json(path, doc)
            a = doc["accuracy"]
            log.info("%s/%s: val %.4f test %.4f (integer), energy %.2f %%, %.2f bits, %.0f s → %s", ds, m,
                     a["val"]["integer"], a["test"]["integer"], 100 * doc["cost"]["energy_paper"],
                     doc["cost"]["average_bits"], doc["seconds"]["total"], path)


if __name__ == "__main__":
    main()
