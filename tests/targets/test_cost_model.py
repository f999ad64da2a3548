"""Cost model: worked examples by hand, laws (hypothesis), spike-aware estimate, no mutation."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pytest import approx

from hqc.choices import QuantChoice, parse_choice
from hqc.errors import DataError, PlanError
from hqc.layers import LayerInfo
from hqc.targets import (
    expected_energy_terms,
    fp32_energy_pj,
    layer_cost,
    load_target,
    mac_energy_pj,
    model_cost,
)

CMOS45 = load_target("cmos45")
REL = 1e-12

# Conv2d: C_in 64, C_out 128, k 3, H_out = W_out = 16, T 4, groups 1.
#   MACs   = T * H_out * W_out * C_in * C_out * k^2 = 4 * 16 * 16 * 64 * 128 * 9 = 75,497,472
#   params = C_out * C_in * k^2 = 128 * 64 * 9 = 73,728
CONV = LayerInfo(name="patch_embed.proj", kind="conv2d", group="tokenizer",
                 weight_shape=(128, 64, 3, 3), params=73_728, macs=75_497_472,
                 input_kind="spikes")
# Linear: tokens 64, d_in 256, d_out 512, T 4.
#   MACs   = T * tokens * d_in * d_out = 4 * 64 * 256 * 512 = 33,554,432
#   params = d_out * d_in = 512 * 256 = 131,072
LINEAR = LayerInfo(name="blocks.0.mlp.fc1", kind="linear", group="mlp",
                   weight_shape=(512, 256), params=131_072, macs=33_554_432,
                   input_kind="integers")

# Energy of one MAC on cmos45 (pJ), accumulate = int32 add 0.1 (fp32: fp32 add 0.9):
#   fp32: E_mult,fp32 + E_add,fp32 = 3.7 + 0.9                       = 4.6
#   uni2: E_mult(int2) = 0.2 * (2/8)^2 = 0.0125 (quadratic from int8) -> 0.1125
#   uni4: E_mult(int4) = 0.2 * (4/8)^2 = 0.05                         -> 0.15
#   pot2: E_shift(int2) = 0.024 * 2/8 = 0.006 (linear from int8)      -> 0.106
#   pot4: E_shift(int4) = 0.024 * 4/8 = 0.012                         -> 0.112
MAC_PJ = {
    "fp32": 3.7 + 0.9,
    "uni2": 0.2 * (2 / 8) ** 2 + 0.1,
    "uni4": 0.2 * (4 / 8) ** 2 + 0.1,
    "pot2": 0.024 * (2 / 8) + 0.1,
    "pot4": 0.024 * (4 / 8) + 0.1,
}
# DRAM: 640 pJ per 32-bit read = 20 pJ per bit.
DRAM_PJ_PER_BIT = 640 / 32

# Hand figures. compute = MACs * MAC_PJ; storage = params * bits; memory = storage * 20.
# Conv:
#   fp32: 75,497,472 * 4.6    = 347,288,371.2 pJ; 73,728 * 32 = 2,359,296 bits -> 47,185,920 pJ
#   uni2: 75,497,472 * 0.1125 =   8,493,465.6 pJ; 73,728 * 2  =   147,456 bits ->  2,949,120 pJ
#   uni4: 75,497,472 * 0.15   =  11,324,620.8 pJ; 73,728 * 4  =   294,912 bits ->  5,898,240 pJ
#   pot2: 75,497,472 * 0.106  =   8,002,732.032 pJ;                147,456 bits ->  2,949,120 pJ
#   pot4: 75,497,472 * 0.112  =   8,455,716.864 pJ;                294,912 bits ->  5,898,240 pJ
CONV_HAND = {  # choice: (compute_pj, storage_bits, memory_pj)
    "fp32": (347_288_371.2, 2_359_296, 47_185_920.0),
    "uni2": (8_493_465.6, 147_456, 2_949_120.0),
    "uni4": (11_324_620.8, 294_912, 5_898_240.0),
    "pot2": (8_002_732.032, 147_456, 2_949_120.0),
    "pot4": (8_455_716.864, 294_912, 5_898_240.0),
}
# Linear:
#   fp32: 33,554,432 * 4.6    = 154,350,387.2 pJ; 131,072 * 32 = 4,194,304 bits -> 83,886,080 pJ
#   uni2: 33,554,432 * 0.1125 =   3,774,873.6 pJ; 131,072 * 2  =   262,144 bits ->  5,242,880 pJ
#   uni4: 33,554,432 * 0.15   =   5,033,164.8 pJ; 131,072 * 4  =   524,288 bits -> 10,485,760 pJ
#   pot2: 33,554,432 * 0.106  =   3,556,769.792 pJ;                 262,144 bits ->  5,242,880 pJ
#   pot4: 33,554,432 * 0.112  =   3,758,096.384 pJ;                 524,288 bits -> 10,485,760 pJ
LINEAR_HAND = {
    "fp32": (154_350_387.2, 4_194_304, 83_886_080.0),
    "uni2": (3_774_873.6, 262_144, 5_242_880.0),
    "uni4": (5_033_164.8, 524_288, 10_485_760.0),
    "pot2": (3_556_769.792, 262_144, 5_242_880.0),
    "pot4": (3_758_096.384, 524_288, 10_485_760.0),
}


@pytest.mark.parametrize("layer,hand", [(CONV, CONV_HAND), (LINEAR, LINEAR_HAND)],
                         ids=["conv2d", "linear"])
@pytest.mark.parametrize("choice", ["fp32", "uni2", "uni4", "pot2", "pot4"])
def test_worked_examples_match_hand_arithmetic(layer, hand, choice):
    row = layer_cost(layer, parse_choice(choice), CMOS45)
    compute_pj, bits, memory_pj = hand[choice]
    assert row.energy_compute_pj == approx(compute_pj, rel=REL)
    assert row.energy_compute_pj == approx(layer.macs * MAC_PJ[choice], rel=REL)
    assert row.storage_bits == bits
    assert row.energy_memory_pj == approx(memory_pj, rel=REL)
    assert row.energy_memory_pj == approx(bits * DRAM_PJ_PER_BIT, rel=REL)
    assert row.energy_total_pj == approx(compute_pj + memory_pj, rel=REL)
    assert mac_energy_pj(choice, CMOS45) == approx(MAC_PJ[choice], rel=REL)


def test_derived_numbers_are_reported_as_derived():
    assert layer_cost(CONV, "uni2", CMOS45).derived == ("int.mult.2 (quadratic from 8 bits)",)
    assert layer_cost(CONV, "pot4", CMOS45).derived == ("int.shift.4 (linear from 8 bits)",)
    assert layer_cost(CONV, "fp32", CMOS45).derived == ()
    assert layer_cost(CONV, "uni8", CMOS45).derived == ()


def test_spike_aware_estimate_by_hand():
    # Conv on spikes, firing rate 0.25: a multiply by a 0/1 spike is an add, done only
    # where a spike is present.
    #   uni4: 0.25 * 75,497,472 * 0.1 (int32 add) = 1,887,436.8 pJ
    #   fp32: 0.25 * 75,497,472 * 0.9 (fp32 add)  = 16,986,931.2 pJ
    uni4 = layer_cost(CONV, "uni4", CMOS45, firing_rate=0.25)
    assert uni4.spike_energy_compute_pj == approx(1_887_436.8, rel=REL)
    assert uni4.spike_energy_total_pj == approx(1_887_436.8 + 5_898_240.0, rel=REL)
    fp32 = layer_cost(CONV, "fp32", CMOS45, firing_rate=0.25)
    assert fp32.spike_energy_compute_pj == approx(16_986_931.2, rel=REL)
    # Without a rate the spike-aware figure of a spiking layer is unavailable, not guessed.
    assert layer_cost(CONV, "uni4", CMOS45).spike_energy_compute_pj is None
    # Integer inputs keep the paper model in the spike-aware estimate.
    lin = layer_cost(LINEAR, "uni4", CMOS45)
    assert lin.spike_energy_compute_pj == lin.energy_compute_pj
    assert lin.spike_model == "paper model"


def test_model_cost_groups_totals_baseline_and_ratios():
    plan = {CONV.name: parse_choice("uni4"), LINEAR.name: parse_choice("pot2")}
    result = model_cost([CONV, LINEAR], plan, CMOS45)
    assert [r.choice for r in result.layers] == ["uni4", "pot2"]
    assert list(result.groups) == ["tokenizer", "mlp"]
    # plan total = conv uni4 (11,324,620.8 + 5,898,240) + linear pot2 (3,556,769.792 + 5,242,880)
    plan_pj = 11_324_620.8 + 5_898_240.0 + 3_556_769.792 + 5_242_880.0
    # fp32 total = conv (347,288,371.2 + 47,185,920) + linear (154,350,387.2 + 83,886,080)
    fp32_pj = 347_288_371.2 + 47_185_920.0 + 154_350_387.2 + 83_886_080.0
    assert result.total.energy_total_pj == approx(plan_pj, rel=REL)
    assert result.baseline_total.energy_total_pj == approx(fp32_pj, rel=REL)
    assert result.ratios["energy_total_pj"] == approx(plan_pj / fp32_pj, rel=REL)
    # storage: 294,912 + 262,144 bits vs 2,359,296 + 4,194,304 bits
    assert result.total.storage_bits == 294_912 + 262_144
    assert result.ratios["storage_bits"] == approx((294_912 + 262_144) / 6_553_600, rel=REL)
    assert result.groups["tokenizer"].energy_total_pj == approx(11_324_620.8 + 5_898_240.0,
                                                                rel=REL)
    assert result.group_ratios["mlp"]["energy_total_pj"] == approx(
        (3_556_769.792 + 5_242_880.0) / (154_350_387.2 + 83_886_080.0), rel=REL)
    # No rates and a spiking layer: the spike-aware totals are unavailable.
    assert not result.spike_aware_available
    assert result.total.spike_energy_total_pj is None
    assert result.ratios["spike_energy_total_pj"] is None
    assert result.derived == ("int.mult.4 (quadratic from 8 bits)",
                              "int.shift.2 (linear from 8 bits)")
    d = result.to_dict()
    assert d["total"]["energy_total_pj"] == result.total.energy_total_pj
    assert d["baseline_fp32"]["total"]["storage_bits"] == 6_553_600


def test_model_cost_with_firing_rates():
    plan = {CONV.name: "uni4", LINEAR.name: "pot2"}
    result = model_cost([CONV, LINEAR], plan, CMOS45, firing_rates={CONV.name: 0.25})
    assert result.spike_aware_available
    # conv: 0.25 * 75,497,472 * 0.1 + 5,898,240; linear (integer inputs): paper model
    expected = 1_887_436.8 + 5_898_240.0 + 3_556_769.792 + 5_242_880.0
    assert result.total.spike_energy_total_pj == approx(expected, rel=REL)
    assert result.layers[0].firing_rate == 0.25
    assert result.layers[1].firing_rate is None


def test_model_cost_errors():
    layers = [CONV, LINEAR]
    with pytest.raises(PlanError, match=r"^plan:layers: no choice for layers: blocks\.0\.mlp\.fc1$"):
        model_cost(layers, {CONV.name: "uni4"}, CMOS45)
    with pytest.raises(PlanError, match=r"^plan:layers\.ghost: no layer of that name in the model"):
        model_cost(layers, {CONV.name: "uni4", LINEAR.name: "uni4", "ghost": "uni4"}, CMOS45)
    with pytest.raises(PlanError, match=r"^plan:layers\.patch_embed\.proj: unknown quantizer 'uni9'"):
        model_cost(layers, {CONV.name: "uni9", LINEAR.name: "uni4"}, CMOS45)
    plan = {CONV.name: "uni4", LINEAR.name: "uni4"}
    with pytest.raises(DataError, match=r"no firing rate measured for spiking-input layer "
                                        r"'patch_embed\.proj'"):
        model_cost(layers, plan, CMOS45, firing_rates={LINEAR.name: 0.1})
    with pytest.raises(DataError, match=r"firing rate of layer 'patch_embed\.proj' must be a "
                                        r"number in \[0, 1\], got 1\.5"):
        model_cost(layers, plan, CMOS45, firing_rates={CONV.name: 1.5})


def test_analyses_do_not_mutate_inputs():
    layers = [CONV, LINEAR]
    plan = {CONV.name: parse_choice("pot4"), LINEAR.name: "uni2"}
    rates = {CONV.name: 0.3}
    before = copy.deepcopy((layers, plan, rates))
    model_cost(layers, plan, CMOS45, firing_rates=rates)
    expected_energy_terms(layers, ["fp32", "uni4"], CMOS45)
    assert (layers, plan, rates) == before


def test_expected_energy_terms():
    terms = expected_energy_terms([CONV, LINEAR], ["fp32", "uni4", "pot2"], CMOS45)
    assert list(terms) == [CONV.name, LINEAR.name]
    assert list(terms[CONV.name]) == ["fp32", "uni4", "pot2"]
    assert terms[CONV.name]["uni4"] == approx(11_324_620.8 + 5_898_240.0, rel=REL)
    assert all(isinstance(v, float) for t in terms.values() for v in t.values())
    per_layer = expected_energy_terms(
        [CONV, LINEAR], {CONV.name: ["uni2"], LINEAR.name: [QuantChoice("pot", 4)]}, CMOS45)
    assert per_layer == {CONV.name: {"uni2": approx(8_493_465.6 + 2_949_120.0, rel=REL)},
                         LINEAR.name: {"pot4": approx(3_758_096.384 + 10_485_760.0, rel=REL)}}
    with pytest.raises(PlanError, match=r"no candidate choices for layer 'blocks\.0\.mlp\.fc1'"):
        expected_energy_terms([CONV, LINEAR], {CONV.name: ["uni2"]}, CMOS45)
    assert fp32_energy_pj([CONV, LINEAR], CMOS45) == approx(
        347_288_371.2 + 47_185_920.0 + 154_350_387.2 + 83_886_080.0, rel=REL)


# ------------------------------------------------------------------------ laws

layers_st = st.builds(
    lambda kind, macs, params, input_kind: LayerInfo(
        name="l", kind=kind, group="other",
        weight_shape=(params, 1) if kind == "linear" else (params, 1, 1, 1),
        params=params, macs=macs, input_kind=input_kind),
    st.sampled_from(["conv1d", "conv2d", "linear"]),
    st.integers(0, 10**13), st.integers(0, 10**10),
    st.sampled_from(["spikes", "integers", "real"]),
)
uni_bits = st.integers(2, 8)
pot_bits = st.integers(2, 5)
_FIELDS = ("energy_compute_pj", "energy_memory_pj", "energy_total_pj", "storage_bits")


@settings(max_examples=200, deadline=None)
@given(layers_st, st.sampled_from(["uniform", "pot"]), st.data())
def test_fewer_bits_never_cost_more(layer, kind, data):
    bits = uni_bits if kind == "uniform" else pot_bits
    b1, b2 = sorted((data.draw(bits), data.draw(bits)))
    low = layer_cost(layer, QuantChoice(kind, b1), CMOS45)
    high = layer_cost(layer, QuantChoice(kind, b2), CMOS45)
    fp32 = layer_cost(layer, QuantChoice("fp32", 32), CMOS45)
    for f in _FIELDS:
        assert getattr(low, f) <= getattr(high, f) <= getattr(fp32, f)


@settings(max_examples=200, deadline=None)
@given(layers_st, pot_bits)
def test_power_of_two_never_costs_more_compute_than_uniform(layer, bits):
    pot = layer_cost(layer, QuantChoice("pot", bits), CMOS45)
    uni = layer_cost(layer, QuantChoice("uniform", bits), CMOS45)
    assert pot.energy_compute_pj <= uni.energy_compute_pj
    assert pot.storage_bits == uni.storage_bits


@settings(max_examples=100, deadline=None)
@given(layers_st, st.sampled_from(["fp32", "uni2", "uni4", "uni8", "pot2", "pot5"]),
       st.floats(0.0, 1.0))
def test_spike_aware_never_exceeds_paper_model(layer, choice, rate):
    row = layer_cost(layer, choice, CMOS45, firing_rate=rate)
    assert row.spike_energy_compute_pj <= row.energy_compute_pj
    assert row.spike_energy_total_pj <= row.energy_total_pj


# ---------------------------------------------------------------- optional compare


def test_compare_without_an_entry_is_priced_as_the_add_of_its_width():
    from hqc.targets import dump_table, loads_table

    for fmt, bits in (("int", 32), ("int", 18), ("float", 32)):
        cmp_, add = CMOS45.op_energy(fmt, "compare", bits), CMOS45.op_energy(fmt, "add", bits)
        assert cmp_.energy_pj == add.energy_pj and cmp_.derived
        assert cmp_.describe() == (f"{fmt}.compare.{bits} (as {fmt}.add.{bits})" if not add.derived else
                                   f"{fmt}.compare.{bits} (as {fmt}.add.{bits}, {add.rule} from {add.anchor_bits} bits)")
    # a table that lists compare uses its entries (and derive.compare, else add's rule)
    text = dump_table(CMOS45).replace("  float:\n", "    compare:\n      16:\n        value: 0.07\n"
                                                    "        source: horowitz2014\n  float:\n", 1)
    t = loads_table(text)
    assert t.op_energy("int", "compare", 16).energy_pj == approx(0.07, rel=REL)
    assert not t.op_energy("int", "compare", 16).derived
    assert t.op_energy("int", "compare", 32).energy_pj == approx(0.14, rel=REL)  # linear, as add
    assert loads_table(dump_table(t)) == t
