"""The search's entry points: `search_plan`, `finetune_plan` (and `finish_plan`), `run_search`.

    search_plan(model, data, ...)  → Searched       the plan (argmax α; a user plan as given)
    finetune_plan(Searched)        → SearchResult   QAT of that plan, then finish_plan
    finish_plan(Searched)          → SearchResult   BatchNorm correction, accuracies, the files
    run_search(model, data, ...)   = finetune_plan(search_plan(...))

`Searched` carries what the fine-tune continues from: the supernet with its searched
weights, the optimizers, the α history, the splits, the float accuracies and the
checkpoint (search.ckpt spans both phases: a resumed run continues in either).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hqc.backend import TorchModel
from hqc.choices import QuantChoice, parse_choice
from hqc.data import Dataset, Split, load_data
from hqc.errors import DataError
from hqc.ir import Graph
from hqc.passes import Context, run_passes
from hqc.passes.insert_quant_choices import SearchSpace, candidates_of
from hqc.pipeline import Frontend, run_frontend
from hqc.plan import read_plan
from hqc.quant import LearnedScales
from hqc.search.batchnorm import correct_batchnorm
from hqc.search.checkpoint import _plan_names, load_checkpoint, run_key, save_checkpoint
from hqc.search.config import CHECKPOINT_FILE, Progress, SearchConfig, SearchResult, SearchStopped
from hqc.search.distributed import _Dist, _init_distributed
from hqc.search.outputs import output_paths, plan_document, write_outputs
from hqc.search.schedule import _batches, _subset, holdout_split
from hqc.search.train import _Run, evaluate, predict
from hqc.supernet import Supernet
from hqc.targets import Target, load_target

log = logging.getLogger(__name__)


@dataclass
class Searched:
    """A run between the search and the fine-tune (see the module docstring)."""

    model: str | Path
    data: str | Path
    plan_source: str | Path | None  # the user's plan.yaml, if any
    cfg: SearchConfig
    target: Target
    out: Path
    graph: Graph  # the frontend's IR with the candidates (a copy: the caller's is not changed)
    tm: TorchModel
    net: Supernet
    run: _Run
    dist: _Dist
    candidates: dict[str, tuple[QuantChoice, ...]]
    user_plan: dict[str, QuantChoice] | None
    dataset: Dataset
    full_train: Split
    full_teacher: np.ndarray | None  # float-model logits of the whole training split
    evals: Split
    eval_name: str
    test: Split | None
    float_acc: float
    float_test: float | None
    chosen: dict[str, QuantChoice]
    search_acc: float | None  # fake-quant accuracy of the searched plan before the fine-tune
    phase: str  # "finetune" once search_plan returns
    done_epochs: int  # fine-tune epochs already done (a resumed run)
    run_key: str
    stop_after_epoch: int | None
    t_start: float

    @property
    def ckpt_path(self) -> Path:
        return self.out / CHECKPOINT_FILE

    def checkpoint(self, phase: str, epoch: int) -> None:
        """search.ckpt after `epoch` epochs of `phase` (rank 0); SearchStopped when the
        run was asked to stop there."""
        if self.dist.rank == 0:
            save_checkpoint(self.ckpt_path, self.run_key, phase, epoch, {
                "net": self.net.state_dict(), "opt_w": self.run.opt_w.state_dict(),
                "opt_a": self.run.opt_a.state_dict(), "history": self.run.history,
                "plan": _plan_names(self.chosen) if self.chosen else None, "search_accuracy": self.search_acc,
            })
        self.dist.barrier()
        done = epoch + (self.cfg.epochs if phase == "finetune" and self.user_plan is None else 0)
        if self.stop_after_epoch is not None and done >= self.stop_after_epoch:
            raise SearchStopped(f"stopped after epoch {done}")


def search_plan(
    model: str | Path,
    data: str | Path,
    *,
    target: str = "cmos45",
    out_dir: str | Path | None = None,
    config: SearchConfig | None = None,
    plan: str | Path | None = None,
    search_space: str | Path | Mapping | SearchSpace | None = None,
    input_layout: str | None = None,
    resume: bool = False,
    progress: Progress | None = None,
    stop_after_epoch: int | None = None,
    frontend: Frontend | None = None,
    dataset: Dataset | None = None,
) -> Searched:
    """The search of `run_search`, up to the plan (argmax α per layer), ready for the
    fine-tune: learned scales and the fine-tune's optimizer are set up. `plan` (a
    plan.yaml) skips the search. Without `frontend` the model is imported, the frontend
    and the insert-quant-choices pass (with `search_space`) run; `frontend` (what
    `hqc compile` has after its insert-quant-choices step) is used as it is: its graph
    must carry the candidates, and `search_space` must be None. See `run_search` for
    the other arguments."""
    t_start = time.perf_counter()
    cfg = config or SearchConfig()
    cfg.validate()
    tgt = load_target(target)
    out = Path(out_dir) if out_dir is not None else Path("build") / Path(model).stem
    if frontend is None:
        fe = run_frontend(model, input_layout)
        graph, _ = run_passes(fe.graph, ["insert-quant-choices"], Context(options={"search_space": search_space}))
    else:
        if search_space is not None:
            raise TypeError("search_plan(frontend=...) uses the candidates its graph carries; search_space= "
                            "applies only without it (run insert-quant-choices with it)")
        fe, graph = frontend, frontend.graph.copy()
    layers = fe.layers
    candidates = candidates_of(graph, layers)
    user_plan = read_plan(plan, layers) if plan is not None else None

    tm = TorchModel(graph, input_layout)
    per_sample = list(tm.input_shape)
    per_sample.pop(tm.layout.index("B"))
    out_shape = graph.shape(graph.outputs[0]) or ()
    num_classes = int(out_shape[-1]) if out_shape and isinstance(out_shape[-1], int) else None
    ds: Dataset = dataset if dataset is not None else load_data(data, tuple(per_sample), num_classes)
    full_train = ds.train
    held: Split | None = None
    train = full_train
    keep = np.arange(len(full_train))
    if user_plan is None:
        keep, hidx = holdout_split(full_train.y, cfg.holdout_fraction, cfg.seed)
        if hidx.size == 0:
            raise DataError(f"{ds.path}: the training split has {len(full_train)} samples of "
                            f"{np.unique(full_train.y).size} classes, one per class; the search holds out "
                            "samples for its architecture step and needs at least 2 samples of a class "
                            "(2 per class to hold out one of each); give more data or --plan to skip it")
        train, held = _subset(full_train, keep), _subset(full_train, hidx)
    eval_name = "val" if "val" in ds.splits else ("holdout" if held is not None else "train")
    evals = ds.splits["val"] if "val" in ds.splits else (held if held is not None else full_train)

    dist = _init_distributed(cfg.device)
    if dist.rank == 0:
        out.mkdir(parents=True, exist_ok=True)
    dist.barrier()
    net = Supernet(tm, layers, candidates, tgt).to(cfg.device)
    run = _Run(net, train, held, evals, cfg, dist, progress)
    key = run_key(tm, ds.fingerprint, tgt.name, candidates, cfg, user_plan, dist.world)

    net.set_float()
    float_acc = evaluate(net, evals, cfg.eval_batch_size, cfg.device, dist)
    test = ds.splits.get("test")
    float_test = evaluate(net, test, cfg.eval_batch_size, cfg.device, dist) if test is not None else None
    log.info("float accuracy (%s split): %.4f", eval_name, float_acc)
    t_teacher = time.perf_counter()
    full_teacher = (predict(net, full_train, cfg.eval_batch_size, cfg.device)
                    if cfg.distill > 0 or cfg.finetune_distill > 0 else None)
    if full_teacher is not None:
        log.info("teacher logits of the float model: %d training samples (%.1fs)", len(full_train),
                 time.perf_counter() - t_teacher)
    if full_teacher is not None and cfg.distill > 0:
        run.teacher = full_teacher[keep] if held is not None else full_teacher

    s = Searched(model, data, plan, cfg, tgt, out, graph, tm, net, run, dist, candidates, user_plan, ds,
                 full_train, full_teacher, evals, eval_name, test, float_acc, float_test,
                 chosen=user_plan or {}, search_acc=None, phase="search", done_epochs=0, run_key=key,
                 stop_after_epoch=stop_after_epoch, t_start=t_start)
    if resume and s.ckpt_path.is_file():
        ck = load_checkpoint(s.ckpt_path, key, cfg.device)
        if ck["phase"] == "finetune" and ck.get("plan"):  # the fine-tune's scales and optimizer
            net.set_plan({k: parse_choice(v) for k, v in ck["plan"].items()})
            run.start_finetune()
        net.load_state_dict(ck["net"])
        run.opt_w.load_state_dict(ck["opt_w"])
        run.opt_a.load_state_dict(ck["opt_a"])
        run.history = ck["history"]
        s.phase, s.done_epochs = ck["phase"], int(ck["epoch"])
        if ck.get("plan"):
            s.chosen = {k: parse_choice(v) for k, v in ck["plan"].items()}
        s.search_acc = ck.get("search_accuracy")
        log.info("resumed from %s: %s epoch %d", s.ckpt_path, s.phase, s.done_epochs)

    if user_plan is None and s.phase == "search":
        steps = len(_batches(len(train), cfg.batch_size, 0, 0, dist))
        run.emit("phase", phase="search", epochs=cfg.epochs, start=s.done_epochs, steps=steps)
        for epoch in range(s.done_epochs, cfg.epochs):
            t0 = time.perf_counter()
            m = run.search_epoch(epoch)
            log.info("search epoch %d/%d: loss %.4f acc %.4f E/E_fp32 %.4f tau %.3f (%.1fs)",
                     epoch + 1, cfg.epochs, m["loss"], m["accuracy"], m["energy"], m["tau"],
                     time.perf_counter() - t0)
            run.emit("epoch", phase="search", epoch=epoch + 1, seconds=time.perf_counter() - t0, **m)
            s.checkpoint("search", epoch + 1)
        s.chosen = net.argmax_plan()
        net.set_plan(s.chosen)
        net.refresh_scales()
        s.search_acc = evaluate(net, evals, cfg.eval_batch_size, cfg.device, dist)
        log.info("searched plan: fake-quant accuracy %.4f, energy ratio %.4f",
                 s.search_acc, net.plan_energy_ratio(s.chosen))
        s.phase, s.done_epochs = "finetune", 0
        run.start_finetune()
        if cfg.finetune_epochs == 0:
            s.checkpoint("finetune", 0)
    elif s.phase == "search":  # a user plan: learned scales and a fresh optimizer for the fine-tune
        net.set_plan(s.chosen)
        run.start_finetune()
        s.phase = "finetune"
    return s


def finetune_plan(s: Searched) -> SearchResult:
    """Fine-tune (QAT) the plan of `s` for `finetune_epochs` on the whole training split
    (continuing a resumed run's fine-tune), then `finish_plan`."""
    cfg, net, run, dist = s.cfg, s.net, s.run, s.dist
    net.set_plan(s.chosen)
    run.train, run.teacher = s.full_train, s.full_teacher
    if cfg.finetune_epochs > s.done_epochs:
        steps = len(_batches(len(s.full_train), cfg.batch_size, 0, 0, dist))
        run.emit("phase", phase="finetune", epochs=cfg.finetune_epochs, start=s.done_epochs, steps=steps)
    for epoch in range(s.done_epochs, cfg.finetune_epochs):
        t0 = time.perf_counter()
        m = run.finetune_epoch(epoch)
        log.info("fine-tune epoch %d/%d: loss %.4f acc %.4f (%.1fs)", epoch + 1, cfg.finetune_epochs,
                 m["loss"], m["accuracy"], time.perf_counter() - t0)
        run.emit("epoch", phase="finetune", epoch=epoch + 1, seconds=time.perf_counter() - t0, **m)
        s.done_epochs = epoch + 1
        s.checkpoint("finetune", epoch + 1)
    return finish_plan(s)


def finish_plan(s: Searched) -> SearchResult:
    """The plan of `s` as its weights stand: BatchNorm statistics corrected under the plan,
    the final accuracies with exact scales, plan.yaml, model.qat.onnx (and scales.npz)."""
    cfg, net, dist, chosen = s.cfg, s.net, s.dist, s.chosen
    net.set_plan(chosen)
    net.refresh_scales()
    corrected = (correct_batchnorm(net, s.full_train, cfg.bn_samples, cfg.eval_batch_size, cfg.device)
                 if cfg.bn_correct and any(c.kind != "fp32" for c in chosen.values()) else [])
    if corrected:
        log.info("BatchNorm statistics corrected under the plan: %d nodes", len(corrected))
    fq_acc = evaluate(net, s.evals, cfg.eval_batch_size, cfg.device, dist)
    fq_test = evaluate(net, s.test, cfg.eval_batch_size, cfg.device, dist) if s.test is not None else None
    energy_ratio = net.plan_energy_ratio(chosen)
    with torch.no_grad():
        expected = float(net.hardware_loss()) if s.user_plan is None else None
    learned: LearnedScales = {n: (chosen[n].name, v) for n, v in net.learned_scales().items()}
    doc = plan_document(s, fq_acc, fq_test, energy_ratio, expected, corrected, learned)
    plan_path, qat_path, scales_path = output_paths(s.out, learned)
    if dist.rank == 0:
        write_outputs(s.out, doc, s.graph, s.tm, learned)
    dist.barrier()
    log.info("plan: %s; fake-quant accuracy %.4f (float %.4f); energy %.2f%% of fp32",
             plan_path, fq_acc, s.float_acc, 100 * energy_ratio)
    tm = s.tm
    weights = {name: tm.parameter(name).detach().cpu().numpy().copy() for name in tm.weight_names}
    for bn in corrected:  # the BatchNorm statistics corrected under the plan (model.qat.onnx has them too)
        for t in tm.graph.node(bn).inputs[3:5]:
            weights[t] = tm.graph.constants[t].copy()
    return SearchResult(chosen, doc, s.out, plan_path, qat_path, s.float_acc, fq_acc, energy_ratio,
                        expected, weights, learned, scales_path)


def run_search(
    model: str | Path,
    data: str | Path,
    *,
    target: str = "cmos45",
    out_dir: str | Path | None = None,
    config: SearchConfig | None = None,
    plan: str | Path | None = None,
    search_space: str | Path | Mapping | SearchSpace | None = None,
    input_layout: str | None = None,
    resume: bool = False,
    progress: Progress | None = None,
    stop_after_epoch: int | None = None,
    frontend: Frontend | None = None,
    dataset: Dataset | None = None,
) -> SearchResult:
    """Search a quantization plan for `model` on `data` and fine-tune it (see `hqc.search`):
    `finetune_plan(search_plan(...))`.

    `plan` (a plan.yaml) skips the search: only the fine-tune runs. `out_dir` (default
    build/<model stem>) receives plan.yaml, model.qat.onnx and search.ckpt. `progress`
    is called on rank 0 with ("phase" | "step" | "epoch", info). `stop_after_epoch` (tests)
    raises SearchStopped after that many epochs (search + fine-tune) are checkpointed.
    `frontend` (a `hqc.pipeline.Frontend` of `model` whose graph carries the candidates:
    after insert-quant-choices) and `dataset` (`data` loaded) reuse what `hqc compile`
    already has; the frontend's graph is not changed.
    User errors raise HqcError subclasses (ConfigError, DataError, PlanError, ...).
    """
    return finetune_plan(search_plan(
        model, data, target=target, out_dir=out_dir, config=config, plan=plan, search_space=search_space,
        input_layout=input_layout, resume=resume, progress=progress, stop_after_epoch=stop_after_epoch,
        frontend=frontend, dataset=dataset))
