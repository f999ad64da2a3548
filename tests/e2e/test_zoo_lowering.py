"""Every zoo model × exporter lowers and verifies: SpikingJelly 2.0's own transformers and
CNNs, snnTorch nets with spike-count and membrane readouts, the hand-written and example
models (tests/support/zoo.py, neurons calibrated to fire), each through `hqc lower` with a plan
that uses all five quantizers and `hqc verify` on random event inputs drawn like the
model's example input: numpy reference = onnxruntime = C on every sample, and the integer
model predicts the fake-quant float model's class (the default suite: 32 samples, at most
one differing; `-m slow`: 100 samples, ≥ 99 %). benchmarks/zoo_lowering_table.py writes
the same runs as the table of docs/lowering.md."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from hqc.lowerdir import lower_model
from hqc.pipeline import run_frontend
from hqc.verification import verify_dir
from tests.support import REPO
from tests.support.zoo import all_models, family_models, model_id

sys.path.insert(0, str(REPO / "benchmarks"))
from zoo_lowering_table import MIXED, _samples  # noqa: E402

MODELS = all_models() + family_models()
IDS = [model_id(b, k) for b, k in MODELS]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _lower_and_verify(zm, tmp: Path, samples: int):
    fe = run_frontend(zm.onnx_path)
    plan = {layer.name: MIXED[i % len(MIXED)] for i, layer in enumerate(fe.layers)}
    assert {plan[layer.name] for layer in fe.layers} == set(MIXED) or len(fe.layers) < len(MIXED)
    x = _samples(zm, samples, seed=11)
    y = np.random.default_rng(12).integers(0, 10, size=len(x))
    data = tmp / "events.npz"
    np.savez(data, x=x, y=y, x_val=x, y_val=y)
    r = lower_model(zm.onnx_path, plan, tmp / "low", data=data)
    assert r.doc["totals"]["layers"] == len(fe.layers)
    assert len(r.doc["neurons"]) == len(zm.neurons)
    return verify_dir(tmp / "low", data, "val")


@pytest.mark.parametrize(("builder", "kwargs"), MODELS, ids=IDS)
def test_zoo_model_lowers_and_verifies(zoo_build, tmp_path, builder, kwargs):
    zm = zoo_build(builder, kwargs)
    v = _lower_and_verify(zm, tmp_path, 32)
    assert v.agree == {"onnxruntime": v.samples, "c": v.samples}, v.agree
    assert v.float_vs_int_predictions >= v.samples - 1, (v.float_vs_int_predictions, v.spike_agreement)
    assert v.spike_agreement >= 0.99, v.spike_agreement


@pytest.mark.slow
@pytest.mark.parametrize(("builder", "kwargs"), MODELS, ids=IDS)
def test_zoo_model_agrees_with_fake_quant_on_100_samples(zoo_build, tmp_path, builder, kwargs):
    zm = zoo_build(builder, kwargs)
    v = _lower_and_verify(zm, tmp_path, 100)
    assert v.identical
    assert v.float_vs_int_predictions >= 99, (v.float_vs_int_predictions, v.spike_agreement)
