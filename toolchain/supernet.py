"""The quantization supernet: one shared latent weight and one logit vector per layer.

    TorchModel(graph) + layers + candidates + target --Supernet--> nn.Module whose every
    weight layer l uses   W_l = Σ_k g_lk · Q_k(w_l)   (one conv/linear per layer)

Because Conv/Linear are linear in the weight, Σ_k g_k · f(x; Q_k(w)) = f(x; Σ_k g_k · Q_k(w))
(EdMIPS's composite convolution): the supernet runs ONE conv per layer on the
gate-weighted mix of the quantized weights, not K branches. The mix is installed with
`TorchModel.set_weight_transform` and computed once per forward (a weight shared by
several nodes, as in snnTorch exports, is mixed once).

Gates g_l (see `Supernet.sample`):
  soft    — Gumbel-softmax sample y = softmax((α + G) / τ) (search step 2, weights).
  hard    — straight-through one-hot: forward uses only the sampled choice s,
            g = onehot(s) − sg(y) + y (search step 1, α). `alpha_grad="sampled"` keeps
            only the sampled entry, g_s = 1 + y_s − sg(y_s), g_k≠s = 0, so the gradient
            reaches α only through the sampled choice's softmax entry (the paper's "only
            update the selection probability under this choice").
  fixed   — a plan: W_l = Q_{c_l}(w_l) (QAT fine-tune, evaluation).
  float   — W_l = w_l.
Q_k is `hqc.quant.fake_quant_torch` (straight-through rounding: ∂Q_k(w)/∂w = 1), so in
soft mode ∂W/∂w = Σ_k g_k = 1 and ∂W/∂g_k = Q_k(w).

Hardware loss: Σ_l Σ_k p_lk · E_lk / E_fp32 with p_l = softmax(α_l), E_lk the paper-model
energy of layer l under choice k (`hqc.targets.expected_energy_terms`) and E_fp32 the
all-fp32 model's energy (`fp32_energy_pj`), so λ means the same on every model.

Scales: the per-channel MSE-grid scales (`hqc.quant.channel_scales`, numpy) cost about as
much as a forward+backward pass of a small Spikformer when computed for every layer and
choice at every step. The supernet therefore caches them: `refresh_scales()` recomputes
them from the current latent weights, and the search calls it every `scale_refresh` steps
(and at every epoch start). Between refreshes the codes use scales up to k steps old —
a training-time approximation only: `refresh_scales()` before an evaluation (or
`exact_weights`) gives exactly the lowering's values (scales from the weights being
quantized, bit-identical to `fake_quant_numpy`).

Learned scales (the fine-tune): `learn_scales()` in fixed mode gives every quantized
layer of the plan a trainable per-channel scale (`scale_parameters()`), initialised from
the MSE-grid scale of its current weight; from then on that layer is quantized by
`hqc.quant.learned_fake_quant_torch` (LSQ gradients for weight and scale) and
`refresh_scales()` leaves it alone. `learned_scales()` hands them (float32, per layer
name) to the lowering, which uses exactly these values; `exact_weights` uses them too.

Weight layout: scales are per output channel of the weight in the PyTorch convention
(LayerInfo.weight_shape). ONNX MatMul x·W and Gemm with transB=0 store W as (d_in, d_out);
those weights are quantized transposed (`weight_transposed`).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hqc.backend import TorchModel
from hqc.choices import QuantChoice
from hqc.errors import PlanError
from hqc.layers import LayerInfo
from hqc.passes.annotate_layers import weight_transposed  # noqa: F401  (re-export)
from hqc.quant import channel_scales, fake_quant_torch, learned_fake_quant_torch
from hqc.targets import expected_energy_terms, fp32_energy_pj
from hqc.targets.schema import Target

log = logging.getLogger(__name__)

Mode = Literal["float", "soft", "hard", "fixed"]
AlphaGrad = Literal["straight-through", "sampled"]


#: Learned scales are kept at or above this (a scale must stay > 0).
MIN_SCALE = 1e-12


def quantize_layer_weight(w: torch.Tensor, choice: QuantChoice, transposed: bool,
                          scales: np.ndarray | torch.Tensor | None = None) -> torch.Tensor:
    """Q(w) of a stored weight, per output channel of the PyTorch layout: straight-through
    with fixed (numpy) scales, LSQ with a learned (torch) scale."""
    if choice.kind == "fp32":
        return w
    quantize = learned_fake_quant_torch if isinstance(scales, torch.Tensor) else fake_quant_torch
    if transposed:
        return quantize(w.t(), choice, scales).t()
    return quantize(w, choice, scales)


def gumbel_softmax(logits: torch.Tensor, tau: float, generator: torch.Generator | None = None,
                   hard: bool = False, alpha_grad: AlphaGrad = "straight-through") -> torch.Tensor:
    """A Gumbel-softmax sample of `logits` (1-D), noise drawn from `generator` (CPU).

    soft: y = softmax((logits + G) / tau). hard: value one-hot at argmax y; gradient as the
    module docstring says for `alpha_grad`.
    """
    u = torch.rand(logits.shape, generator=generator, dtype=torch.float64)
    g = -torch.log(-torch.log(u.clamp(1e-20, 1.0 - 1e-12)))
    y = F.softmax((logits + g.to(device=logits.device, dtype=logits.dtype)) / tau, dim=-1)
    if not hard:
        return y
    s = int(torch.argmax(y.detach()))
    onehot = torch.zeros_like(y)
    onehot[s] = 1.0
    if alpha_grad == "sampled":
        return onehot * (1.0 + y - y.detach())
    return onehot + (y - y.detach())


class Supernet(nn.Module):
    """See the module docstring. Parameters: the TorchModel's (latent weights, biases) and
    `alpha` (one logit vector per layer, in `layers` order, initialized to 0)."""

    def __init__(self, model: TorchModel, layers: Sequence[LayerInfo],
                 candidates: Mapping[str, Sequence[QuantChoice]], target: Target,
                 composite: bool = True) -> None:
        super().__init__()
        self.model = model
        self.layers = list(layers)
        self.names = [layer.name for layer in self.layers]
        missing = [n for n in self.names if n not in candidates or not candidates[n]]
        if missing:
            raise PlanError(f"no candidate quantizers for layers: {', '.join(missing)}")
        self.candidates = {n: tuple(candidates[n]) for n in self.names}
        self.weight_of = {layer.name: layer.weight for layer in self.layers}
        self.transposed = {layer.name: weight_transposed(model.graph, layer) for layer in self.layers}
        self.alpha = nn.ParameterList(
            [nn.Parameter(torch.zeros(len(self.candidates[n]))) for n in self.names])
        terms = expected_energy_terms(self.layers, self.candidates, target)
        self.fp32_energy_pj = fp32_energy_pj(self.layers, target)
        for i, n in enumerate(self.names):
            e = torch.tensor([terms[n][c.name] for c in self.candidates[n]], dtype=torch.float64)
            self.register_buffer(f"energy_{i}", e, persistent=False)
        self.energy_terms_pj = terms
        self.mode: Mode = "float"
        self.alpha_grad: AlphaGrad = "straight-through"
        self.plan: dict[str, QuantChoice] = {}
        self.gates: dict[str, torch.Tensor] = {}
        self.scales: dict[tuple[str, str], np.ndarray] = {}
        self.learned = nn.ParameterDict()  # "s<layer index>" → learned scale of the plan's choice
        self.learned_choice: dict[str, str] = {}  # layer name → the choice its scale belongs to
        self.composite = composite
        self._current: dict[str, torch.Tensor] = {}
        if composite:
            for n in self.names:
                model.set_weight_transform(self.weight_of[n], functools.partial(self._transform, n))
        else:
            self._install_branches()

    # ------------------------------------------------------------------ parameters
    def weight_parameters(self) -> list[nn.Parameter]:
        """The model's trainable tensors: latent weights and biases."""
        return list(self.model.parameters())

    def arch_parameters(self) -> list[nn.Parameter]:
        return list(self.alpha)

    def scale_parameters(self) -> list[nn.Parameter]:
        """The learned scales (empty until `learn_scales`)."""
        return list(self.learned.values())

    def energy(self, i: int) -> torch.Tensor:
        return getattr(self, f"energy_{i}")

    def probabilities(self) -> dict[str, torch.Tensor]:
        """softmax(α_l) per layer (differentiable)."""
        return {n: F.softmax(a, dim=0) for n, a in zip(self.names, self.alpha, strict=True)}

    def hardware_loss(self) -> torch.Tensor:
        """Σ_l Σ_k p_lk E_lk / E_fp32 (differentiable in α).

        Weight layers only, as the paper prices them: the other costs of the full
        accounting (attention MatMuls, LIF updates, residual adds; hqc.targets.full) do not
        depend on the plan, so they would add a constant here (docs/targets.md).
        """
        total = sum((F.softmax(a, dim=0).double() * self.energy(i)).sum()
                    for i, a in enumerate(self.alpha))
        return (total / self.fp32_energy_pj).float()  # type: ignore[union-attr]

    def argmax_plan(self) -> dict[str, QuantChoice]:
        """The plan of the current logits: argmax α_l per layer (first maximum wins)."""
        return {n: self.candidates[n][int(torch.argmax(a.detach()))]
                for n, a in zip(self.names, self.alpha, strict=True)}

    def plan_energy_ratio(self, plan: Mapping[str, QuantChoice]) -> float:
        """Paper-model energy of a plan over the fp32 model's."""
        return sum(self.energy_terms_pj[n][plan[n].name] for n in self.names) / self.fp32_energy_pj

    # ------------------------------------------------------------------ modes
    def set_float(self) -> None:
        self.mode = "float"

    def set_plan(self, plan: Mapping[str, QuantChoice]) -> None:
        """Fixed plan (QAT): every layer uses its chosen quantizer."""
        bad = [n for n in self.names if n not in plan]
        if bad:
            raise PlanError(f"plan has no choice for layers: {', '.join(bad)}")
        self.plan = {n: plan[n] for n in self.names}
        self.mode = "fixed"

    def sample(self, tau: float, generator: torch.Generator | None, hard: bool,
               alpha_grad: AlphaGrad = "straight-through", grad: bool = True) -> None:
        """Draw the gates of every layer (in layer order, from `generator`)."""
        self.mode = "hard" if hard else "soft"
        self.alpha_grad = alpha_grad
        with torch.set_grad_enabled(grad):
            self.gates = {n: gumbel_softmax(a, tau, generator, hard, alpha_grad)
                          for n, a in zip(self.names, self.alpha, strict=True)}

    def set_gates(self, gates: Mapping[str, torch.Tensor], hard: bool = False,
                  alpha_grad: AlphaGrad = "straight-through") -> None:
        """Use given gates (tests, benchmarks)."""
        self.mode = "hard" if hard else "soft"
        self.alpha_grad = alpha_grad
        self.gates = dict(gates)

    # ------------------------------------------------------------------ scales
    def learn_scales(self) -> None:
        """Fixed mode: a trainable scale per quantized layer of the plan, initialised from the
        MSE-grid scale of the current weight (a scale already learned for the same choice is
        kept)."""
        if self.mode != "fixed":
            raise PlanError("learned scales need a fixed plan (set_plan first)")
        for i, n in enumerate(self.names):
            c = self.plan[n]
            if c.kind == "fp32" or self.learned_choice.get(n) == c.name:
                continue
            w = self.model.parameter(self.weight_of[n]).detach().cpu().numpy()
            s = channel_scales(w.T if self.transposed[n] else w, c)
            ref = self.model.parameter(self.weight_of[n])
            self.learned[f"s{i}"] = nn.Parameter(torch.from_numpy(s).to(ref.device))
            self.learned_choice[n] = c.name

    def _learned(self, name: str, choice: QuantChoice) -> nn.Parameter | None:
        if self.learned_choice.get(name) != choice.name:
            return None
        return self.learned[f"s{self.names.index(name)}"]

    @torch.no_grad()
    def clamp_scales(self) -> None:
        """Keep every learned scale ≥ MIN_SCALE (after an optimizer step)."""
        for p in self.learned.values():
            p.clamp_(min=MIN_SCALE)

    def learned_scales(self) -> dict[str, np.ndarray]:
        """{layer name: float32 scales} of the layers whose plan choice has a learned scale
        (what the lowering must use)."""
        return {n: self._learned(n, self.plan[n]).detach().cpu().numpy().astype(np.float32)  # type: ignore[union-attr]
                for n in self.names if n in self.plan and self._learned(n, self.plan[n]) is not None}

    def refresh_scales(self) -> None:
        """Recompute the scales from the current latent weights (exact): in fixed mode those
        of the plan's choices only (the others are computed when first needed), else those
        of every candidate. Learned scales are not touched (they are the exact values)."""
        self.scales = {}
        for n in self.names:
            w = self.model.parameter(self.weight_of[n]).detach().cpu().numpy()
            if self.transposed[n]:
                w = w.T
            choices = (self.plan[n],) if self.mode == "fixed" else self.candidates[n]
            for c in choices:
                if c.kind != "fp32" and not (self.mode == "fixed" and self._learned(n, c) is not None):
                    self.scales[(n, c.name)] = channel_scales(w, c)

    def _q(self, name: str, choice: QuantChoice, w: torch.Tensor) -> torch.Tensor:
        if self.mode == "fixed":
            learned = self._learned(name, choice)
            if learned is not None:
                return quantize_layer_weight(w, choice, self.transposed[name], learned)
        s = self.scales.get((name, choice.name))
        if s is None and choice.kind != "fp32":
            wn = w.detach().cpu().numpy()
            s = channel_scales(wn.T if self.transposed[name] else wn, choice)
            self.scales[(name, choice.name)] = s
        return quantize_layer_weight(w, choice, self.transposed[name], s)

    # ------------------------------------------------------------------ weights
    def layer_weight(self, name: str, w: torch.Tensor | None = None) -> torch.Tensor:
        """The weight layer `name` uses in the current mode."""
        if w is None:
            w = self.model.parameter(self.weight_of[name])
        if self.mode == "float":
            return w
        if self.mode == "fixed":
            return self._q(name, self.plan[name], w)
        g = self.gates[name]
        cands = self.candidates[name]
        if self.mode == "hard":
            s = int(torch.argmax(g.detach()))
            if not g.requires_grad:
                return self._q(name, cands[s], w)
            if self.alpha_grad == "sampled":
                return g[s] * self._q(name, cands[s], w)
        out = None
        for k, c in enumerate(cands):
            term = g[k] * self._q(name, c, w)
            out = term if out is None else out + term
        return out  # type: ignore[return-value]

    def _transform(self, name: str, w: torch.Tensor) -> torch.Tensor:
        cached = self._current.get(name)
        return cached if cached is not None else self.layer_weight(name, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of data x (N, T, ...) under the current mode."""
        if self.composite:
            self._current = {n: self.layer_weight(n) for n in self.names}
        try:
            return self.model(x)
        finally:
            self._current = {}

    # ------------------------------------------------------------------ naive K-branch
    def _install_branches(self) -> None:
        """Reference implementation: run each layer once per candidate and mix the outputs,
        y = Σ_k g_k f(x; Q_k(w)) (K convs per layer). For tests and benchmarks only."""
        by_weight = {self.weight_of[n]: n for n in self.names}
        plan = []
        for node, fn in self.model.plan:
            slots = [i for i, t in enumerate(node.inputs) if t in by_weight]
            if not slots:
                plan.append((node, fn))
                continue
            plan.append((node, functools.partial(self._branch_op, fn, slots[0], by_weight[node.inputs[slots[0]]])))
        self.model.plan = plan

    def _branch_op(self, fn, slot, name, node, args, m):  # noqa: ANN001 - interpreter callback
        w = args[slot]
        if self.mode in ("float", "fixed"):
            args = list(args)
            args[slot] = self.layer_weight(name, w)
            return fn(node, args, m)
        out = None
        for k, c in enumerate(self.candidates[name]):
            a = list(args)
            a[slot] = self._q(name, c, w)
            term = self.gates[name][k] * fn(node, a, m)
            out = term if out is None else out + term
        return out

    # ------------------------------------------------------------------ export
    @torch.no_grad()
    def exact_weights(self, plan: Mapping[str, QuantChoice]) -> dict[str, np.ndarray]:
        """{weight constant: Q(w)} — the values the lowering computes: learned scales where
        the plan's choice has one, else fresh MSE-grid scales."""
        self.refresh_scales()
        out = {}
        for n in self.names:
            w = self.model.parameter(self.weight_of[n])
            s = self._learned(n, plan[n])
            s = s.detach() if s is not None else self.scales.get((n, plan[n].name))
            out[self.weight_of[n]] = quantize_layer_weight(w, plan[n], self.transposed[n], s).cpu().numpy()
        return out
