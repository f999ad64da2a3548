"""Verification of a lowering folder against its data.

    verify_dir(DIR, data) → agreement of the numpy reference, onnxruntime (model.int.onnx)
        and the compiled C kernels on every sample (identical integer logits), the
        integer model's accuracy, the fake-quant float model's accuracy and the fraction
        of identical spikes between the two.

The commands `hqc verify` and `hqc compile` call it.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hqc.choices import parse_choice
from hqc.errors import ConfigError, DataError, ModelError
from hqc.lowerdir import (
    INT_ONNX,
    KERNELS,
    LOWERED_IR,
    fake_quant_model,
    integer_inputs,
    lowered_source,
    read_lowering_doc,
)


def to_groups(x: np.ndarray, layout: str, input_shape: Sequence[int]) -> np.ndarray:
    """Samples (N, T, ...) → model inputs (G, *input_shape), padded with copies of sample 0."""
    lay = layout.upper()
    b0 = int(input_shape[lay.index("B")]) if "B" in lay else 1
    n = x.shape[0]
    pad = (-n) % b0
    if pad:
        x = np.concatenate([x, np.repeat(x[:1], pad, axis=0)])
    g = x.reshape((-1, b0) + x.shape[1:])
    if lay.startswith("TB"):
        g = np.swapaxes(g, 1, 2)
    if tuple(g.shape[1:]) != tuple(input_shape):
        raise DataError(f"data samples of shape {list(x.shape[1:])} do not fit the model input {list(input_shape)}")
    return g


def per_sample(logits: np.ndarray, n: int) -> np.ndarray:
    """(G, B0, C) logits → (N, C): one row per sample, the padding dropped."""
    if logits.ndim != 3:
        raise ModelError(f"logits of shape {list(logits.shape[1:])} per model input; expected (batch, classes)")
    return logits.reshape(-1, logits.shape[-1])[:n]


@dataclass
class VerifyResult:
    """Per backend: logits identical to the numpy reference (count of samples)."""

    samples: int
    split: str
    agree: dict[str, int] = field(default_factory=dict)
    accuracy_int: float = 0.0
    accuracy_float: float | None = None
    float_vs_int_predictions: int | None = None
    spike_agreement: float | None = None
    spikes_compared: int = 0
    input_range: tuple[int, int] = (0, 0)

    @property
    def identical(self) -> bool:
        return all(v == self.samples for v in self.agree.values())

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["identical"] = self.identical
        return d


def verify_dir(
    directory: str | Path,
    data: str | Path,
    split: str = "val",
    limit: int | None = None,
    backends: Sequence[str] = ("onnxruntime", "c"),
    float_model: bool = True,
    chunk: int = 32,
    dataset: Any = None,
    frontend: Any = None,
) -> VerifyResult:
    """A lowering folder + data → agreement of the numpy reference with onnxruntime and the
    compiled C kernels, the integer accuracy and (float_model) the fake-quant float model's
    accuracy and spike agreement.

    Pre: DIR written by `lower_model`; the data split exists and holds integer-valued inputs
    within the lowered input range. Post: nothing in DIR changes (C is built in a temporary
    copy). `dataset` (`data` loaded) and `frontend` (the lowered float model, imported)
    reuse what `hqc compile` already has in memory.
    """
    from hqc import ckernels, int_onnx, intref
    from hqc.data import load_data

    d = Path(directory)
    doc = read_lowering_doc(d)
    g = intref.load_lowered(d / LOWERED_IR)
    from hqc.intops import check_lowered

    check_lowered(g)
    ds = dataset if dataset is not None else load_data(data)
    sp = ds.split(split)
    x, y = sp.x, sp.y
    if limit is not None:
        if limit < 1:
            raise ConfigError(f"--limit must be ≥ 1, got {limit}")
        x, y = x[:limit], y[:limit]
    lo, hi = integer_inputs(x, f"{data}:{split}")
    rlo, rhi = doc["input"]["range"]
    if lo < rlo or hi > rhi:
        raise DataError(f"{data}:{split}: inputs span {lo}..{hi}, outside the lowered input range {rlo}..{rhi}")
    shape = tuple(doc["input"]["shape"])
    groups = to_groups(x, doc["input_layout"], shape)
    n = len(y)
    res = VerifyResult(samples=n, split=split, input_range=(lo, hi))
    fl = _FloatSide(doc, x, groups, d, frontend) if float_model else None
    ref_chunks = []
    for i in range(0, len(groups), chunk):  # one reference run gives the logits and the spikes
        outs = intref.run(g, groups[i: i + chunk], names=[g.outputs[0]] + (fl.lowered if fl else []))
        ref_chunks.append(outs[0])
        if fl is not None:
            fl.step(i, chunk, outs[1:])
    ref = np.concatenate(ref_chunks)
    ref_s = per_sample(ref, n)
    if "onnxruntime" in backends:
        sess = int_onnx.session(str(d / INT_ONNX))
        ort = per_sample(int_onnx.run_ort(sess, groups), n)
        res.agree["onnxruntime"] = int(np.all(ort == ref_s, axis=1).sum())
    if "c" in backends:
        with tempfile.TemporaryDirectory(prefix="hqc-verify-") as tmp:
            kd = Path(tmp) / KERNELS
            shutil.copytree(d / KERNELS, kd)
            exe = ckernels.build(kd)
            c = ckernels.run_binary(exe, groups, int(np.prod(ref.shape[1:])))
        res.agree["c"] = int(np.all(per_sample(c.reshape(ref.shape), n) == ref_s, axis=1).sum())
    pred_int = ref_s.argmax(axis=1)
    res.accuracy_int = float((pred_int == y).mean())
    if fl is not None:
        fl.finish(pred_int, y, res)
    return res


class _FloatSide:
    """The fake-quant float model of a lowering folder, run chunk by chunk beside the
    integer reference: its predictions and its spikes against the integer model's."""

    def __init__(self, doc: dict[str, Any], x: np.ndarray, groups: np.ndarray, directory: Path,
                 frontend: Any = None) -> None:
        from hqc.pipeline import run_frontend

        if frontend is not None:
            fe = frontend
        else:
            mpath = lowered_source(doc, directory, "run the fake-quant float model")
            fe = run_frontend(mpath, doc["input_layout"])
        plan = {k: parse_choice(v) for k, v in doc["plan"]["layers"].items()}
        if doc.get("scales"):  # the learned scales the lowering used
            from hqc.lowering.weights import LEARNED_SCALES_META
            from hqc.quant import load_scales

            try:
                fe.graph.meta[LEARNED_SCALES_META] = load_scales(directory / doc["scales"]["file"])
            except ValueError as exc:
                raise ConfigError(str(exc)) from None
        self.model = fake_quant_model(fe.graph, fe.layers, plan, doc["input_layout"])
        neurons = [(nr["tensor"], nr["lowered_tensor"]) for nr in doc["neurons"]]
        self.names = [fe.graph.outputs[0]] + [t for t, _ in neurons]
        self.lowered = [lt for _, lt in neurons]
        self.b0 = groups.shape[1] if doc["input_layout"].startswith("B") else groups.shape[2]
        pad = len(groups) * self.b0 - len(x)
        self.x = np.concatenate([x, np.repeat(x[:1], pad, axis=0)]) if pad else x
        self.preds: list[np.ndarray] = []
        self.same = self.total = 0

    def step(self, i: int, chunk: int, ints: list[np.ndarray]) -> None:
        import torch

        b0 = self.b0
        xs = torch.from_numpy(np.ascontiguousarray(self.x[i * b0: (i + chunk) * b0], dtype=np.float32))
        with torch.no_grad():
            outs = self.model.forward_all(xs, names=self.names)
        self.preds.append(self.model.scores(outs[0], grouped=True).numpy())
        for fo, io in zip(outs[1:], ints, strict=True):
            fo = fo.numpy()
            self.same += int((fo == io[: fo.shape[0]]).sum())
            self.total += fo.size

    def finish(self, pred_int: np.ndarray, y: np.ndarray, res: VerifyResult) -> None:
        pred_f = np.concatenate(self.preds)[: len(y)].argmax(axis=1)
        res.accuracy_float = float((pred_f == y).mean())
        res.float_vs_int_predictions = int((pred_f == pred_int).sum())
        res.spike_agreement = self.same / self.total if self.total else None
        res.spikes_compared = self.total
