"""insert-quant-choices: candidate sets on the IR from the default and from YAML configs;
idempotence, verify, the computation untouched, and every config error names file:key."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from hqc.backend import TorchModel
from hqc.choices import DEFAULT_CHOICES, parse_choice
from hqc.errors import PlanError
from hqc.ir import verify
from hqc.passes import Context, run_passes
from hqc.passes.annotate_layers import annotate_layers
from hqc.passes.insert_quant_choices import META_KEY, InsertQuantChoices, candidates_of
from hqc.pipeline import run_frontend
from tests.support.zoo import example_spikformer

TINY = dict(dynamo=False, depth=1, dim=32, heads=2, T=2, img=16)


@pytest.fixture
def frontend(zoo_build):
    zm = zoo_build(example_spikformer, TINY)
    return run_frontend(zm.onnx_path)


def _run(graph, space=None):
    return InsertQuantChoices().run(graph, Context(options={"search_space": space}))


def _yaml(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "space.yaml"
    p.write_text(text, encoding="utf-8")
    return p


def test_default_attaches_the_papers_five_to_every_layer_node(frontend):
    g = frontend.graph
    before = g.copy()
    res = _run(g)
    assert res.modified and res.stats["layers"] == len(frontend.layers)
    assert verify(res.graph) == []
    cands = candidates_of(res.graph, frontend.layers)
    five = tuple(parse_choice(c) for c in DEFAULT_CHOICES)
    assert all(v == five for v in cands.values())
    for layer in frontend.layers:
        for nid in layer.nodes:
            assert res.graph.node(nid).meta[META_KEY] == "fp32,uni4,uni2,pot4,pot2"
    # nothing but metadata changed: same nodes, attrs, constants, and the same outputs
    assert [(n.name, n.op, n.inputs, n.outputs) for n in before.nodes()] == \
           [(n.name, n.op, n.inputs, n.outputs) for n in res.graph.nodes()]
    assert all(np.array_equal(before.constants[k], res.graph.constants[k]) for k in before.constants)
    x = torch.from_numpy((np.random.default_rng(0).random((3, 2, 2, 16, 16)) < 0.3).astype(np.float32))
    with torch.no_grad():
        a = TorchModel(before).eval()(x)
        b = TorchModel(res.graph).eval()(x)
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_idempotent_and_modified_tells_the_truth(frontend, tmp_path):
    g = frontend.graph
    assert _run(g).modified
    assert not _run(g).modified
    cfg = _yaml(tmp_path, "add: [uni8]\n")
    assert _run(g, cfg).modified
    assert not _run(g, cfg).modified
    assert _run(g).modified  # back to the default set


def test_config_adds_pins_and_restricts_by_pattern(frontend, tmp_path):
    cfg = _yaml(tmp_path, """
add: [uni8, pot3]
layers:
  sps.proj_conv: {min_bits: 4}
  head: uni4
  "blocks.*.attn.*_conv": {exclude: [pot2, uni2]}
  blocks.0.mlp.fc2_conv: [uni8, uni4]
""")
    g, _ = run_passes(frontend.graph, ["insert-quant-choices"], Context(options={"search_space": str(cfg)}))
    c = {k: [x.name for x in v] for k, v in candidates_of(g, frontend.layers).items()}
    assert c["sps.proj_conv"] == ["fp32", "uni4", "pot4", "uni8"]
    assert c["head"] == ["uni4"]
    assert c["blocks.0.attn.q_conv"] == ["fp32", "uni4", "pot4", "uni8", "pot3"]
    assert c["blocks.0.attn.proj_conv"] == c["blocks.0.attn.q_conv"]
    assert c["blocks.0.mlp.fc2_conv"] == ["uni8", "uni4"]
    assert c["blocks.0.mlp.fc1_conv"] == ["fp32", "uni4", "uni2", "pot4", "pot2", "uni8", "pot3"]


def test_config_as_mapping_and_base_choices(frontend):
    res = _run(frontend.graph, {"choices": ["uni4", "pot4"]})
    assert {tuple(x.name for x in v) for v in candidates_of(res.graph, frontend.layers).values()} == {("uni4", "pot4")}


@pytest.mark.parametrize(("text", "message"), [
    ("add: [uni9]\n", r"space\.yaml:add\[0\]: unknown quantizer 'uni9'"),
    ("choices: [fp32, int4]\n", r"space\.yaml:choices\[1\]: unknown quantizer 'int4'"),
    ("layers:\n  nothing.*: [uni4]\n", r"space\.yaml:layers\.nothing\.\*: pattern matches no layer"),
    ("layers:\n  head: {min_bits: 40}\n", r"space\.yaml:layers\.head: leaves layer 'head' with no candidate"),
    ("layers:\n  head: {exclude: [pot5x]}\n", r"space\.yaml:layers\.head\.exclude\[0\]: unknown quantizer 'pot5x'"),
    ("layers:\n  head: {bits: 4}\n", r"space\.yaml:layers\.head\.bits: unknown key"),
    ("layers:\n  head: 4\n", r"space\.yaml:layers\.head: expected a list of choices"),
    ("choices: []\n", r"space\.yaml:choices: the candidate set is empty"),
    ("colour: red\n", r"space\.yaml:colour: unknown key"),
    ("layers: [head]\n", r"space\.yaml:layers: expected a mapping"),
    ("layers:\n  head: {min_bits: yes}\n", r"space\.yaml:layers\.head\.min_bits: expected a positive integer"),
    ("a: [\n", r"space\.yaml: not valid YAML at line"),
])
def test_config_errors_name_file_and_key(frontend, tmp_path, text, message):
    cfg = _yaml(tmp_path, text)
    with pytest.raises(PlanError, match=message):
        run_passes(frontend.graph, ["insert-quant-choices"], Context(options={"search_space": str(cfg)}))


def test_missing_config_file_and_missing_candidates(frontend, tmp_path):
    with pytest.raises(PlanError, match=r"nope\.yaml: no such search space file"):
        _run(frontend.graph, str(tmp_path / "nope.yaml"))
    with pytest.raises(PlanError, match=r"has no candidate quantizers \(run insert-quant-choices\)"):
        candidates_of(frontend.graph, annotate_layers(frontend.graph))
