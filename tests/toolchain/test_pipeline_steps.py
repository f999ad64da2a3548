"""`hqc compile` as `hqc.pipeline.STEPS`: the model imported once and the data loaded once
per run; `--stop-after` writes each step's own state (checked against the passes run by
hand); `--start-from` resumes from an earlier run's folder with the same outputs as the
uninterrupted run; a missing saved state is one error line and leaves the folder as it was."""

from __future__ import annotations

import json
import sys

import pytest
from click.testing import CliRunner

from hqc.cli import main
from hqc.config import STAGES
from hqc.inspection import inspect_dict
from hqc.passes import Context, analysis, run_passes
from hqc.pipeline import FRONTEND, STEPS, Frontend, neurons_of, run_frontend
from tests.support.compiled import check_compile_folder
from tests.support.data import TINY, make_data
from tests.support.zoo import example_spikformer

FAST = ["--epochs", "1", "--finetune-epochs", "1", "--batch-size", "16", "--no-progress"]
#: report.json keys that are timings or the folder's path, not results
VOLATILE = ("seconds", "created")

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny(zoo_build):
    return zoo_build(example_spikformer, TINY)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    # 29 validation samples: accuracies are not exact in plan.yaml's 6 digits
    return make_data(tmp_path_factory.mktemp("data") / "d.npz", n_val=29)


def _compile(*args):
    return CliRunner().invoke(main, ["compile", *map(str, args)])


def _counting(monkeypatch, attr: str) -> list[str]:
    """Count calls of hqc's `attr` (import_model or load_data) wherever a module bound it."""
    calls: list[str] = []
    original = None
    for mod in list(sys.modules.values()):
        if getattr(mod, "__name__", "").startswith("hqc") and hasattr(mod, attr):
            original = original or getattr(mod, attr)
    assert original is not None

    def wrapper(path, *a, **k):
        calls.append(str(path))
        return original(path, *a, **k)

    for mod in list(sys.modules.values()):
        if getattr(mod, "__name__", "").startswith("hqc") and getattr(mod, attr, None) is original:
            monkeypatch.setattr(mod, attr, wrapper)
    return calls


@pytest.fixture(scope="module")
def full(tiny, data, tmp_path_factory):
    """One uninterrupted 1-epoch compile, counting model imports and data loads."""
    import hqc.cli_lower  # noqa: F401  (bind every module that imports or loads)
    import hqc.search  # noqa: F401

    mp = pytest.MonkeyPatch()
    imports, loads = _counting(mp, "import_model"), _counting(mp, "load_data")
    try:
        out = tmp_path_factory.mktemp("full") / "out"
        res = _compile(tiny.onnx_path, "--data", data, "-o", out, *FAST)
    finally:
        mp.undo()
    assert res.exit_code == 0, res.stderr + res.stdout
    return out, imports, loads


def test_steps_are_the_stages():
    assert tuple(name for name, _ in STEPS) == STAGES


def test_model_imported_once_and_data_loaded_once(full, tiny, data):
    out, imports, loads = full
    assert imports == [str(tiny.onnx_path)]
    assert loads == [str(data)]
    assert json.loads((out / "verify.json").read_text())["identical"] is True


def _strip(x):
    """A document without timings and without paths into the run's temporary folder."""
    if isinstance(x, dict):
        return {k: _strip(v) for k, v in x.items() if k not in VOLATILE}
    if isinstance(x, list):
        return [_strip(v) for v in x]
    return "<tmp>" if isinstance(x, str) and ".tmp-" in x else x


def _report(out):
    return _strip(json.loads((out / "report.json").read_text()))


def test_frontend_steps_stop_with_their_own_state(tiny, data, tmp_path):
    # the reference: the frontend's passes run by hand, one at a time
    from hqc.onnx_io import import_model

    g = import_model(tiny.onnx_path)
    onnx_nodes = len(g)
    want = {"import": (len(g), [], [])}
    for name in FRONTEND:
        g, _ = run_passes(g, [name], Context())
        want[name] = (len(g), [n for n, _, _ in neurons_of(g)], [])
    layers = analysis(g, "annotate-layers")
    want["annotate-layers"] = (len(g), want["recognize-neurons"][1], [layer.name for layer in layers])
    assert want["import"][0] > want["canonicalize"][0] and want["recognize-neurons"][1]
    for stage, (ir_nodes, neurons, layer_names) in want.items():
        out = tmp_path / stage
        res = _compile(tiny.onnx_path, "--data", data, "-o", out, *FAST, "--stop-after", stage)
        assert res.exit_code == 0, res.stderr
        doc = json.loads((out / "inspect.json").read_text())
        assert doc["onnx_nodes"] == onnx_nodes
        assert (doc["ir_nodes"], [n["name"] for n in doc["neurons"]], [x["name"] for x in doc["layers"]]) == (
            ir_nodes, neurons, layer_names), stage
        assert not (out / "plan.yaml").exists()
    # annotate-layers' inspect.json is hqc inspect's document
    fe = run_frontend(tiny.onnx_path)
    ref = inspect_dict(Frontend(fe.graph, fe.layers, fe.neurons, [], 0.0, fe.onnx_nodes))
    got = json.loads((tmp_path / "annotate-layers" / "inspect.json").read_text())
    for key in ("layers", "neurons", "totals", "ir_nodes", "input"):
        assert got[key] == ref[key], key


def test_stop_after_insert_quant_choices_saves_the_candidates(tiny, data, tmp_path):
    from hqc.passes.insert_quant_choices import as_search_space, resolve_candidates

    out = tmp_path / "q"
    res = _compile(tiny.onnx_path, "--data", data, "-o", out, *FAST, "--stop-after", "insert-quant-choices")
    assert res.exit_code == 0, res.stderr
    fe = run_frontend(tiny.onnx_path)
    want = {k: [c.name for c in v] for k, v in resolve_candidates(as_search_space(None), fe.layers).items()}
    assert json.loads((out / "choices.json").read_text())["layers"] == want


@pytest.mark.parametrize("step", ["lower-int", "verify", "emit"])
def test_start_from_gives_the_uninterrupted_outputs(full, tiny, data, tmp_path, step):
    import shutil

    out = tmp_path / "out"
    shutil.copytree(full[0], out)
    res = _compile(tiny.onnx_path, "--data", data, "-o", out, *FAST, "--start-from", step)
    assert res.exit_code == 0, res.stderr + res.stdout
    for name in ("model.int.onnx", "plan.yaml", "model.qat.onnx", "kernels/hqc_model.c"):
        assert (out / name).read_bytes() == (full[0] / name).read_bytes(), name
    low, ref = (_strip(json.loads((d / "lowering.json").read_text())) for d in (out, full[0]))
    assert low == ref
    assert _report(out) == _report(full[0])
    log = (out / "compile.log").read_text()
    names = [n for n, _ in STEPS]
    for name in names[names.index(step):]:
        assert f"step {name}:" in log
    for name in ("search", "finetune") + (("lower-int",) if step != "lower-int" else ()):
        assert f"step {name}:" not in log


def test_start_from_finetune_after_stop_after_search(tiny, data, tmp_path):
    out = tmp_path / "s"
    res = _compile(tiny.onnx_path, "--data", data, "-o", out, *FAST, "--stop-after", "search")
    assert res.exit_code == 0, res.stderr
    searched = (out / "plan.yaml").read_text()
    res = _compile(tiny.onnx_path, "--data", data, "-o", out, *FAST, "--start-from", "finetune")
    assert res.exit_code == 0, res.stderr + res.stdout
    import yaml

    before, after = yaml.safe_load(searched), yaml.safe_load((out / "plan.yaml").read_text())
    assert {k: v["choice"] for k, v in after["layers"].items()} == {k: v["choice"] for k, v in before["layers"].items()}
    assert json.loads((out / "verify.json").read_text())["identical"] is True
    check_compile_folder(out, tiny.onnx_path, data)  # the resumed folder's numbers recomputed


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("none", r"no such folder to --start-from"),
        ("empty", r"not a folder of hqc compile"),
        ("no_lowering", r"no lowering.json \(the lower-int step's output\)"),
        ("other_data", r"searched on other data"),
    ],
)
def test_start_from_missing_state_is_one_error_line(full, tiny, data, tmp_path, setup, message):
    import re
    import shutil

    out = tmp_path / "out"
    use_data = data
    if setup == "empty":
        out.mkdir()
    elif setup in ("no_lowering", "other_data"):
        shutil.copytree(full[0], out)
        if setup == "no_lowering":
            (out / "lowering.json").unlink()
        else:
            use_data = make_data(tmp_path / "other.npz", seed=5)
    before = sorted(p.name for p in out.iterdir()) if out.exists() else None
    res = _compile(tiny.onnx_path, "--data", use_data, "-o", out, *FAST, "--start-from", "verify")
    assert res.exit_code == 2, res.stderr + res.stdout
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert re.search(message, lines[0]), lines[0]
    assert (sorted(p.name for p in out.iterdir()) if out.exists() else None) == before
    assert not [n for n in tmp_path.iterdir() if n.name.startswith(".out.")]


def test_batchnorm_model_lowered_from_memory_as_from_model_qat_onnx(zoo_build, tmp_path):
    """A model whose BatchNorm statistics the search corrects under the plan: still one
    import, and the in-memory fine-tuned model lowers to the bytes that re-importing the
    folder's model.qat.onnx gives (the reference: hqc.lowerdir.lower on that file)."""
    import yaml

    from hqc.lowerdir import lower
    from tests.support import zoo
    from tests.support.data import zoo_data

    zm = zoo_build(zoo.sj_ms_resnet, {"dynamo": False, "variant": "ms"})
    data = zoo_data(zm, tmp_path / "events.npz")
    mp = pytest.MonkeyPatch()
    imports, loads = _counting(mp, "import_model"), _counting(mp, "load_data")
    try:
        out = tmp_path / "out"
        res = _compile(zm.onnx_path, "--data", data, "-o", out, *FAST)
    finally:
        mp.undo()
    assert res.exit_code == 0, res.stderr + res.stdout
    assert (len(imports), len(loads)) == (1, 1)
    assert yaml.safe_load((out / "plan.yaml").read_text())["search"]["bn_corrected"] > 0
    ref = lower(out / "model.qat.onnx", out / "plan.yaml", data=data)
    assert ref.onnx_model.SerializeToString() == (out / "model.int.onnx").read_bytes()
    assert ref.kernel_files["hqc_model.c"] == (out / "kernels" / "hqc_model.c").read_text()
