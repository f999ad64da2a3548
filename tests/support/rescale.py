"""Two small SpikingJelly nets whose integer lowering needs rescaled sums and products
(the membrane shortcut of SDT, spike-driven self-attention): tests/toolchain/lowering/
test_lower_rescale.py checks them, benchmarks/bench_rounding.py measures them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from tests.support.zoo import _calibrate_bn, _finish, _set_user_surrogate, _sj_lif_params, _spikes


def _lif(thr: float = 1.0) -> nn.Module:
    from spikingjelly.activation_based import neuron

    return neuron.LIFNode(tau=2.0, v_threshold=thr, detach_reset=True, step_mode="m")


def _conv(cin: int, cout: int, k: int, stride: int = 1, bias: bool = False) -> nn.Module:
    from spikingjelly.activation_based import layer

    return layer.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=bias, step_mode="m")


def _bn(c: int) -> nn.Module:
    from spikingjelly.activation_based import layer

    return layer.BatchNorm2d(c, step_mode="m")


class ShortcutNet(nn.Module):
    """SDT's membrane shortcut, chained twice: x = bn_i(conv_i(lif_i(x))) + x (BN outputs
    of different layers: per-channel scales that differ arbitrarily); the readout spikes
    are gated by a neuron on the channel mean of x (a reduction over the axis along which
    the scale varies, and a broadcast spike ⊙ spike)."""

    def __init__(self, c: int = 16) -> None:
        super().__init__()
        self.conv0, self.bn0 = _conv(2, c, 3), _bn(c)
        self.lif1, self.conv1, self.bn1 = _lif(), _conv(c, c, 3), _bn(c)
        self.lif2, self.conv2, self.bn2 = _lif(), _conv(c, c, 1), _bn(c)
        self.lif_h, self.lif_gate = _lif(), _lif(0.5)
        self.head = nn.Linear(c, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [T, B, 2, H, W]
        x = self.bn0(self.conv0(x))
        x = self.bn1(self.conv1(self.lif1(x))) + x
        x = self.bn2(self.conv2(self.lif2(x))) + x
        s = self.lif_h(x) * self.lif_gate(x.mean(dim=2, keepdim=True))
        return self.head(s.mean((3, 4))).mean(0)


class AttnNet(nn.Module):
    """Spike-driven self-attention (SpikingJelly's SpikeDrivenSelfAttention): kv =
    attn_lif(Σ_tokens k ⊙ v) (threshold 0.5), q ⊙ kv broadcast over the tokens, plus a
    spike × integer mask q ⊙ Σ_channels k; proj + BN + the membrane shortcut."""

    def __init__(self, c: int = 16, heads: int = 2) -> None:
        super().__init__()
        self.heads = heads
        self.conv0, self.bn0 = _conv(2, c, 3, stride=2), _bn(c)
        self.shortcut_lif = _lif()
        self.q_conv, self.q_bn, self.q_lif = _conv(c, c, 1), _bn(c), _lif()
        self.k_conv, self.k_bn, self.k_lif = _conv(c, c, 1), _bn(c), _lif()
        self.v_conv, self.v_bn, self.v_lif = _conv(c, c, 1), _bn(c), _lif()
        self.attn_lif = _lif(0.5)
        self.proj_conv, self.proj_bn = _conv(c, c, 1, bias=True), _bn(c)
        self.lif_h = _lif()
        self.head = nn.Linear(c, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [T, B, 2, H, W]
        x = self.bn0(self.conv0(x))
        T, N, C, H, W = x.shape
        identity = x
        s = self.shortcut_lif(x)
        q = self.q_lif(self.q_bn(self.q_conv(s)))
        k = self.k_lif(self.k_bn(self.k_conv(s)))
        v = self.v_lif(self.v_bn(self.v_conv(s)))

        def heads(t: torch.Tensor) -> torch.Tensor:  # [T, N, heads, L, C/heads]
            t = t.flatten(3).transpose(-1, -2)
            return t.reshape(T, N, H * W, self.heads, C // self.heads).permute(0, 1, 3, 2, 4)

        q, k, v = heads(q), heads(k), heads(v)
        kv = self.attn_lif((k * v).sum(dim=-2, keepdim=True))
        y = q * kv + q * k.sum(dim=-1, keepdim=True)
        y = y.transpose(3, 4).reshape(T, N, C, H, W)
        x = self.proj_bn(self.proj_conv(y)) + identity
        return self.head(self.lif_h(x).mean((3, 4))).mean(0)


MODELS = {"shortcut": ShortcutNet, "attention": AttnNet}
T, IMG = 2, 8


def build(kind: str, dynamo: bool, tmp: Path, seed: int = 0):
    torch.manual_seed(seed)
    model = MODELS[kind]()
    if not dynamo:
        _set_user_surrogate(model)
    rng = np.random.default_rng(seed)
    _calibrate_bn(model, [_spikes(rng, (T, 16, 2, IMG, IMG))], seed)
    x = _spikes(rng, (T, 1, 2, IMG, IMG))
    return _finish(f"rescale_{kind}_{'dynamo' if dynamo else 'ts'}", model, x, "TBCHW", T, tmp, dynamo,
                   _sj_lif_params, {})
