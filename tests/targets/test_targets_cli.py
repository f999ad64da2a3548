"""CLI: `hqc targets list|show|validate` and `hqc cost` (with a stand-in model frontend)."""

from __future__ import annotations

import json
import sys
import types

import click
import pytest
import yaml
from click.testing import CliRunner
from pytest import approx

from hqc.cli_targets import cost, targets
from hqc.errors import HqcError
from hqc.layers import LayerInfo
from hqc.targets import dump_table, load_target


class _Main(click.Group):
    """Stands in for the main `hqc` group: HqcError -> `error: <message>`, exit code 2."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except HqcError as e:
            click.echo(f"error: {e}", err=True)
            ctx.exit(2)


@click.group(cls=_Main)
def main() -> None:
    pass


main.add_command(targets)
main.add_command(cost)

# conv: 4 * 16 * 16 * 64 * 128 * 9 MACs; linear: 4 * 64 * 256 * 512 MACs (see test_cost_model).
LAYERS = [
    LayerInfo(name="patch_embed.proj", kind="conv2d", group="tokenizer",
              weight_shape=(128, 64, 3, 3), params=73_728, macs=75_497_472,
              input_kind="spikes"),
    LayerInfo(name="blocks.0.mlp.fc1", kind="linear", group="mlp", weight_shape=(512, 256),
              params=131_072, macs=33_554_432, input_kind="integers"),
]


def run(*args: str):
    return CliRunner().invoke(main, list(args))


@pytest.fixture
def model(tmp_path, monkeypatch):
    """A model file and a stand-in `hqc.pipeline` returning LAYERS."""
    fake = types.ModuleType("hqc.pipeline")
    calls = []

    def load_and_analyze(model_path, input_layout=None):
        calls.append((model_path, input_layout))
        return object(), list(LAYERS)

    fake.load_and_analyze = load_and_analyze
    fake.calls = calls
    monkeypatch.setitem(sys.modules, "hqc.pipeline", fake)
    # the full accounting needs a real graph and lowering (tests/targets/test_cost_full.py)
    monkeypatch.setattr("hqc.targets.full.count_ops", lambda graph: [])
    monkeypatch.setattr("hqc.targets.full.lower_for_cost", lambda *a, **k: (None, "stand-in frontend"))
    path = tmp_path / "m.onnx"
    path.write_bytes(b"not read by the stand-in")
    return path, fake


# ------------------------------------------------------------------------ targets


def test_targets_list():
    result = run("targets", "list")
    assert result.exit_code == 0
    assert "cmos45" in result.output and "builtin" in result.output


def test_targets_show_prints_numbers_and_sources():
    result = run("targets", "show", "cmos45")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "you2023shiftaddvit" in out and "Horowitz" in out and "ShiftAddViT" in out
    assert "0.024" in out and "640" in out
    assert "int.mult.2 (quadratic from 8 bits) [derived]" in out
    yaml_out = run("targets", "show", "cmos45", "--yaml").output
    assert yaml.safe_load(yaml_out) == yaml.safe_load(dump_table(load_target("cmos45")))


def test_targets_show_unknown_name():
    result = run("targets", "show", "nope")
    assert result.exit_code == 2
    assert "error: unknown target 'nope': known targets are cmos45" in result.stderr


def test_targets_validate_ok(tmp_path):
    path = tmp_path / "chip.yaml"
    path.write_text(dump_table(load_target("cmos45")))
    result = run("targets", "validate", str(path))
    assert result.exit_code == 0
    assert result.output.startswith(f"OK: {path}: table 'cmos45'")


def test_targets_validate_broken_table_exits_2_with_message(tmp_path):
    data = yaml.safe_load(dump_table(load_target("cmos45")))
    data["ops"]["int"]["mult"][8]["value"] = -0.2
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(data))
    # The validate command reports the error itself, also outside the main group.
    result = CliRunner().invoke(targets, ["validate", str(path)])
    assert result.exit_code == 2
    assert result.stderr == (f"error: {path}:ops.int.mult.8.value: expected a finite number "
                             ">= 0, got -0.2\n")
    assert result.stdout == ""


# ------------------------------------------------------------------------ cost


def test_cost_all_text(model):
    path, fake = model
    result = run("cost", str(path), "--target", "cmos45", "--all", "uni4",
                 "--input-layout", "TBCHW")
    assert result.exit_code == 0, result.output
    out = result.output
    assert fake.calls == [(str(path), "TBCHW")]
    assert "patch_embed.proj" in out and "blocks.0.mlp.fc1" in out
    assert "tokenizer" in out and "mlp" in out
    assert "spike-aware estimate: unavailable" in out
    assert "int.mult.4 (quadratic from 8 bits)" in out


def test_cost_plan_json(model, tmp_path):
    path, _ = model
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump({
        "version": 1,
        "layers": {"patch_embed.proj": {"choice": "uni4", "probability": 0.9, "history": []},
                   "blocks.0.mlp.fc1": "pot2"},
    }))
    result = run("cost", str(path), "--target", "cmos45", "--plan", str(plan), "--json")
    assert result.exit_code == 0, result.output
    d = json.loads(result.stdout)
    assert [r["choice"] for r in d["layers"]] == ["uni4", "pot2"]
    # conv uni4: 75,497,472 * 0.15 + 294,912 * 20; linear pot2: 33,554,432 * 0.106 + 262,144 * 20
    expected = 11_324_620.8 + 5_898_240.0 + 3_556_769.792 + 5_242_880.0
    assert d["total"]["energy_total_pj"] == approx(expected, rel=1e-12)
    assert d["baseline_fp32"]["total"]["storage_bits"] == 6_553_600
    assert d["spike_aware_available"] is False
    assert d["plan"] == str(plan)


@pytest.mark.parametrize("layers,message", [
    ({"ghost": {"choice": "uni4"}}, ":layers.ghost: no layer of that name in the model "
                                    "(layers: patch_embed.proj, blocks.0.mlp.fc1)"),
    ({"patch_embed.proj": {"choice": "uni9"}, "blocks.0.mlp.fc1": "uni4"},
     ":layers.patch_embed.proj.choice: unknown quantizer 'uni9': uniform bits must be in 2..8"),
    ({"patch_embed.proj": {"prob": 1}}, ":layers.patch_embed.proj.choice: missing required key"),
    ({"patch_embed.proj": "uni4"}, ":layers: no choice for layers: blocks.0.mlp.fc1"),
    (None, ":layers: expected a mapping layer name -> {choice: ...}"),
])
def test_cost_plan_errors(model, tmp_path, layers, message):
    path, _ = model
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump({"layers": layers}))
    result = run("cost", str(path), "--target", "cmos45", "--plan", str(plan))
    assert result.exit_code == 2
    assert result.stderr == f"error: {plan}{message}\n"


def test_cost_needs_exactly_one_of_plan_or_all(model):
    path, _ = model
    result = run("cost", str(path), "--target", "cmos45")
    assert result.exit_code == 2
    assert "give exactly one of --plan FILE or --all CHOICE" in result.stderr


def test_cost_unknown_choice_and_target(model):
    path, _ = model
    result = run("cost", str(path), "--target", "cmos45", "--all", "int3")
    assert result.exit_code == 2
    assert "error: unknown quantizer 'int3'" in result.stderr
    result = run("cost", str(path), "--target", "nope", "--all", "uni4")
    assert result.exit_code == 2
    assert "error: unknown target 'nope'" in result.stderr


def test_cost_data_with_firing_rates(model, tmp_path):
    path, fake = model
    fake.measure_firing_rates = lambda graph, layers, data_path, input_layout=None: {"patch_embed.proj": 0.25}
    data = tmp_path / "d.npz"
    data.write_bytes(b"")
    result = run("cost", str(path), "--target", "cmos45", "--all", "uni4", "--data", str(data))
    assert result.exit_code == 0, result.output
    assert "spike-aware estimate (spike inputs" in result.output
    js = run("cost", str(path), "--target", "cmos45", "--all", "uni4", "--data", str(data),
             "--json")
    d = json.loads(js.stdout)
    # conv: 0.25 * 75,497,472 * 0.1 + 5,898,240; linear (integer inputs): paper model
    expected = 1_887_436.8 + 5_898_240.0 + 5_033_164.8 + 10_485_760.0
    assert d["total"]["spike_energy_total_pj"] == approx(expected, rel=1e-12)


def test_cost_config_file_equals_the_flags(model, tmp_path):
    path, _ = model
    flags = run("cost", str(path), "--target", "cmos45", "--all", "uni4", "--json")
    cfg = tmp_path / "cost.yaml"
    cfg.write_text("target: cmos45\nall: uni4\n")
    conf = run("cost", str(path), "--config", str(cfg), "--json")
    assert conf.exit_code == 0, conf.output
    assert json.loads(conf.stdout) == json.loads(flags.stdout)
    over = run("cost", str(path), "--config", str(cfg), "--all", "pot2", "--json")
    assert json.loads(over.stdout)["plan"] == "all pot2"
