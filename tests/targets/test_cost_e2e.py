"""`hqc cost` end to end on the example Spikformer (a real export through the frontend):
the fp32 and pot2 totals, their ratio (the model's bound on energy reduction), and the
spike-aware estimate with firing rates measured on data."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from hqc.choices import parse_choice
from hqc.cli import main
from hqc.pipeline import load_and_analyze, measure_firing_rates
from hqc.targets import layer_cost, load_target
from tests.support.zoo import example_spikformer


@pytest.fixture(scope="module")
def spikformer(zoo_build):
    return zoo_build(example_spikformer, {"dynamo": True})


def _cost(path, *args):
    res = CliRunner().invoke(main, ["cost", str(path), "--target", "cmos45", *args, "--json"])
    assert res.exit_code == 0, res.stderr
    return json.loads(res.stdout)


def test_all_fp32_vs_all_pot2_ratio_is_the_bound(spikformer):
    fp32 = _cost(spikformer.onnx_path, "--all", "fp32")
    pot2 = _cost(spikformer.onnx_path, "--all", "pot2")
    assert fp32["ratios"]["energy_total_pj"] == pytest.approx(1.0)
    bound = pot2["total"]["energy_total_pj"] / fp32["total"]["energy_total_pj"]
    assert pot2["ratios"]["energy_total_pj"] == pytest.approx(bound, rel=1e-12)
    assert pot2["ratios"]["storage_bits"] == pytest.approx(2 / 32)
    # each layer's figure is the cost model's for its choice
    _, layers = load_and_analyze(str(spikformer.onnx_path))
    target = load_target("cmos45")
    for row, layer in zip(pot2["layers"], layers, strict=True):
        want = layer_cost(layer, parse_choice("pot2"), target)
        assert row["energy_total_pj"] == pytest.approx(want.energy_total_pj, rel=1e-12)
    assert sum(r["energy_total_pj"] for r in pot2["layers"]) == pytest.approx(pot2["total"]["energy_total_pj"])


def test_spike_aware_estimate_uses_measured_firing_rates(spikformer, tmp_path):
    graph, layers = load_and_analyze(str(spikformer.onnx_path))
    rng = np.random.default_rng(0)
    x = (rng.random((12, 4, 2, 32, 32)) < 0.3).astype(np.float32)
    data = tmp_path / "d.npz"
    np.savez(data, x=x, y=rng.integers(0, 10, 12))
    doc = _cost(spikformer.onnx_path, "--all", "uni4", "--data", str(data))
    rates = measure_firing_rates(graph, layers, str(data), split="train")
    assert doc["spike_aware_available"] is True
    for row in doc["layers"]:
        if row["input_kind"] == "spikes":
            assert row["firing_rate"] == pytest.approx(rates[row["name"]])
            assert 0.0 <= row["firing_rate"] <= 1.0
    assert doc["total"]["spike_energy_total_pj"] < doc["total"]["energy_total_pj"]
