"""The shipped trained examples, lowered with a hand-written mixed plan (all five
quantizers) and verified on their full validation sets: the numpy reference,
onnxruntime and the C kernels give identical integer logits on every sample, and the
integer model's accuracy is within 0.5 point of the fake-quant float model's. Slow."""

from __future__ import annotations

import pytest

from hqc.lowerdir import lower_model
from hqc.pipeline import run_frontend
from hqc.verification import verify_dir
from tests.support import REPO
from tests.support.lowering import MIXED

EXAMPLES = ["ndigits", "motion"]


def mixed_plan_for(layers) -> dict[str, str]:
    """The report's hand-written plan: the first layer (event counts) and the head at 4
    bits, the rest cycling through all five quantizers."""
    plan = {layer.name: MIXED[i % len(MIXED)] for i, layer in enumerate(layers)}
    plan[layers[0].name] = "uni4"
    plan[layers[-1].name] = "uni4"
    return plan


@pytest.mark.slow
@pytest.mark.parametrize("name", EXAMPLES)
def test_shipped_example_full_validation(name, tmp_path):
    model = REPO / "examples" / name / "spikformer.onnx"
    data = REPO / "examples" / name / f"{name}.npz"
    if not model.is_file() or not data.is_file():
        pytest.skip(f"{model} not shipped yet")
    fe = run_frontend(model)
    plan = mixed_plan_for(fe.layers)
    assert set(plan.values()) == set(MIXED)
    r = lower_model(model, plan, tmp_path / name, data=data, frontend=fe)
    assert r.doc["input"]["check"]["integer_valued"]
    v = verify_dir(tmp_path / name, data, "val")
    assert v.identical, v.agree
    assert abs(v.accuracy_int - v.accuracy_float) <= 0.005 + 1e-12, v.to_dict()
