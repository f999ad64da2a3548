"""Export SpikingJelly 2.0's Spikformer at benchmark size (~4,000 ONNX nodes) for import-speed runs.

Default: depth 2, dim 256, 16 heads, T=16, 32x32 input with 2 channels (patch 4, 10 classes),
dynamo exporter (weights in ``<out>.data``). ``--paper`` is the Spikformer paper's
CIFAR10-DVS configuration: 128x128 two-channel input, patch 16 (the 4-conv tokenizer
pools at every stage: 8x8 tokens), dim 256, 16 heads, 2 blocks, T = 16 (2.56 M parameters). ``--no-dynamo`` uses the TorchScript exporter
(opset 17); SpikingJelly's default neuron is a custom op (``sj_lif::forward``) that only the
dynamo exporter lowers, so ``--no-dynamo`` swaps every LIFNode's surrogate for a Heaviside
module defined here (SpikingJelly then runs its plain Torch loop, which TorchScript unrolls).

    python benchmarks/export_big_spikformer.py build/bench/spikformer_big.onnx
    python benchmarks/export_big_spikformer.py --no-dynamo build/bench/spikformer_big_ts.onnx
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn


class _Heaviside(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        sg = torch.sigmoid(4.0 * x)
        return grad * 4.0 * sg * (1.0 - sg)


class HeavisideSurrogate(nn.Module):
    """A surrogate SpikingJelly does not know, so its LIF runs as an exportable Torch loop."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _Heaviside.apply(x)


def build(
    depth: int, dim: int, heads: int, T: int, img: int, in_channels: int, user_surrogate: bool,
    patch: int = 4,
) -> nn.Module:
    """The SpikingJelly Spikformer in eval mode with seeded weights and non-trivial BN stats."""
    from spikingjelly.activation_based import neuron
    from spikingjelly.activation_based.model.spikformer import Spikformer

    torch.manual_seed(0)
    model = Spikformer(
        T=T,
        in_channels=in_channels,
        img_size_h=img,
        img_size_w=img,
        patch_size=patch,
        num_classes=10,
        embed_dims=dim,
        num_heads=heads,
        depths=depth,
    )
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.normal_(0.0, 0.05, generator=g)
                m.running_var.uniform_(0.5, 1.5, generator=g)
                m.weight.uniform_(0.8, 1.6, generator=g)
                m.bias.uniform_(0.2, 0.8, generator=g)
            elif user_surrogate and isinstance(m, neuron.LIFNode):
                m.surrogate_function = HeavisideSurrogate()
    return model.eval()


def export(model: nn.Module, x: torch.Tensor, out: Path, dynamo: bool) -> None:
    from spikingjelly.activation_based import functional

    out.parent.mkdir(parents=True, exist_ok=True)
    functional.reset_net(model)
    with torch.no_grad(), warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        if dynamo:
            torch.onnx.export(model, (x,), str(out), dynamo=True)
        else:
            torch.onnx.export(model, (x,), str(out), dynamo=False, opset_version=17)
    functional.reset_net(model)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="output .onnx path")
    ap.add_argument("--no-dynamo", action="store_true", help="TorchScript exporter, opset 17")
    ap.add_argument("--depth", type=int, default=2)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--heads", type=int, default=16)
    ap.add_argument("--T", type=int, default=16)
    ap.add_argument("--img", type=int, default=32)
    ap.add_argument("--in-channels", type=int, default=2)
    ap.add_argument("--patch", type=int, default=4, choices=(4, 16))
    ap.add_argument("--paper", action="store_true", help="the paper's configuration (overrides the sizes)")
    ap.add_argument("--calibrate", action="store_true",
                    help="set BatchNorm so that every neuron fires 12-45 %% on spike inputs (tests/support/zoo.py's calibration; on with --paper)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = ap.parse_args(argv)

    import onnx

    torch.set_num_threads(args.threads)
    dynamo = not args.no_dynamo
    if args.paper:
        args.depth, args.dim, args.heads, args.T, args.img, args.in_channels, args.patch = 2, 256, 16, 16, 128, 2, 16
    model = build(args.depth, args.dim, args.heads, args.T, args.img, args.in_channels, not dynamo, args.patch)
    g = torch.Generator().manual_seed(0)
    shape = (args.T, 1, args.in_channels, args.img, args.img)
    x = (torch.rand(shape, generator=g) < 0.3).float()
    if args.calibrate or args.paper:  # a model whose neurons never fire tests nothing
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from tests.support.zoo import _calibrate_firing, _sj_lif_params

        calib = (torch.rand((args.T, 2, *shape[2:]), generator=g) < 0.15).numpy().astype("float32")
        t0 = time.perf_counter()
        actions = _calibrate_firing(model, calib, _sj_lif_params, args.T, seed=0)
        print(f"calibrated {len(actions)} neurons in {time.perf_counter() - t0:.0f} s")
    t0 = time.perf_counter()
    export(model, x, args.out, dynamo)
    seconds = time.perf_counter() - t0
    nodes = len(onnx.load(str(args.out), load_external_data=False).graph.node)
    exporter = "dynamo" if dynamo else "torchscript"
    params = sum(p.numel() for p in model.parameters())
    print(f"{args.out}: {nodes} nodes ({exporter}, input {list(shape)}, {params} parameters, export {seconds:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
