"""Export a trained example Spikformer checkpoint to ONNX (batch 1).

    python examples/spikformer/export.py --ckpt runs/ndigits.pt --out examples/ndigits/spikformer.onnx

``--dynamo`` (default) uses torch's dynamo exporter (opset 20 in torch 2.13), whose
weights land in ``<out>.data``; they are folded back in so that the model is one
self-contained file. Its per-node metadata (the torch module of each node, which hqc
uses to name layers) is kept unless ``--strip-metadata``. ``--no-dynamo`` uses the
TorchScript exporter (``--opset``, default 17). The exported model is checked against
torch with onnxruntime on random events.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from model import Spikformer, SpikformerConfig  # noqa: E402


def load_checkpoint(path: str | Path) -> Spikformer:
    """Rebuild the model of a ``train.py`` checkpoint, in eval mode."""
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    model = Spikformer(SpikformerConfig(**ckpt["config"]))
    model.load_state_dict(ckpt["state_dict"])
    return model.eval()


def export(
    model: Spikformer,
    out: str | Path,
    dynamo: bool = True,
    opset: int | None = None,
    strip_metadata: bool = False,
) -> onnx.ModelProto:
    """Export ``model`` at batch 1 to the single file ``out``; returns the saved proto."""
    cfg = model.config
    x = torch.zeros(1, cfg.T, cfg.in_channels, cfg.img_size, cfg.img_size)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "model.onnx"
        kwargs: dict = {"input_names": ["x"], "output_names": ["logits"], "dynamo": dynamo}
        if opset is not None or not dynamo:
            kwargs["opset_version"] = opset or 17
        with torch.no_grad():
            torch.onnx.export(model, (x,), str(raw), **kwargs)
        proto = onnx.load(str(raw))  # pulls in model.onnx.data, if any
    if strip_metadata:
        for node in proto.graph.node:
            del node.metadata_props[:]
    onnx.checker.check_model(proto)
    onnx.save_model(proto, str(out), save_as_external_data=False)
    return proto


def check_against_torch(model: Spikformer, path: str | Path, n: int = 4, seed: int = 0) -> float:
    """Largest |torch - onnxruntime| logit difference on ``n`` random event samples."""
    import onnxruntime as ort

    cfg = model.config
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    gen = torch.Generator().manual_seed(seed)
    worst = 0.0
    for _ in range(n):
        x = torch.poisson(
            torch.full((1, cfg.T, cfg.in_channels, cfg.img_size, cfg.img_size), 0.5), gen
        )
        with torch.no_grad():
            ref = model(x).numpy()
        got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
        worst = max(worst, float(np.abs(got - ref).max()))
    return worst


def main(argv: list[str] | None = None) -> None:
    """Command line entry point."""
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--ckpt", required=True)
    p.add_argument("--out", default="model.onnx")
    p.add_argument("--dynamo", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--opset", type=int, default=None)
    p.add_argument("--strip-metadata", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    model = load_checkpoint(args.ckpt)
    proto = export(model, args.out, args.dynamo, args.opset, args.strip_metadata)
    diff = check_against_torch(model, args.out)
    size_kb = Path(args.out).stat().st_size / 1024
    opset = max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
    print(
        f"wrote {args.out}: {size_kb:.0f} KiB, {len(proto.graph.node)} nodes, opset {opset}, "
        f"max |torch - onnxruntime| = {diff:.2e}"
    )


if __name__ == "__main__":
    main()
