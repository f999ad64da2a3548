"""Spikformer (Zhou et al., ICLR 2023) in plain PyTorch, laid out as its CIFAR10-DVS model.

The model takes event frames shaped ``[B, T, C, H, W]`` (as the original Spikformer
code) and permutes them to ``[T, B, C, H, W]`` inside. Its parts:

- ``sps`` (spiking patch splitting): four conv3x3 + BN + LIF stages with a channel ramp
  ``dim/8 -> dim/4 -> dim/2 -> dim``; the last ``log2(patch_size)`` stages end with a
  3x3/2 max-pool. A relative-position conv3x3 + BN + LIF (``rpe_*``) is added as a
  residual. Output: ``[T, B, dim, N]`` with ``N = (img_size / patch_size)**2`` tokens.
- ``blocks.i.attn`` (spiking self-attention): q/k/v are each a 1x1 Conv1d + BN1d + LIF;
  ``attn = q @ k^T @ v * scale`` followed by ``attn_lif`` (threshold 0.5), then
  ``proj_conv`` + BN1d + LIF. ``blocks.i.mlp``: ``fc1_conv`` + BN + LIF, ``fc2_conv`` +
  BN + LIF. Both are residual: ``x = x + attn(x); x = x + mlp(x)``.
- ``head``: Linear on the mean over tokens and time.

The neuron (:class:`MultiStepLIF`) is SpikingJelly's ``LIFNode`` semantics, written as a
plain loop over T so that both ONNX exporters unroll it into
``Sub/Div/Add/Sub/GreaterOrEqual/Cast/Mul`` chains:

    h_t = v_{t-1} + (x_t - v_{t-1}) / tau        (decay_input, tau = 2)
    s_t = (h_t - v_th >= 0)                      (heaviside; sigmoid surrogate, alpha = 4)
    v_t = h_t * (1 - s_t)                        (hard reset to 0)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

__all__ = ["SpikformerConfig", "Spikformer", "MultiStepLIF", "SigmoidSurrogate"]


class SigmoidSurrogate(torch.autograd.Function):
    """Heaviside step ``x >= 0`` whose gradient is the derivative of ``sigmoid(alpha*x)``.

    The exporters see only the forward (a compare and a Cast); the backward is used for
    training.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, alpha: float = 4.0) -> torch.Tensor:  # noqa: D102
        ctx.save_for_backward(x)
        ctx.alpha = alpha
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor, None]:  # noqa: D102
        (x,) = ctx.saved_tensors
        sg = torch.sigmoid(ctx.alpha * x)
        return grad_output * (1.0 - sg) * sg * ctx.alpha, None


class MultiStepLIF(nn.Module):
    """Multi-step leaky integrate-and-fire neuron over the leading time axis.

    Input and output: ``[T, ...]``; the output holds 0/1 spikes of the input's dtype.
    Hard reset to ``v_reset = 0``; ``decay_input=True``; the membrane starts at 0 for
    every call (no state is kept between calls). ``detach_reset`` (as Spikformer) stops
    the surrogate gradient through the reset term.
    """

    def __init__(
        self,
        tau: float = 2.0,
        v_threshold: float = 1.0,
        alpha: float = 4.0,
        detach_reset: bool = True,
    ) -> None:
        super().__init__()
        self.tau = float(tau)
        self.v_threshold = float(v_threshold)
        self.alpha = float(alpha)
        self.detach_reset = detach_reset

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:  # noqa: D102
        v = torch.zeros_like(x_seq[0])
        spikes = []
        for t in range(x_seq.shape[0]):
            h = v + (x_seq[t] - v) / self.tau
            s = SigmoidSurrogate.apply(h - self.v_threshold, self.alpha)
            s_reset = s.detach() if self.detach_reset else s
            v = h * (1.0 - s_reset)
            spikes.append(s)
        return torch.stack(spikes, dim=0)

    def extra_repr(self) -> str:  # noqa: D102
        return f"tau={self.tau}, v_threshold={self.v_threshold}, alpha={self.alpha}"


@dataclass(frozen=True)
class SpikformerConfig:
    """Hyper-parameters of :class:`Spikformer`; round-trips through ``asdict``."""

    T: int = 4
    in_channels: int = 2
    img_size: int = 32
    patch_size: int = 4
    dim: int = 128
    heads: int = 8
    depth: int = 2
    num_classes: int = 10
    mlp_ratio: float = 4.0
    attn_scale: float = 0.125
    tau: float = 2.0

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form (JSON/YAML friendly)."""
        return asdict(self)


class SPS(nn.Module):
    """Spiking patch splitting: ``[T, B, C, H, W] -> [T, B, dim, N]``."""

    def __init__(self, cfg: SpikformerConfig) -> None:
        super().__init__()
        n_pool = int(round(math.log2(cfg.patch_size)))
        if 2**n_pool != cfg.patch_size or not 0 <= n_pool <= 4:
            raise ValueError(f"patch_size must be 1, 2, 4, 8 or 16, got {cfg.patch_size}")
        if cfg.img_size % cfg.patch_size:
            raise ValueError(f"img_size {cfg.img_size} not divisible by patch {cfg.patch_size}")
        if cfg.dim % 8:
            raise ValueError(f"dim must be a multiple of 8, got {cfg.dim}")
        d = cfg.dim
        chans = [cfg.in_channels, d // 8, d // 4, d // 2, d]
        suffixes = ["", "1", "2", "3"]
        # Pool on the last n_pool stages, as Spikformer's CIFAR model (2 pools for 32x32).
        self.pooled = [i >= 4 - n_pool for i in range(4)]
        for i, sfx in enumerate(suffixes):
            self.add_module(
                f"proj_conv{sfx}",
                nn.Conv2d(chans[i], chans[i + 1], kernel_size=3, stride=1, padding=1, bias=False),
            )
            self.add_module(f"proj_bn{sfx}", nn.BatchNorm2d(chans[i + 1]))
            self.add_module(f"proj_lif{sfx}", MultiStepLIF(tau=cfg.tau))
            if self.pooled[i]:
                self.add_module(f"maxpool{sfx}", nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
        self.suffixes = suffixes
        self.rpe_conv = nn.Conv2d(d, d, kernel_size=3, stride=1, padding=1, bias=False)
        self.rpe_bn = nn.BatchNorm2d(d)
        self.rpe_lif = MultiStepLIF(tau=cfg.tau)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        T, B = x.shape[0], x.shape[1]
        x = x.flatten(0, 1)
        for i, sfx in enumerate(self.suffixes):
            x = getattr(self, f"proj_conv{sfx}")(x)
            x = getattr(self, f"proj_bn{sfx}")(x)
            x = x.reshape(T, B, x.shape[1], x.shape[2], x.shape[3])
            x = getattr(self, f"proj_lif{sfx}")(x).flatten(0, 1)
            if self.pooled[i]:
                x = getattr(self, f"maxpool{sfx}")(x)
        c, h, w = x.shape[1], x.shape[2], x.shape[3]
        x_feat = x.reshape(T, B, c, h, w)
        x = self.rpe_bn(self.rpe_conv(x)).reshape(T, B, c, h, w)
        x = self.rpe_lif(x)
        x = x + x_feat
        return x.flatten(-2)


class SSA(nn.Module):
    """Spiking self-attention on ``[T, B, C, N]`` (no softmax; q, k, v are spikes)."""

    def __init__(self, dim: int, heads: int, scale: float, tau: float) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} not divisible by heads {heads}")
        self.heads = heads
        self.scale = scale
        for name in ("q", "k", "v"):
            self.add_module(f"{name}_conv", nn.Conv1d(dim, dim, kernel_size=1, bias=False))
            self.add_module(f"{name}_bn", nn.BatchNorm1d(dim))
            self.add_module(f"{name}_lif", MultiStepLIF(tau=tau))
        self.attn_lif = MultiStepLIF(tau=tau, v_threshold=0.5)
        self.proj_conv = nn.Conv1d(dim, dim, kernel_size=1)
        self.proj_bn = nn.BatchNorm1d(dim)
        self.proj_lif = MultiStepLIF(tau=tau)

    def _branch(self, x_flat: torch.Tensor, name: str, T: int, B: int) -> torch.Tensor:
        C, N = x_flat.shape[1], x_flat.shape[2]
        y = getattr(self, f"{name}_bn")(getattr(self, f"{name}_conv")(x_flat))
        y = getattr(self, f"{name}_lif")(y.reshape(T, B, C, N))
        # [T, B, C, N] -> [T, B, heads, N, C/heads]
        return (
            y.transpose(-1, -2).reshape(T, B, N, self.heads, C // self.heads).permute(0, 1, 3, 2, 4)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        T, B, C, N = x.shape
        x_flat = x.flatten(0, 1)
        q = self._branch(x_flat, "q", T, B)
        k = self._branch(x_flat, "k", T, B)
        v = self._branch(x_flat, "v", T, B)
        attn = (q @ k.transpose(-2, -1)) * self.scale
        y = attn @ v
        y = y.transpose(3, 4).reshape(T, B, C, N)
        y = self.attn_lif(y).flatten(0, 1)
        y = self.proj_bn(self.proj_conv(y)).reshape(T, B, C, N)
        return self.proj_lif(y)


class MLP(nn.Module):
    """Two 1x1 Conv1d + BN1d + LIF layers on ``[T, B, C, N]``."""

    def __init__(self, dim: int, hidden: int, tau: float) -> None:
        super().__init__()
        self.fc1_conv = nn.Conv1d(dim, hidden, kernel_size=1)
        self.fc1_bn = nn.BatchNorm1d(hidden)
        self.fc1_lif = MultiStepLIF(tau=tau)
        self.fc2_conv = nn.Conv1d(hidden, dim, kernel_size=1)
        self.fc2_bn = nn.BatchNorm1d(dim)
        self.fc2_lif = MultiStepLIF(tau=tau)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        T, B, C, N = x.shape
        y = self.fc1_bn(self.fc1_conv(x.flatten(0, 1)))
        y = self.fc1_lif(y.reshape(T, B, -1, N)).flatten(0, 1)
        y = self.fc2_bn(self.fc2_conv(y))
        return self.fc2_lif(y.reshape(T, B, C, N))


class Block(nn.Module):
    """Encoder block: ``x + attn(x)`` then ``x + mlp(x)``."""

    def __init__(self, cfg: SpikformerConfig) -> None:
        super().__init__()
        self.attn = SSA(cfg.dim, cfg.heads, cfg.attn_scale, cfg.tau)
        self.mlp = MLP(cfg.dim, int(cfg.dim * cfg.mlp_ratio), cfg.tau)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        x = x + self.attn(x)
        return x + self.mlp(x)


class Spikformer(nn.Module):
    """Spikformer classifier: ``[B, T, C, H, W]`` event frames -> ``[B, num_classes]`` logits.

    Build from keyword arguments (see :class:`SpikformerConfig`) or a config object;
    ``model.config`` holds the config used.
    """

    def __init__(self, config: SpikformerConfig | None = None, **kwargs: Any) -> None:
        super().__init__()
        if config is None:
            config = SpikformerConfig(**kwargs)
        elif kwargs:
            raise TypeError("pass either a SpikformerConfig or keyword arguments, not both")
        self.config = config
        self.sps = SPS(config)
        self.blocks = nn.ModuleList([Block(config) for _ in range(config.depth)])
        self.head = nn.Linear(config.dim, config.num_classes)
        self.apply(_init_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        x = x.permute(1, 0, 2, 3, 4)  # [B, T, C, H, W] -> [T, B, C, H, W]
        x = self.sps(x)
        for blk in self.blocks:
            x = blk(x)
        x = x.mean(3).mean(0)  # tokens, then time -> [B, dim]
        return self.head(x)


def _init_weights(m: nn.Module) -> None:
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)


def build_model(config: dict[str, Any] | SpikformerConfig) -> Spikformer:
    """Build a :class:`Spikformer` from a config object or its dict form."""
    if isinstance(config, dict):
        config = SpikformerConfig(**config)
    return Spikformer(config)
