"""Full accounting (hqc.targets.full): the non-weight ops against a hand count of a tiny
Spikformer, the deployed storage against the object file gcc makes of the emitted C,
proven widths against the lowering's integer ranges, firing rates of the deployed model
against the fake-quant model, and `hqc cost`'s headline unchanged on the shipped example."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
import torch
import yaml
from click.testing import CliRunner
from pytest import approx

from hqc.choices import parse_choice
from hqc.cli import main
from hqc.errors import ConfigError, ModelError
from hqc.lowerdir import fake_quant_model, lower
from hqc.pipeline import run_frontend
from hqc.targets import load_target, model_cost
from hqc.targets.full import (
    DeployedModel,
    c_constants,
    count_ops,
    deployed_firing_rates,
    full_cost,
)
from tests.support import NDIGITS_MODEL as EXAMPLE
from tests.support.lowering import events
from tests.support.zoo import example_spikformer

TINY = dict(dynamo=False, depth=1, dim=32, heads=2, T=2, img=16)
T, DIM, HEADS, N = 2, 32, 2, 16  # img 16, patch 4: 4 x 4 tokens


@pytest.fixture(scope="module")
def tiny(zoo_build):
    zm = zoo_build(example_spikformer, TINY)
    fe = run_frontend(str(zm.onnx_path))
    plan = {layer.name: parse_choice("uni4") for layer in fe.layers}
    low = lower(zm.onnx_path, plan)
    return zm, fe, plan, low


def _by_kind(ops, kind):
    return [o for o in ops if o.kind == kind]


def test_counts_match_hand_computation(tiny):
    _, fe, _, _ = tiny
    ops = count_ops(fe.graph)
    # SSA: q·k^T and (q·k^T)·v, each T · heads · N · N · (DIM / heads) products
    mm = _by_kind(ops, "attention_matmul")
    assert [o.count for o in mm] == [T * N * N * DIM] * 2
    assert [o.operands for o in mm] == ["spikes x spikes", "integers x spikes"]  # the scale is folded
    # neurons · T: SPS 4·16², 8·16², 16·16², 32·8² (then pooled to 4²), rpe 32·4²;
    # the block: q, k, v, attn, proj on 32·16, fc1 on 128·16, fc2 on 32·16
    neurons = [4 * 256, 8 * 256, 16 * 256, 32 * 64, 32 * 16] + [32 * 16] * 5 + [128 * 16, 32 * 16]
    lif = _by_kind(ops, "lif")
    assert sorted(o.count for o in lif) == sorted(T * n for n in neurons)
    assert {(o.tau, o.reset) for o in lif} == {(2.0, "hard")}
    # x + x_feat after the rpe, the attention and the MLP residuals: DIM · N · T each
    add = _by_kind(ops, "residual_add")
    assert [o.count for o in add] == [DIM * N * T] * 3


def test_paper_width_energies_by_hand(tiny):
    _, fe, plan, _ = tiny
    t = load_target("cmos45")
    cost = model_cost(fe.layers, plan, t)
    full = full_cost(fe.graph, fe.layers, cost, plan, t)
    mm, lif, add = (full.by_kind[k] for k in ("attention_matmul", "lif", "residual_add"))
    # spike operands: one int32 add (0.1 pJ) per product; fp32: 3.7 + 0.9
    assert mm["energy_pj"] == approx(2 * T * N * N * DIM * 0.1, rel=1e-12)
    assert mm["fp32_energy_pj"] == approx(2 * T * N * N * DIM * 4.6, rel=1e-12)
    # τ = 2, hard reset: shift 32 (0.024 · 4) + 2 adds + compare (= add) per neuron-step
    steps = lif["count"]
    assert lif["energy_pj"] == approx(steps * (0.096 + 0.1 + 0.1 + 0.1), rel=1e-12)
    assert lif["fp32_energy_pj"] == approx(steps * (3.7 + 0.9 + 0.9), rel=1e-12)
    assert add["energy_pj"] == approx(3 * DIM * N * T * 0.1, rel=1e-12)
    assert "int.compare.32 (as int.add.32)" in full.derived
    # the headline is the paper model's; the full total adds the non-weight ops
    assert full.weights_energy_pj == cost.total.energy_total_pj
    nw = mm["energy_pj"] + lif["energy_pj"] + add["energy_pj"]
    assert full.energy_total_pj == approx(cost.total.energy_total_pj + nw, rel=1e-12)
    fp = cost.baseline_total.energy_total_pj + mm["fp32_energy_pj"] + lif["fp32_energy_pj"] + add["fp32_energy_pj"]
    assert full.ratios["energy_total_pj"] == approx(full.energy_total_pj / fp, rel=1e-12)
    assert full.storage is None and full.spike_energy_total_pj is None


def test_proven_widths_are_the_lowerings_bounds(tiny):
    _, fe, plan, low = tiny
    t = load_target("cmos45")
    dep = DeployedModel.from_lowering(low)
    cost = model_cost(fe.layers, plan, t)
    full = full_cost(fe.graph, fe.layers, cost, plan, t, dep, "proven")
    ranges = {r["node"]: r["bits"] for r in low.doc["integer_ranges"] if r["node"]}
    weight_nodes = {n.attrs["layer"]: n.name for n in low.lowered.graph.nodes() if n.op in ("QConv", "QLinear")}
    assert full.accumulator_bits == {layer: ranges[node] for layer, node in weight_nodes.items()}
    mem = {n["name"]: n["membrane_bits"] for n in low.doc["neurons"]}
    for o in full.ops:
        if o.kind == "lif":
            assert o.bits == mem[o.node]
    # weight layers re-priced: macs · (E_add(acc) − E_add(32)) per layer
    delta = sum(layer.macs * (t.op_energy("int", "add", full.accumulator_bits[layer.name]).energy_pj - 0.1)
                for layer in fe.layers)
    assert full.weights_energy_pj == approx(cost.total.energy_total_pj + delta, rel=1e-9)
    with pytest.raises(ModelError, match="proven accumulator widths need a lowering"):
        full_cost(fe.graph, fe.layers, cost, plan, t, None, "proven")


@pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("nm") is None, reason="needs gcc and nm")
def test_deployed_storage_equals_the_compiled_constants(tiny, tmp_path):
    _, fe, plan, low = tiny
    for name, text in low.kernel_files.items():
        (tmp_path / name).write_text(text)
    obj = tmp_path / "m.o"
    subprocess.run(["gcc", "-c", "-O0", "-std=c99", "-o", str(obj), str(tmp_path / "hqc_model.c")], check=True)
    nm = subprocess.run(["nm", "-S", "--defined-only", str(obj)], capture_output=True, text=True, check=True)
    sizes = {}
    for line in nm.stdout.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[2] in "rR" and re.fullmatch(r"[a-z]+\d+[a-z]*_\w+", parts[3]):
            sizes[parts[3]] = int(parts[1], 16)
    consts = c_constants(low.kernel_files["hqc_model.c"])
    assert {c.name: c.bytes for c in consts} == sizes
    t = load_target("cmos45")
    full = full_cost(fe.graph, fe.layers, model_cost(fe.layers, plan, t), plan, t, DeployedModel.from_lowering(low))
    st = full.storage
    assert st.total_bytes == sum(sizes.values())
    header = re.search(r"#define HQC_CONST_BYTES (\d+)", low.kernel_files["hqc_model.h"])
    if header:  # the emitter's own count of its constants
        assert st.total_bytes == int(header.group(1))
    assert st.bytes_by_category["weights"] == low.doc["totals"]["packed_weight_bytes"]
    assert st.weights_only_bytes == sum(layer.params for layer in fe.layers) * 4 // 8
    # one threshold and one bias per neuron channel, at the membrane's C width
    widths = {n["name"]: (4 if n["membrane_bits"] <= 31 else 8, n["channels"]) for n in low.doc["neurons"]}
    assert st.bytes_by_category["thresholds"] == sum(w * c for w, c in widths.values())
    assert st.bytes_by_category["other"] == 0


def test_deployed_rates_match_the_fake_quant_model(tiny):
    zm, fe, plan, low = tiny
    x = events((16, T, 2, 16, 16), seed=3, lam=0.8)
    rates = deployed_firing_rates(DeployedModel.from_lowering(low), fe.layers, x, zm.input_layout)
    spiking = [layer for layer in fe.layers if layer.input_kind == "spikes"]
    assert set(rates) == {layer.name for layer in spiking} and rates
    from hqc.pipeline import layer_input_tensors

    model = fake_quant_model(fe.graph, fe.layers, plan)
    names = [layer_input_tensors(fe.graph, layer)[0] for layer in spiking]
    with torch.no_grad():
        outs = model.forward_all(torch.from_numpy(x), names)
    for layer, o in zip(spiking, outs, strict=True):
        assert rates[layer.name] == approx(float(o.double().mean()), abs=0.01), layer.name


def test_lowering_of_another_plan_is_refused(tiny):
    _, fe, plan, low = tiny
    other = dict(plan, **{fe.layers[0].name: parse_choice("uni8")})
    with pytest.raises(ConfigError, match="the lowering was made with another plan"):
        DeployedModel.from_lowering(low).check_plan(other)


# ---------------------------------------------------------------------------- CLI


#: `hqc cost examples/ndigits/spikformer.onnx --target cmos45 --all X --json` before the
#: full accounting existed: total.energy_total_pj (the paper model's headline).
HEADLINE_BEFORE = {"uni2": 15142600.0, "pot2": 14637804.8, "uni8": 48921280.0,
                   "fp32": 459731840.00000006}


def _cost(*args: str):
    r = CliRunner().invoke(main, ["cost", str(EXAMPLE), "--target", "cmos45", *args])
    return r


@pytest.mark.parametrize("choice", ["uni2", "fp32"])
def test_headline_unchanged_and_full_beside_it(choice):
    r = _cost("--all", choice, "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["total"]["energy_total_pj"] == HEADLINE_BEFORE[choice]
    f = d["full"]
    assert f["weights_energy_pj"] == HEADLINE_BEFORE[choice]
    assert f["energy_total_pj"] > f["weights_energy_pj"]
    assert f["storage"]["weights_only_bytes"] * 8 == d["total"]["storage_bits"]
    if choice == "uni2":
        # 2-bit weights: 40,036 packed bytes; LIF thresholds and biases beside them
        assert f["storage"]["bytes_by_category"]["weights"] == 40036
        nb = f["storage"]["bytes_by_category"]
        assert nb["thresholds"] + nb["biases"] == 10768
        assert nb["rescale"] == 2 * 10 * 8  # the logits' Requant: int64 multiplier and offset per class
        assert nb["other"] == 0


def test_cost_with_a_lowering_folder(tmp_path):
    plan = {"layers": {}}
    r = _cost("--all", "uni4", "--json")
    d = json.loads(r.stdout)
    plan["layers"] = {row["name"]: "uni4" for row in d["layers"]}
    pp = tmp_path / "plan.yaml"
    pp.write_text(yaml.safe_dump(plan))
    out = tmp_path / "low"
    r = CliRunner().invoke(main, ["lower", str(EXAMPLE), "--plan", str(pp), "-o", str(out)])
    assert r.exit_code == 0, r.output
    r2 = _cost("--plan", str(pp), "--lowering", str(out), "--accumulator", "proven", "--json")
    assert r2.exit_code == 0, r2.output
    d2 = json.loads(r2.stdout)
    assert d2["total"] == d["total"]
    assert d2["full"]["storage"]["total_bytes"] == d["full"]["storage"]["total_bytes"]
    assert d2["full"]["storage"]["origin"] == str(out)
    assert d2["full"]["weights_energy_pj"] < d["full"]["weights_energy_pj"]  # < 32-bit accumulators
    r3 = _cost("--all", "uni8", "--lowering", str(out))
    assert r3.exit_code == 2
    assert "the lowering was made with another plan" in r3.stderr
    r4 = _cost("--all", "uni4", "--lowering", str(tmp_path))
    assert r4.exit_code == 2
    assert f"error: {tmp_path}: not a lowering folder (no lowering.json" in r4.stderr


# ---------------------------------------------------------------------------- zoo


ZOO = [("snn_leaky_mem_convnet", dict(dynamo=True, reset="subtract"), False),
       ("sj_spike_driven_transformer", dict(dynamo=True), True),
       ("sj_ms_resnet", dict(dynamo=False, variant="ms"), True),
       ("sj_maxformer", dict(dynamo=True, cifar=True), True)]


@pytest.mark.usefixtures("one_torch_thread")
@pytest.mark.parametrize(("builder", "kwargs"), [
    pytest.param(b, k, marks=[pytest.mark.slow] if slow else [], id=b) for b, k, slow in ZOO])
def test_zoo_neuron_steps_storage_and_proven_widths(zoo_build, builder, kwargs):
    """Other families: LIF counts = the torch neurons' recorded inputs, every C constant
    classified, thresholds one per channel at the membrane's width, proven widths found
    (residual sums lowered to LinComb included)."""
    from tests.support import zoo
    from tests.support.zoo import neuron_io

    zm = zoo_build(getattr(zoo, builder), kwargs)
    fe = run_frontend(str(zm.onnx_path))
    plan = {layer.name: parse_choice(("uni4", "pot2", "uni8")[i % 3]) for i, layer in enumerate(fe.layers)}
    low = lower(zm.onnx_path, plan)
    t = load_target("cmos45")
    cost = model_cost(fe.layers, plan, t)
    dep = DeployedModel.from_lowering(low)
    full = full_cost(fe.graph, fe.layers, cost, plan, t, dep, "proven")
    batch = zm.example_input.shape[zm.batch_axis]
    recorded = sorted(x.size // batch for x, _ in neuron_io(zm).values())
    assert sorted(o.count for o in full.ops if o.kind == "lif") == recorded
    st = full.storage
    assert st.bytes_by_category["other"] == 0
    # one packed array per lowered weight node: a layer unrolled per time step (snnTorch)
    # is emitted once per step
    nodes = [n.attrs["layer"] for n in low.lowered.graph.nodes() if n.op in ("QConv", "QLinear")]
    packed = {r["name"]: r["packed_bytes"] for r in low.doc["layers"]}
    assert st.bytes_by_category["weights"] == sum(packed[name] for name in nodes)
    widths = [(4 if n["membrane_bits"] <= 31 else 8) * n["channels"] for n in low.doc["neurons"]]
    assert st.bytes_by_category["thresholds"] == sum(widths)
    assert {o.node for o in full.ops} == {o.node for o in count_ops(fe.graph)}
    assert full.energy_total_pj > 0 and full.weights_energy_pj > 0


def test_a_broken_lowering_json_is_one_error_line(tmp_path):
    (tmp_path / "kernels").mkdir()
    for name in ("lowering.json", "lowered.onnx", "kernels/hqc_model.c"):
        (tmp_path / name).write_text("{not json")
    with pytest.raises(ConfigError, match=r"lowering.json: not a lowering.json written by hqc lower$"):
        DeployedModel.from_dir(tmp_path)
    r = _cost("--all", "uni4", "--lowering", str(tmp_path))
    assert r.exit_code == 2
    assert r.stderr == f"error: {tmp_path / 'lowering.json'}: not a lowering.json written by hqc lower\n"
