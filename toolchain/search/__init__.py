"""Heterogeneous quantization search (the paper's differentiable search) and the QAT fine-tune.

    model.onnx + data.npz + target --search_plan--> plan (+ the searched supernet)
        --finetune_plan--> plan.yaml + model.qat.onnx (+ scales.npz)
    run_search = both, one call; search.ckpt spans both

1. Frontend, then the `insert-quant-choices` pass attaches each layer's candidates
   (`hqc compile` gives the graph its own insert-quant-choices step produced).
2. Search (`epochs`), per batch of the weight split, as in the paper:
   step 1 — α: hard (one-hot, straight-through) Gumbel-softmax sample, loss
            CE(held-out batch) + λ · Σ_lk p_lk E_lk / E_fp32 (p = softmax α), Adam on α
            only (the weights are frozen for this step and do not change);
   step 2 — w: soft Gumbel-softmax sample, loss CE(training batch), on the weights only.
   CE has label smoothing (`label_smoothing`, 0.1) and may mix in distillation from the
   imported float model (`distill`, off: `task_loss`).
   The α data is a stratified `holdout_fraction` of the *training* split, held out for
   the whole search (the val split stays untouched for the reported accuracies; without
   a val split the held-out part is the evaluation split). τ anneals exponentially per
   step from `tau_start` to `tau_end`. Weights: AdamW, linear warm-up then cosine decay;
   α: Adam at a constant rate.
3. Plan = argmax α_l per layer (a `plan` given by the user skips 2). `search_plan` ends here.
4. `finetune_plan`: fine-tune (QAT) the fixed plan for `finetune_epochs` on the whole
   training split: learned per-channel scales (LSQ, `learn_scales`; initialised from the MSE-grid scales),
   loss (1 − finetune_distill) · CE + finetune_distill · KL(float model ‖ quantized model)
   on the logits (the imported float model is the teacher), AdamW with its own rate for
   the scales (`scale_lr`), linear warm-up over `finetune_warmup` of the steps, then
   cosine decay to `finetune_min_lr` (rates scaled alike for both groups).
5. `finish_plan` (the end of `finetune_plan`): accuracies on the val split (and the test
   split, if any): float (the imported model) and fake-quant (the plan, the fine-tuned
   weights, the learned scales — or, without them, scales computed fresh from the
   weights: the lowering's values either way).
6. Write plan.yaml (`hqc.plan/1`), model.qat.onnx: the frontend's IR with its
   Conv/Gemm/MatMul weights and biases replaced by the fine-tuned latent float weights,
   and scales.npz: the learned scales (`hqc.quant.save_scales`), for
   `hqc lower model.qat.onnx --plan plan.yaml` with those scales.

Determinism: every random draw comes from `seed` — the held-out split (numpy Generator),
the data order (DistributedSampler(seed).set_epoch), the Gumbel noise (a torch.Generator
seeded per epoch). A checkpoint (state dicts only) is written atomically after every
epoch; a resumed run continues at the next epoch boundary and ends with the same plan
and weights as an uninterrupted run (same machine, same thread count).

Distributed (torchrun): with a process group (or torchrun's environment) every rank runs
the same loop on its shard of each split (DistributedSampler); gradients are averaged
with all-reduce; `batch_size` is the global batch; rank 0 writes the files.

Modules: config (SearchConfig, SearchResult, file names), distributed (torchrun),
schedule (seeds, held-out split, batches, rates, τ), train (the steps, the loops,
evaluation), batchnorm (statistics under the plan), checkpoint (search.ckpt), outputs
(plan.yaml's document, model.qat.onnx, scales.npz), driver (the entry points).
"""

from hqc.search.batchnorm import correct_batchnorm
from hqc.search.checkpoint import CHECKPOINT_VERSION
from hqc.search.config import (
    CHECKPOINT_FILE,
    PLAN_FILE,
    QAT_MODEL_FILE,
    Progress,
    SearchConfig,
    SearchResult,
    SearchStopped,
)
from hqc.search.distributed import _Dist, _init_distributed
from hqc.search.driver import Searched, finetune_plan, finish_plan, run_search, search_plan
from hqc.search.outputs import export_qat_model
from hqc.search.schedule import holdout_split
from hqc.search.train import _Run, arch_step, evaluate, predict, task_loss, weight_step

__all__ = [
    "CHECKPOINT_FILE", "CHECKPOINT_VERSION", "PLAN_FILE", "QAT_MODEL_FILE", "Progress", "SearchConfig",
    "SearchResult", "SearchStopped", "Searched", "_Dist", "_Run", "_init_distributed", "arch_step",
    "correct_batchnorm", "evaluate", "export_qat_model", "finetune_plan", "finish_plan", "holdout_split",
    "predict", "run_search", "search_plan", "task_loss", "weight_step",
]
