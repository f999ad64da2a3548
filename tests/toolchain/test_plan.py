"""hqc.plan.resolve_plan: the one check of a plan against a model's layers — one message
per kind of mistake, the same from a plan file, a mapping, the cost model and the report."""

from __future__ import annotations

import re

import pytest

from hqc.choices import QuantChoice
from hqc.errors import PlanError
from hqc.layers import LayerInfo
from hqc.plan import read_plan, resolve_plan
from hqc.report.build import _plan_entries
from hqc.targets import load_target, model_cost


def _layer(name: str) -> LayerInfo:
    return LayerInfo(name=name, kind="linear", group="mlp", weight_shape=(4, 4), params=16,
                     macs=64, input_kind="real")


LAYERS = [_layer("fc1"), _layer("fc2"), _layer("head")]


def test_resolves_names_entries_and_choices_in_layer_order():
    got = resolve_plan({"head": QuantChoice("pot", 2), "fc2": {"choice": "uni4", "probability": 0.9},
                        "fc1": "fp32"}, LAYERS)
    assert list(got) == ["fc1", "fc2", "head"]
    assert got == {"fc1": QuantChoice("fp32", 32), "fc2": QuantChoice("uniform", 4),
                   "head": QuantChoice("pot", 2)}


KINDS = [
    ("not a mapping", ["fc1", "fc2"], "p.yaml:layers: expected a mapping layer name -> {choice: ...}"),
    ("unknown layer", {"fc1": "uni4", "ghost": "uni4"},
     "p.yaml:layers.ghost: no layer of that name in the model (layers: fc1, fc2, head)"),
    ("wrong type", {"fc1": 4}, "p.yaml:layers.fc1: expected a quantizer name (fp32, uni<b>, pot<b>) "
                               "or {choice: ...}, got int"),
    ("entry without choice", {"fc1": {"probability": 1.0}}, "p.yaml:layers.fc1.choice: missing required key"),
    ("unknown quantizer", {"fc1": {"choice": "uni9"}},
     "p.yaml:layers.fc1.choice: unknown quantizer 'uni9': uniform bits must be in 2..8"),
    ("missing layers", {"fc2": "uni4"}, "p.yaml:layers: no choice for layers: fc1, head"),
]


@pytest.mark.parametrize(("kind", "plan", "message"), KINDS, ids=[k[0] for k in KINDS])
def test_one_message_per_kind_of_mistake(kind, plan, message):
    with pytest.raises(PlanError) as e:
        resolve_plan(plan, LAYERS, "p.yaml")
    assert str(e.value) == message


def test_every_caller_gives_the_resolvers_message(tmp_path):
    plan = {"fc1": "uni4", "fc2": "uni4"}  # head missing
    want = "no choice for layers: head"
    f = tmp_path / "plan.yaml"
    f.write_text("layers:\n  fc1: uni4\n  fc2: {choice: uni4}\n", encoding="utf-8")
    with pytest.raises(PlanError, match=rf"^{re.escape(str(f))}:layers: {want}$"):
        read_plan(f, LAYERS)
    with pytest.raises(PlanError, match=rf"^plan:layers: {want}$"):
        model_cost(LAYERS, plan, load_target("cmos45"))
    with pytest.raises(PlanError, match=rf"^plan:layers: {want}$"):
        _plan_entries({"layers": plan}, LAYERS)
