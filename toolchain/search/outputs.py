"""What a search run writes: plan.yaml's document, model.qat.onnx and scales.npz.

    plan.yaml       (`hqc.plan/1`) the plan, accuracies, energies, the run's options
    model.qat.onnx  the frontend's IR with the fine-tuned latent float weights and biases
    scales.npz      the learned scales (`hqc.quant.save_scales`), when there are any

for `hqc lower model.qat.onnx --plan plan.yaml` with those scales.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import onnx
import torch

from hqc.backend import TorchModel
from hqc.ir import Graph
from hqc.onnx_io import KEPT_META, to_proto
from hqc.outdir import atomic_file
from hqc.plan import write_plan
from hqc.quant import SCALES_FILE, LearnedScales, save_scales
from hqc.search.config import PLAN_FILE, QAT_MODEL_FILE

if TYPE_CHECKING:
    from hqc.search.driver import Searched


def export_qat_model(graph: Graph, model: TorchModel, path: str | Path) -> None:
    """Write the IR with the model's current float weights/biases as ONNX (atomic).

    Keeps the exporter metadata that names torch modules, so the re-imported model has
    the same layer names as plan.yaml."""
    g = graph.copy()
    for name in model.weight_names:
        g.constants[name] = model.parameter(name).detach().cpu().numpy().astype(graph.constants[name].dtype)
    proto = to_proto(g)
    for pn in proto.graph.node:
        if pn.name in g.g:
            for k in KEPT_META:
                v = g.node(pn.name).meta.get(k)
                if v is not None:
                    entry = pn.metadata_props.add()
                    entry.key, entry.value = k, v
    with atomic_file(path) as tmp:
        onnx.save(proto, str(tmp))


def plan_document(s: Searched, fq_acc: float, fq_test: float | None, energy_ratio: float,
                  expected: float | None, corrected: list[str], learned: LearnedScales) -> dict[str, Any]:
    """plan.yaml's content for the run `s` with its final accuracies (fake-quant on the
    evaluation and test splits), energy ratios (of the plan; expected under α), the
    corrected BatchNorm nodes and the learned scales."""
    cfg, net, chosen, user_plan = s.cfg, s.net, s.chosen, s.user_plan
    with torch.no_grad():
        probs = {n: [float(v) for v in p] for n, p in net.probabilities().items()}
    layers_doc: dict[str, Any] = {}
    for i, n in enumerate(net.names):
        entry: dict[str, Any] = {"choice": chosen[n].name}
        cands = [c.name for c in s.candidates[n]]
        if user_plan is None:
            entry["probability"] = round(probs[n][cands.index(chosen[n].name)], 6)
        entry["candidates"] = cands
        if user_plan is None:
            entry["history"] = [[round(v, 6) for v in row[i]] for row in s.run.history]
        layers_doc[n] = entry
    doc: dict[str, Any] = {
        "model": str(s.model),
        "target": s.target.name,
        "lambda": float(cfg.lam),
        "seed": cfg.seed,
        "epochs": cfg.epochs if user_plan is None else 0,
        "finetune_epochs": cfg.finetune_epochs,
        "data": {"path": str(s.data), "fingerprint": s.dataset.fingerprint},
        "accuracy": {
            "split": s.eval_name,
            "float": round(s.float_acc, 6),
            "fake_quant": round(fq_acc, 6),
            "fake_quant_before_finetune": None if s.search_acc is None else round(float(s.search_acc), 6),
            "test": None if s.test is None else {"float": round(float(s.float_test), 6),
                                                 "fake_quant": round(float(fq_test), 6)},
        },
        "energy": {
            "model": "paper",
            "fp32_pj": float(net.fp32_energy_pj),
            "plan_pj": float(energy_ratio * net.fp32_energy_pj),
            "ratio": round(float(energy_ratio), 6),
            "expected_ratio": None if expected is None else round(expected, 6),
        },
        "search": {
            "batch_size": cfg.batch_size, "world_size": s.dist.world,
            "holdout_fraction": cfg.holdout_fraction if user_plan is None else None,
            "tau": [cfg.tau_start, cfg.tau_end], "lr": cfg.lr, "arch_lr": cfg.arch_lr,
            "finetune_lr": cfg.finetune_lr, "scale_lr": cfg.scale_lr,
            "finetune_warmup": cfg.finetune_warmup, "finetune_distill": cfg.finetune_distill,
            "learn_scales": cfg.learn_scales, "bn_corrected": len(corrected), "alpha_grad": cfg.alpha_grad,
            "scale_refresh": cfg.scale_refresh, "seconds": round(time.perf_counter() - s.t_start, 1),
        },
        "qat_model": QAT_MODEL_FILE,
    }
    if learned:
        doc["scales"] = SCALES_FILE
    if s.plan_source is not None:
        doc["source_plan"] = str(s.plan_source)
    doc["layers"] = layers_doc
    return doc


def output_paths(out: Path, learned: LearnedScales) -> tuple[Path, Path, Path | None]:
    """plan.yaml, model.qat.onnx and scales.npz in `out` (scales: None without learned scales)."""
    return out / PLAN_FILE, out / QAT_MODEL_FILE, (out / SCALES_FILE if learned else None)


def write_outputs(out: Path, doc: dict[str, Any], graph: Graph, model: TorchModel, learned: LearnedScales) -> None:
    """plan.yaml, model.qat.onnx and scales.npz into `out`; an earlier run's scales.npz
    is removed when this run has none."""
    plan_path, qat_path, scales_path = output_paths(out, learned)
    export_qat_model(graph, model, qat_path)
    if scales_path is not None:
        save_scales(scales_path, learned)
    elif (out / SCALES_FILE).exists():
        (out / SCALES_FILE).unlink()  # a stale file of an earlier run must not be lowered
    write_plan(plan_path, doc)
