"""BatchNorm under quantization: the running statistics moved to the quantized model."""

from __future__ import annotations

import numpy as np
import torch

from hqc.data import Split
from hqc.supernet import Supernet


@torch.no_grad()
def _bn_input_stats(net: Supernet, bns: list, x: torch.Tensor, batch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per-channel (mean, variance) of each BatchNormalization node's input on x, in the
    net's current mode (eval semantics); the channel axis is 1 of the export-time shape."""
    sums: list[torch.Tensor | None] = [None] * len(bns)
    for i in range(0, len(x), batch):
        outs = net.model.forward_all(x[i:i + batch], names=[n.inputs[0] for n in bns])
        for j, o in enumerate(outs):
            o = o.double().movedim(2, 0).reshape(o.shape[2], -1)  # (C, everything else)
            part = torch.stack([o.sum(1), (o * o).sum(1), torch.full_like(o[:, 0], o.shape[1])])
            sums[j] = part if sums[j] is None else sums[j] + part
    out = []
    for t in sums:
        mean = t[0] / t[2]
        out.append((mean, (t[1] / t[2] - mean * mean).clamp(min=0.0)))
    return out


@torch.no_grad()
def correct_batchnorm(net: Supernet, split: Split, samples: int, batch: int, device: str = "cpu") -> list[str]:
    """BatchNorm under quantization: move the running statistics of every BatchNormalization
    node (constant mean/var) so that its output on the quantized model has the per-channel
    mean and variance it has on the float model, on the first `samples` samples of `split`:

        var' + ε = (var + ε) · r²,   mean' = μ_q − (μ_f − mean) · r,   r = σ_q / σ_f

    (μ, σ² of the BN input; a channel with σ²_f or σ²_q = 0 takes r = 1). The BN's
    γ, β stay; the new statistics are written into the model's buffers and the graph's
    constants (so model.qat.onnx carries them and the lowering folds them as before).
    With an all-fp32 plan it changes nothing. Returns the names of the nodes corrected."""
    tm = net.model
    bns = [n for n in tm.graph.nodes() if n.op == "BatchNormalization" and len(n.inputs) >= 5
           and all(t in tm._bufs for t in n.inputs[3:5])]  # statistics that are constants (buffers)
    if not bns or len(split) == 0:
        return []
    was_mode, was_training = net.mode, net.training
    net.eval()
    pick = np.sort(np.random.default_rng(0).permutation(len(split))[:samples])  # classes mixed
    x = torch.from_numpy(split.x[pick]).to(device)
    net.set_float()
    ref = _bn_input_stats(net, bns, x, batch)
    net.mode = was_mode
    got = _bn_input_stats(net, bns, x, batch)
    net.train(was_training)
    done = []
    for node, (mf, vf), (mq, vq) in zip(bns, ref, got, strict=True):
        eps = float(node.attrs.get("epsilon", 1e-5))
        mean_name, var_name = node.inputs[3], node.inputs[4]
        mean, var = (getattr(tm, tm._bufs[t]) for t in (mean_name, var_name))
        ok = (vf > 0) & (vq > 0)
        r = torch.where(ok, torch.sqrt(vq / torch.where(ok, vf, 1.0)), torch.ones_like(vf))
        new_mean = mq - (mf - mean.double()) * r
        new_var = (var.double() + eps) * r * r - eps
        mean.copy_(new_mean.to(mean.dtype))
        var.copy_(new_var.clamp(min=0.0).to(var.dtype))
        tm.graph.constants[mean_name] = mean.cpu().numpy().astype(tm.graph.constants[mean_name].dtype)
        tm.graph.constants[var_name] = var.cpu().numpy().astype(tm.graph.constants[var_name].dtype)
        done.append(node.name)
    return done
