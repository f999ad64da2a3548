"""Accuracy of an ONNX classifier on a split of an event dataset, with onnxruntime.

    python examples/spikformer/evaluate.py --model examples/ndigits/spikformer.onnx \
        --data examples/ndigits/ndigits.npz --split test

Samples are run one at a time when the model's batch dimension is fixed (the exported
examples are batch 1), else in batches.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

__all__ = ["SPLIT_KEYS", "load_split", "onnx_predict", "onnx_accuracy", "main"]

SPLIT_KEYS = {"train": ("x", "y"), "val": ("x_val", "y_val"), "test": ("x_test", "y_test")}


def load_split(
    path: str | Path, split: str, limit: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Events (float32) and labels of one split of an NPZ, optionally its first ``limit``."""
    xk, yk = SPLIT_KEYS[split]
    with np.load(path, allow_pickle=False) as f:
        x, y = f[xk][:limit], f[yk][:limit]
    return x.astype(np.float32), y.astype(np.int64)


def onnx_predict(model: str | Path, x: np.ndarray, batch: int = 64) -> np.ndarray:
    """Logits of the ONNX ``model`` for inputs ``x`` (float32, shaped as the model input)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    fixed = isinstance(inp.shape[0], int)
    step = inp.shape[0] if fixed else batch
    if fixed and len(x) % step:
        raise ValueError(f"model batch is fixed at {step}; {len(x)} samples do not divide")
    outs = [sess.run(None, {inp.name: x[i : i + step]})[0] for i in range(0, len(x), step)]
    return np.concatenate(outs)


def onnx_accuracy(model: str | Path, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy of the ONNX ``model`` on ``(x, y)``."""
    return float((onnx_predict(model, x).argmax(1) == y).mean())


def main(argv: list[str] | None = None) -> None:
    """Command line entry point."""
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--split", choices=sorted(SPLIT_KEYS), default="test")
    p.add_argument("--limit", type=int, default=None)
    args = p.parse_args(argv)
    x, y = load_split(args.data, args.split, args.limit)
    t0 = time.time()
    acc = onnx_accuracy(args.model, x, y)
    print(
        f"{args.model} on {args.data} [{args.split}, {len(y)} samples]: "
        f"accuracy {acc:.4f} ({time.time() - t0:.1f}s)"
    )


if __name__ == "__main__":
    main()
