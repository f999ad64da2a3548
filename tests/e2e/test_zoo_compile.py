"""`hqc compile` end to end on a model of every family the zoo has (SpikingJelly's own
transformers and CNNs, snnTorch with a membrane readout), both exporters: a 1-epoch search
and fine-tune on small random event data, then the lowering and its verification; the
folder is complete, numpy = onnxruntime = C on every verified sample, and the report's
integer accuracy is the verified one. The default suite runs one model per family; the
others run with `-m slow`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from hqc.cli import main
from tests.support import zoo
from tests.support.compiled import check_compile_folder
from tests.support.data import zoo_data

FAST = ["--epochs", "1", "--finetune-epochs", "1", "--batch-size", "16", "--no-progress"]
DEFAULT = [
    (zoo.sj_spike_driven_transformer, {"dynamo": True}),
    (zoo.sj_ms_resnet, {"dynamo": False, "variant": "ms"}),
    (zoo.snn_leaky_mem_convnet, {"dynamo": False, "reset": "subtract"}),
]
SLOW = [
    (zoo.sj_spike_driven_transformer, {"dynamo": False}),
    (zoo.sj_qkformer, {"dynamo": True}),
    (zoo.sj_qkformer, {"dynamo": False}),
    (zoo.sj_maxformer, {"dynamo": True, "cifar": False}),
    (zoo.sj_maxformer, {"dynamo": False, "cifar": True}),
    (zoo.sj_spikformer, {"dynamo": True, "T": 2, "calibration": "firing"}),
    (zoo.sj_sew_resnet, {"dynamo": True}),
    (zoo.sj_spiking_vgg, {"dynamo": True}),
    (zoo.snn_leaky_mem_convnet, {"dynamo": True, "reset": "zero"}),
    (zoo.snn_leaky_convnet, {"dynamo": True, "reset": "zero"}),
    (zoo.sj_ms_resnet, {"dynamo": True, "variant": "ms"}),
]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _compile(zm, tmp: Path) -> tuple[Path, Path]:
    data = zoo_data(zm, tmp / "events.npz")
    out = tmp / "out"
    res = CliRunner().invoke(main, ["compile", str(zm.onnx_path), "--data", str(data), "-o", str(out), *FAST])
    assert res.exit_code == 0, res.stderr + res.stdout
    return out, data


def _check(out: Path, data: Path, zm) -> None:
    """The folder is complete and every backend agrees; the report's numbers are recomputed
    (tests/support/compiled.py: onnxruntime's integer accuracy, `hqc cost` on plan.yaml,
    the packed weight bytes, plan.yaml's choices)."""
    names = {p.name for p in out.iterdir()}
    for want in ("plan.yaml", "model.qat.onnx", "model.int.onnx", "kernels", "report.json", "report.md",
                 "report.html", "verify.json", "lowering.json", "lowered.onnx"):
        assert want in names, names
    verify = json.loads((out / "verify.json").read_text())
    assert verify["agree"] == {"onnxruntime": verify["samples"], "c": verify["samples"]} and verify["samples"] == 24
    rep = check_compile_folder(out, zm.onnx_path, data)
    assert rep["accuracy"]["integer"] == pytest.approx(verify["accuracy_int"])
    low = json.loads((out / "lowering.json").read_text())
    assert len(low["layers"]) == len(zm.layers) and len(low["neurons"]) == len(zm.neurons)
    assert {r["quantizer"] for r in low["layers"]} <= {"fp32", "uni2", "uni4", "pot2", "pot4"}


@pytest.mark.parametrize(("builder", "kwargs"), DEFAULT, ids=[zoo.model_id(b, k) for b, k in DEFAULT])
def test_compile_one_model_per_family(zoo_build, tmp_path, builder, kwargs):
    zm = zoo_build(builder, kwargs)
    _check(*_compile(zm, tmp_path), zm)


@pytest.mark.slow
@pytest.mark.parametrize(("builder", "kwargs"), SLOW, ids=[zoo.model_id(b, k) for b, k in SLOW])
def test_compile_every_family_model(zoo_build, tmp_path, builder, kwargs):
    zm = zoo_build(builder, kwargs)
    _check(*_compile(zm, tmp_path), zm)
