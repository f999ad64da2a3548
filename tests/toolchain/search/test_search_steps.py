"""The search and the fine-tune as two calls: `search_plan` stops at the plan (no
fine-tune epoch, no file), `finetune_plan` of it equals `run_search` with the same seed
(searched or given plan), and `hqc compile`'s search and finetune steps, which use the
graph of its insert-quant-choices step, give run_search's plan.yaml and weights."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
import yaml
from click.testing import CliRunner
from onnx import numpy_helper

from hqc.cli import main
from hqc.search import SearchConfig, finetune_plan, finish_plan, run_search, search_plan
from tests.support.data import TINY, make_data
from tests.support.zoo import example_spikformer

FAST = dict(epochs=2, finetune_epochs=1, batch_size=16, scale_refresh=4)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny(zoo_build):
    return zoo_build(example_spikformer, TINY).onnx_path


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_data(tmp_path_factory.mktemp("data") / "tiny.npz")


@pytest.fixture(scope="module")
def reference(tiny, data, tmp_path_factory):
    """One uninterrupted run_search (2 search epochs, 1 fine-tune epoch), on one thread
    as the tests (module scope: set up before `one_torch_thread`)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return run_search(tiny, data, out_dir=tmp_path_factory.mktemp("ref"), config=SearchConfig(**FAST))
    finally:
        torch.set_num_threads(n)


def _timeless(doc: dict) -> dict:
    doc = yaml.safe_load(yaml.safe_dump(doc))
    doc["search"].pop("seconds")
    return doc


def _weights_equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def _initializers(path) -> dict:
    return {t.name: numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer}


def test_search_plan_stops_at_the_plan(tiny, data, tmp_path, reference):
    events = []
    s = search_plan(tiny, data, out_dir=tmp_path, config=SearchConfig(**FAST),
                    progress=lambda kind, info: events.append((kind, info.get("phase"))))
    assert s.chosen == reference.plan
    assert round(s.search_acc, 6) == reference.document["accuracy"]["fake_quant_before_finetune"]
    assert {phase for _, phase in events} == {"search"}  # no fine-tune step or epoch
    assert [e for e in events if e[0] == "epoch"] == [("epoch", "search")] * 2
    assert (s.phase, s.done_epochs) == ("finetune", 0)
    assert not (tmp_path / "plan.yaml").exists() and not (tmp_path / "model.qat.onnx").exists()


def test_finetune_plan_of_the_search_equals_run_search(tiny, data, tmp_path, reference):
    res = finetune_plan(search_plan(tiny, data, out_dir=tmp_path, config=SearchConfig(**FAST)))
    assert res.plan == reference.plan
    assert _timeless(res.document) == _timeless(reference.document)
    assert res.expected_energy_ratio == reference.expected_energy_ratio
    _weights_equal(res.weights, reference.weights)
    _weights_equal(_initializers(res.qat_model_path), _initializers(reference.qat_model_path))


def test_finish_plan_without_finetune_equals_zero_finetune_epochs(tiny, data, tmp_path):
    cfg = {**FAST, "finetune_epochs": 0}
    ref = run_search(tiny, data, out_dir=tmp_path / "ref", config=SearchConfig(**cfg))
    res = finish_plan(search_plan(tiny, data, out_dir=tmp_path / "two", config=SearchConfig(**cfg)))
    assert _timeless(res.document) == _timeless(ref.document)
    _weights_equal(res.weights, ref.weights)


def test_finetune_of_a_given_plan_equals_run_search(tiny, data, tmp_path, reference):
    events = []
    s = search_plan(tiny, data, out_dir=tmp_path / "two", config=SearchConfig(**FAST),
                    plan=reference.plan_path, progress=lambda kind, info: events.append(kind))
    assert events == [] and s.chosen == reference.plan and s.search_acc is None
    res = finetune_plan(s)
    ref = run_search(tiny, data, out_dir=tmp_path / "ref", config=SearchConfig(**FAST), plan=reference.plan_path)
    assert res.document["epochs"] == 0 and res.document["source_plan"] == str(reference.plan_path)
    assert _timeless(res.document) == _timeless(ref.document)
    _weights_equal(res.weights, ref.weights)


def test_compile_search_and_finetune_steps_equal_run_search(tiny, data, tmp_path):
    """The compile's steps (the graph of its insert-quant-choices step, the data it
    loaded) give the standalone run_search's plan.yaml and fine-tuned weights."""
    out = tmp_path / "c"
    res = CliRunner().invoke(main, ["compile", str(tiny), "--data", str(data), "-o", str(out), "--epochs", "2",
                                    "--finetune-epochs", "1", "--batch-size", "16", "--no-progress",
                                    "--stop-after", "finetune"])
    assert res.exit_code == 0, res.output + (res.stderr or "")
    ref = run_search(tiny, data, out_dir=tmp_path / "ref", config=SearchConfig(epochs=2, finetune_epochs=1,
                                                                             batch_size=16))
    got = yaml.safe_load((out / "plan.yaml").read_text())
    assert _timeless(got) == _timeless(yaml.safe_load(ref.plan_path.read_text()))
    _weights_equal(_initializers(out / "model.qat.onnx"), _initializers(ref.qat_model_path))
    assert not (out / "search.ckpt").exists()
