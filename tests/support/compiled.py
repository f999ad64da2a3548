"""Checks of an `hqc compile` folder against references computed here, not read back from
the folder: the integer accuracy by onnxruntime on model.int.onnx, the energy by
`hqc cost` on the emitted plan, the storage from lowering.json's packed weights, the
choices from plan.yaml. Used by the compile tests of the tiny model and of the zoo."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
import yaml

from tests.support.cli import run_cli


def split_of(data: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of an NPZ split, read with numpy alone."""
    with np.load(data) as z:
        return (z["x"], z["y"]) if split == "train" else (z[f"x_{split}"], z[f"y_{split}"])


def onnx_accuracy(model: Path, x: np.ndarray, y: np.ndarray, layout: str, dtype: type) -> float:
    """Top-1 accuracy of an ONNX model under onnxruntime on samples x (N, T, …): each run's
    batch slots hold consecutive samples, placed as `layout` (BT… or TB…) says; the last
    run is padded with copies of the first sample and those rows dropped."""
    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    layout = layout.upper()
    b0 = int(inp.shape[layout.index("B")])
    preds = []
    for i in range(0, len(x), b0):
        chunk = x[i:i + b0]
        k = len(chunk)
        chunk = np.concatenate([chunk, np.repeat(x[:1], b0 - k, axis=0)])  # (B0, T, …)
        feed = np.swapaxes(chunk, 0, 1) if layout.startswith("TB") else chunk
        logits = sess.run(None, {inp.name: np.ascontiguousarray(feed, dtype=dtype)})[0]
        preds.append(logits.reshape(b0, -1).argmax(axis=1)[:k])
    pred = np.concatenate(preds)
    assert pred.shape == y.shape
    return float((pred == y).mean())


def int_model_accuracy(out: Path, x: np.ndarray, y: np.ndarray) -> float:
    """out/model.int.onnx's accuracy (onnxruntime), laid out as lowering.json says."""
    layout = json.loads((out / "lowering.json").read_text())["input_layout"]
    return onnx_accuracy(out / "model.int.onnx", x, y, layout, np.int64)


def check_compile_folder(out: Path, model: Path, data: Path) -> dict[str, Any]:
    """The numbers of report.json against the references above; returns the report."""
    rep = json.loads((out / "report.json").read_text())
    plan = yaml.safe_load((out / "plan.yaml").read_text())
    low = json.loads((out / "lowering.json").read_text())

    # the integer accuracy is onnxruntime's on the emitted model, on the report's split
    x, y = split_of(data, rep["accuracy"]["split"])
    assert (rep["accuracy"]["integer"], rep["accuracy"]["samples"]) == (int_model_accuracy(out, x, y), len(y))

    # plan.yaml's choices are the report's and the lowering's, layer by layer
    choices = {name: e["choice"] for name, e in plan["layers"].items()}
    assert {r["name"]: r["choice"] for r in rep["layers"]} == choices
    assert {r["name"]: r["quantizer"] for r in low["layers"]} == choices

    # energy and storage are `hqc cost`'s on the emitted plan
    code, stdout, err = run_cli("cost", model, "--target", rep["target"]["name"], "--plan", out / "plan.yaml",
                                "--json")
    assert code == 0, err
    cost = json.loads(stdout)
    for key in ("energy_total_pj", "energy_compute_pj", "energy_memory_pj", "storage_bits", "macs", "params"):
        assert rep["total"][key] == pytest.approx(cost["total"][key], rel=1e-12), key
        assert rep["baseline_fp32"][key] == pytest.approx(cost["baseline_fp32"]["total"][key], rel=1e-12), key
    assert rep["ratios"]["energy_total_pj"] == pytest.approx(cost["ratios"]["energy_total_pj"], rel=1e-12)
    assert plan["energy"]["ratio"] == pytest.approx(cost["ratios"]["energy_total_pj"], abs=5e-7)  # 6 digits
    by_name = {r["name"]: r for r in cost["layers"]}
    for r in rep["layers"]:
        assert r["energy_total_pj"] == pytest.approx(by_name[r["name"]]["energy_total_pj"], rel=1e-12), r["name"]

    # storage is the packed weights the lowering wrote: per layer and in total
    packed = {r["name"]: r["packed_bytes"] for r in low["layers"]}
    assert {r["name"]: r["storage_bits"] for r in rep["layers"]} == {k: 8 * v for k, v in packed.items()}
    assert rep["total"]["storage_bits"] == 8 * sum(packed.values()) == 8 * low["totals"]["packed_weight_bytes"]
    return rep
