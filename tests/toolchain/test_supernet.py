"""The supernet: composite weights equal the K-branch mixture; gradients reach α and w;
the hard (step 1) gradient w.r.t. α matches its analytic form and leaves the weights
alone; the hardware loss is the expected energy; the exact path equals the numpy
quantizers bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hqc.backend import TorchModel
from hqc.choices import DEFAULT_CHOICES, parse_choice
from hqc.onnx_io import from_proto
from hqc.passes import run_passes
from hqc.passes.annotate_layers import annotate_layers
from hqc.pipeline import FRONTEND, run_frontend
from hqc.quant import channel_scales, fake_quant_numpy
from hqc.search import arch_step, weight_step
from hqc.supernet import Supernet, gumbel_softmax, quantize_layer_weight, weight_transposed
from hqc.targets import expected_energy_terms, fp32_energy_pj, load_target, model_cost
from tests.support.helpers import lif_loop_model
from tests.support.zoo import example_spikformer

TINY = dict(dynamo=False, depth=1, dim=32, heads=2, T=2, img=16)
FIVE = [parse_choice(c) for c in DEFAULT_CHOICES]
RTOL, ATOL = 1e-5, 1e-6


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def tiny(zoo_build):
    zm = zoo_build(example_spikformer, TINY)
    return run_frontend(zm.onnx_path)


def _net(fe, composite=True, cands=None):
    cands = cands or {layer.name: FIVE for layer in fe.layers}
    return Supernet(TorchModel(fe.graph.copy()), fe.layers, cands, load_target("cmos45"), composite=composite)


def _spikes(n, shape=(2, 2, 16, 16), seed=0):
    rng = np.random.default_rng(seed)
    return torch.from_numpy((rng.random((n, *shape)) < 0.3).astype(np.float32))


def _matmul_frontend():
    """lif_loop_model: LIF over T then MatMul(M, W) with W stored (d_in, d_out)."""
    g = from_proto(lif_loop_model(T=4, C=6), "lif_loop")
    g, _ = run_passes(g, FRONTEND)
    layers = annotate_layers(g)

    class FE:
        pass

    fe = FE()
    fe.graph, fe.layers = g, layers
    return fe


def test_composite_conv_equals_k_branch_mixture_on_one_layer():
    torch.manual_seed(0)
    x = torch.randn(3, 8, 9, 9)
    w = torch.randn(16, 8, 3, 3) * 0.1
    g = F.softmax(torch.randn(len(FIVE)), 0)
    qs = [quantize_layer_weight(w, c, False) for c in FIVE]
    composite = F.conv2d(x, sum(gk * q for gk, q in zip(g, qs, strict=True)), padding=1)
    branches = sum(gk * F.conv2d(x, q, padding=1) for gk, q in zip(g, qs, strict=True))
    torch.testing.assert_close(composite, branches, rtol=RTOL, atol=1e-5)


def test_composite_supernet_equals_naive_branch_supernet(tiny):
    comp, naive = _net(tiny), _net(tiny, composite=False)
    gen = torch.Generator().manual_seed(3)
    comp.sample(2.0, gen, hard=False, grad=False)
    naive.set_gates(comp.gates)
    comp.refresh_scales()
    naive.scales = dict(comp.scales)
    x = _spikes(6)
    with torch.no_grad():
        a, b = comp.eval()(x), naive.eval()(x)
    assert a.abs().max() > 0
    torch.testing.assert_close(a, b, rtol=RTOL, atol=1e-5)


def test_hard_gate_runs_exactly_the_sampled_choice(tiny):
    net = _net(tiny)
    gen = torch.Generator().manual_seed(1)
    net.refresh_scales()
    net.sample(1.0, gen, hard=True)
    sampled = {n: net.candidates[n][int(torch.argmax(g))] for n, g in net.gates.items()}
    x = _spikes(4)
    with torch.no_grad():
        a = net.eval()(x)
        net.set_plan(sampled)
        b = net(x)
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_gradients_reach_alpha_and_weights(tiny):
    net = _net(tiny).train()
    net.refresh_scales()
    net.sample(2.0, torch.Generator().manual_seed(0), hard=False, grad=True)
    y = torch.arange(6) % 10
    F.cross_entropy(net(_spikes(6)), y).backward()
    for name, a in zip(net.names, net.alpha, strict=True):
        assert a.grad is not None and torch.isfinite(a.grad).all(), name
    assert sum(bool(a.grad.abs().sum() > 0) for a in net.alpha) >= len(net.alpha) - 1
    for layer in tiny.layers:
        grad = net.model.parameter(layer.weight).grad
        assert grad is not None and grad.abs().sum() > 0, layer.name


def test_soft_gate_weight_gradient_is_straight_through(tiny):
    """dL/dw = dL/dW for the composite W = Σ_k g_k Q_k(w): Σ_k g_k = 1 and STE rounding."""
    net = _net(tiny).train()
    net.refresh_scales()
    net.sample(2.0, torch.Generator().manual_seed(0), hard=False, grad=False)
    composite = {n: net.layer_weight(n) for n in net.names}
    for W in composite.values():
        W.retain_grad()
    net._current = composite  # the forward pass uses exactly these tensors
    F.cross_entropy(net.model(_spikes(4)), torch.arange(4)).backward()
    net._current = {}
    for layer in tiny.layers:
        gw = net.model.parameter(layer.weight).grad
        torch.testing.assert_close(gw, composite[layer.name].grad, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("alpha_grad", ["straight-through", "sampled"])
def test_hard_step_alpha_gradient_matches_the_analytic_form(alpha_grad):
    """L(α) with g = hard ST Gumbel-softmax: dL/dα = (1/τ) J_softmax(y)ᵀ dL/dg, where
    dL/dg_k = <dL/dW, Q_k(w)> for every k (straight-through), or only for the sampled s
    (sampled: dL/dα_j = (1/τ) dL/dg_s · y_s (δ_sj − y_j))."""
    fe = _matmul_frontend()
    (layer,) = fe.layers
    net = _net(fe).train()
    with torch.no_grad():
        net.alpha[0].copy_(torch.tensor([0.3, -0.2, 0.5, 0.1, -0.4]))
    net.refresh_scales()
    tau = 0.7
    x = torch.from_numpy(np.random.default_rng(2).normal(size=(5, 4, 6)).astype(np.float32) * 2)
    y = torch.tensor([0, 1, 2, 3, 4])
    for p in net.weight_parameters():
        p.requires_grad_(False)
    net.sample(tau, torch.Generator().manual_seed(9), hard=True, alpha_grad=alpha_grad)
    F.cross_entropy(net(x), y).backward()
    got = net.alpha[0].grad.clone()

    # analytic: the same noise, dL/dW at the sampled weight, then the chain rule by hand
    gen = torch.Generator().manual_seed(9)
    u = torch.rand(5, generator=gen, dtype=torch.float64)
    gum = -torch.log(-torch.log(u))
    ysoft = F.softmax((net.alpha[0].detach().double() + gum) / tau, 0)
    s = int(torch.argmax(ysoft))
    qs = [net._q(net.names[0], c, net.model.parameter(layer.weight)).detach() for c in FIVE]
    W = qs[s].clone().requires_grad_(True)
    net.set_float()
    net.model.set_weight_transform(layer.weight, lambda _w: W)
    F.cross_entropy(net.model(x), y).backward()
    dL_dg = torch.stack([(W.grad * q).sum() for q in qs]).double()
    if alpha_grad == "sampled":
        dL_dg = torch.where(torch.arange(5) == s, dL_dg, torch.zeros_like(dL_dg))
    jac = torch.diag(ysoft) - torch.outer(ysoft, ysoft)  # dy_k/dz_j
    want = (jac.T @ dL_dg) / tau
    assert want.abs().max() > 1e-4
    torch.testing.assert_close(got.double(), want, rtol=1e-4, atol=1e-7)
    if alpha_grad == "sampled":
        want_s = dL_dg[s] * ysoft[s] * ((torch.arange(5) == s).double() - ysoft) / tau
        torch.testing.assert_close(got.double(), want_s, rtol=1e-4, atol=1e-7)


def test_arch_step_updates_alpha_only_and_weight_step_weights_only(tiny):
    net = _net(tiny).train()
    net.refresh_scales()
    opt_a = torch.optim.Adam(net.arch_parameters(), lr=0.1)
    opt_w = torch.optim.AdamW(net.weight_parameters(), lr=1e-2)
    w0 = {k: v.detach().clone() for k, v in net.model.state_dict().items()}
    a0 = [a.detach().clone() for a in net.alpha]
    x, y = _spikes(6), torch.arange(6) % 10
    gen = torch.Generator().manual_seed(0)
    arch_step(net, opt_a, x, y, lam=0.5, tau=1.0, generator=gen)
    for k, v in net.model.state_dict().items():
        assert torch.equal(v, w0[k]), k
    assert all(p.grad is None for p in net.weight_parameters())
    assert all(p.requires_grad for p in net.weight_parameters())
    assert all(not torch.equal(a, b) for a, b in zip(net.alpha, a0, strict=True))
    a1 = [a.detach().clone() for a in net.alpha]
    g1 = [a.grad.clone() for a in net.alpha]
    weight_step(net, opt_w, x, y, tau=1.0, generator=gen)
    assert all(torch.equal(a, b) for a, b in zip(net.alpha, a1, strict=True))
    assert all(torch.equal(a.grad, g) for a, g in zip(net.alpha, g1, strict=True))  # no new gradient
    changed = [k for k, v in net.model.state_dict().items() if not torch.equal(v, w0[k])]
    assert len(changed) >= len(tiny.layers) - 1


def test_hardware_loss_is_expected_energy_over_fp32(tiny):
    tgt = load_target("cmos45")
    net = _net(tiny)
    terms = expected_energy_terms(tiny.layers, [c.name for c in FIVE], tgt)
    e32 = fp32_energy_pj(tiny.layers, tgt)
    uniform = sum(sum(v.values()) / len(v) for v in terms.values()) / e32
    assert net.hardware_loss().item() == pytest.approx(uniform, rel=1e-6)
    with torch.no_grad():
        for a in net.alpha:
            a.copy_(torch.tensor([0.0, 50.0, 0.0, 0.0, 0.0]))  # ≈ all uni4
    plan = net.argmax_plan()
    assert {c.name for c in plan.values()} == {"uni4"}
    ratio = model_cost(tiny.layers, plan, tgt).ratios["energy_total_pj"]
    assert net.plan_energy_ratio(plan) == pytest.approx(ratio, rel=1e-12)
    assert net.hardware_loss().item() == pytest.approx(ratio, rel=1e-5)
    # gradient of the hardware loss pushes towards cheaper choices
    net.hardware_loss().backward()
    for i, a in enumerate(net.alpha):
        assert a.grad[0] > 0 or net.energy(i)[0] == net.energy(i).min()


def test_exact_path_equals_numpy_quantizers_bit_for_bit(tiny):
    net = _net(tiny)
    gen = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for a in net.alpha:
            a.copy_(torch.randn(len(FIVE), generator=gen))
        for p in net.weight_parameters():
            p.add_(0.01 * torch.randn(p.shape, generator=gen))  # scales in the cache go stale
    plan = net.argmax_plan()
    exact = net.exact_weights(plan)
    for layer in tiny.layers:
        w = net.model.parameter(layer.weight).detach().numpy()
        ref = fake_quant_numpy(w, plan[layer.name])
        np.testing.assert_array_equal(exact[layer.weight].view(np.uint32), ref.view(np.uint32))
        net.set_plan(plan)
        np.testing.assert_array_equal(net.layer_weight(layer.name).detach().numpy().view(np.uint32),
                                      ref.view(np.uint32))


def test_transposed_weights_are_quantized_per_output_channel():
    fe = _matmul_frontend()
    (layer,) = fe.layers
    assert weight_transposed(fe.graph, layer)
    stored = fe.graph.constants[layer.weight]
    assert stored.shape == (6, 5) and layer.weight_shape == (5, 6)
    net = _net(fe, cands={layer.name: [parse_choice("uni2")]})
    net.refresh_scales()
    net.set_plan({layer.name: parse_choice("uni2")})
    got = net.layer_weight(layer.name).detach().numpy()
    np.testing.assert_array_equal(got, fake_quant_numpy(stored.T, parse_choice("uni2")).T)
    assert net.scales[(layer.name, "uni2")].shape == (5,)


def test_gumbel_softmax_is_seeded_and_anneals():
    logits = torch.tensor([0.0, 1.0, -1.0])
    a = gumbel_softmax(logits, 1.0, torch.Generator().manual_seed(4))
    b = gumbel_softmax(logits, 1.0, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and a.sum().item() == pytest.approx(1.0)
    h = gumbel_softmax(logits, 0.5, torch.Generator().manual_seed(4), hard=True)
    assert sorted(h.tolist()) == [0.0, 0.0, 1.0]
    cold = gumbel_softmax(logits, 0.01, torch.Generator().manual_seed(4))
    assert cold.max() > 0.99


def test_learned_scales_start_at_the_mse_scales_and_are_what_exact_weights_use(tiny):
    net = _net(tiny)
    plan = {layer.name: FIVE[(i % 4) + 1] for i, layer in enumerate(tiny.layers)}  # no fp32
    net.set_plan(plan)
    net.learn_scales()
    assert len(net.scale_parameters()) == len(tiny.layers)
    learned = net.learned_scales()
    for layer in tiny.layers:  # initialised from today's MSE-grid rule
        w = net.model.parameter(layer.weight).detach().numpy()
        np.testing.assert_array_equal(learned[layer.name], channel_scales(w, plan[layer.name]))
    with torch.no_grad():
        for i, p in enumerate(net.scale_parameters()):
            p.mul_(1.0 + 0.1 * (i + 1))  # learned scales move away from the MSE ones
    learned = net.learned_scales()
    net.refresh_scales()  # must not recompute the learned ones
    assert not any(k[0] in learned for k in net.scales)
    exact = net.exact_weights(plan)
    for layer in tiny.layers:
        w = net.model.parameter(layer.weight).detach().numpy()
        ref = fake_quant_numpy(w, plan[layer.name], learned[layer.name])
        np.testing.assert_array_equal(exact[layer.weight].view(np.uint32), ref.view(np.uint32))
        np.testing.assert_array_equal(net.layer_weight(layer.name).detach().numpy().view(np.uint32),
                                      ref.view(np.uint32))
    net.train()
    net(_spikes(2)).sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.scale_parameters())
    assert any(float(p.grad.abs().sum()) > 0 for p in net.scale_parameters())


def test_learned_scales_of_a_transposed_weight_are_per_output_channel():
    fe = _matmul_frontend()
    (layer,) = fe.layers
    net = _net(fe, cands={layer.name: [parse_choice("uni2")]})
    net.set_plan({layer.name: parse_choice("uni2")})
    net.learn_scales()
    (s,) = net.scale_parameters()
    assert s.shape == (5,)
    with torch.no_grad():
        s.mul_(torch.linspace(0.5, 2.0, 5))
    stored = fe.graph.constants[layer.weight]
    got = net.layer_weight(layer.name).detach().numpy()
    ref = fake_quant_numpy(stored.T, parse_choice("uni2"), s.detach().numpy()).T
    np.testing.assert_array_equal(got.view(np.uint32), ref.view(np.uint32))
