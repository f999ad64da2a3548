"""The search loop and `hqc search`: a valid plan.yaml and model.qat.onnx on a tiny model,
same seed → same plan, resume after an interruption equals an uninterrupted run, a user
plan skips the search, torchrun with 2 processes, bad input as one line with exit code 2;
and (slow, when examples/ndigits ships a model) the figures on N-Digits."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
import yaml
from click.testing import CliRunner
from onnx import numpy_helper

from hqc.backend import TorchModel
from hqc.choices import parse_choice
from hqc.cli import main
from hqc.cli_search import DEFAULTS
from hqc.errors import ConfigError
from hqc.pipeline import run_frontend
from hqc.plan import read_plan
from hqc.search import SearchConfig, SearchStopped, run_search
from hqc.targets import load_target, model_cost
from tests.support import NDIGITS, REPO
from tests.support.data import TINY, make_data
from tests.support.zoo import example_spikformer

FAST = dict(epochs=2, finetune_epochs=1, batch_size=16, scale_refresh=4)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def tiny(zoo_build):
    return zoo_build(example_spikformer, TINY).onnx_path


@pytest.fixture
def data(tmp_path):
    return make_data(tmp_path / "tiny.npz")


def _run(model, data, out, **kw):
    cfg = SearchConfig(**{**FAST, **kw.pop("cfg", {})})
    return run_search(model, data, out_dir=out, config=cfg, **kw)


def _weights_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


# ----------------------------------------------------------------------------- runs


def test_search_writes_a_valid_plan_and_qat_model(tiny, data, tmp_path):
    res = _run(tiny, data, tmp_path / "out")
    fe = run_frontend(tiny)
    plan = read_plan(res.plan_path, fe.layers)
    assert plan == res.plan
    doc = yaml.safe_load(res.plan_path.read_text())
    assert doc["schema"] == "hqc.plan/1" and doc["target"] == "cmos45" and doc["seed"] == 0
    assert doc["lambda"] == SearchConfig().lam and doc["epochs"] == 2 and doc["finetune_epochs"] == 1
    assert doc["data"]["fingerprint"] and doc["data"]["path"] == str(data)
    assert set(doc["accuracy"]) == {"split", "float", "fake_quant", "fake_quant_before_finetune", "test"}
    assert doc["accuracy"]["test"] is None  # the data has no test split
    assert doc["accuracy"]["split"] == "val"
    ratio = model_cost(fe.layers, plan, load_target("cmos45")).ratios["energy_total_pj"]
    assert doc["energy"]["ratio"] == pytest.approx(ratio, rel=1e-5)
    assert 0 < doc["energy"]["expected_ratio"] <= 1
    for layer in fe.layers:
        entry = doc["layers"][layer.name]
        assert entry["candidates"] == ["fp32", "uni4", "uni2", "pot4", "pot2"]
        assert len(entry["history"]) == 2 and all(len(r) == 5 for r in entry["history"])
        assert entry["probability"] == pytest.approx(max(entry["history"][-1]), abs=1e-6)
        assert entry["history"][-1][entry["candidates"].index(entry["choice"])] == entry["probability"]
    # model.qat.onnx: same layers, the fine-tuned weights, the same function
    qat = run_frontend(res.qat_model_path)
    assert [layer.name for layer in qat.layers] == [layer.name for layer in fe.layers]
    for name, w in res.weights.items():
        np.testing.assert_array_equal(qat.graph.constants[name], w)
    changed = [layer.weight for layer in fe.layers
               if not np.array_equal(fe.graph.constants[layer.weight], res.weights[layer.weight])]
    assert len(changed) >= len(fe.layers) - 1
    x = torch.from_numpy(np.load(data)["x_val"][:8].astype(np.float32))
    with torch.no_grad():
        m = TorchModel(qat.graph).eval()
        for name, w in res.weights.items():
            assert np.array_equal(m.parameter(name).detach().numpy(), w)
        assert m(x).shape == (8, 10)


def test_same_seed_same_plan_and_weights(tiny, data, tmp_path):
    a = _run(tiny, data, tmp_path / "a", cfg={"finetune_epochs": 0})
    b = _run(tiny, data, tmp_path / "b", cfg={"finetune_epochs": 0})
    assert a.plan == b.plan and _weights_equal(a.weights, b.weights)
    assert a.document["layers"] == b.document["layers"]


@pytest.mark.parametrize("stop", [1, 3], ids=["during-search", "during-finetune"])
def test_resume_after_interruption_equals_uninterrupted_run(tiny, data, tmp_path, stop):
    ref = _run(tiny, data, tmp_path / "ref", cfg={"finetune_epochs": 2})
    out = tmp_path / "cut"
    with pytest.raises(SearchStopped):
        _run(tiny, data, out, cfg={"finetune_epochs": 2}, stop_after_epoch=stop)
    assert (out / "search.ckpt").is_file() and not (out / "plan.yaml").exists()
    res = _run(tiny, data, out, cfg={"finetune_epochs": 2}, resume=True)
    assert res.plan == ref.plan
    assert _weights_equal(res.weights, ref.weights)
    assert res.document["layers"] == ref.document["layers"]
    assert res.fake_quant_accuracy == ref.fake_quant_accuracy


def test_resume_refuses_a_checkpoint_of_another_run(tiny, data, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(SearchStopped):
        _run(tiny, data, out, stop_after_epoch=1)
    with pytest.raises(ConfigError, match=r"search\.ckpt: checkpoint belongs to a different run"):
        _run(tiny, data, out, cfg={"seed": 1}, resume=True)
    (out / "search.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match=r"search\.ckpt: unreadable checkpoint"):
        _run(tiny, data, out, resume=True)


def test_user_plan_skips_the_search(tiny, data, tmp_path):
    fe = run_frontend(tiny)
    user = tmp_path / "mine.yaml"
    user.write_text("layers:\n" + "".join(f"  {layer.name}: uni4\n" for layer in fe.layers))
    res = _run(tiny, data, tmp_path / "out", plan=user, cfg={"finetune_epochs": 0})
    assert set(res.plan.values()) == {parse_choice("uni4")}
    assert res.expected_energy_ratio is None
    for layer in fe.layers:  # nothing trained: the weights are the imported ones
        np.testing.assert_array_equal(res.weights[layer.weight], fe.graph.constants[layer.weight])
    doc = yaml.safe_load(res.plan_path.read_text())
    assert doc["source_plan"] == str(user) and doc["epochs"] == 0
    assert "history" not in doc["layers"][fe.layers[0].name]
    res2 = _run(tiny, data, tmp_path / "out2", plan=user, cfg={"finetune_epochs": 1})
    assert res2.plan == res.plan
    assert not _weights_equal(res2.weights, res.weights)


def test_search_space_config_restricts_the_search(tiny, data, tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text("add: [uni8]\nlayers:\n  head: [uni8]\n  sps.proj_conv: {min_bits: 4}\n")
    res = _run(tiny, data, tmp_path / "out", search_space=space, cfg={"epochs": 1, "finetune_epochs": 0})
    assert res.plan["head"] == parse_choice("uni8")
    assert res.plan["sps.proj_conv"].bits >= 4
    assert res.document["layers"]["head"]["candidates"] == ["uni8"]


def test_dynamo_export_keeps_layer_names_in_the_qat_model(zoo_build, tmp_path):
    model = zoo_build(example_spikformer, {**TINY, "dynamo": True}).onnx_path
    data = make_data(tmp_path / "d.npz")
    res = _run(model, data, tmp_path / "out", cfg={"epochs": 1, "finetune_epochs": 0})
    names = [layer.name for layer in run_frontend(model).layers]
    assert [layer.name for layer in run_frontend(res.qat_model_path).layers] == names
    assert read_plan(res.plan_path, run_frontend(res.qat_model_path).layers) == res.plan


# ----------------------------------------------------------------------------- CLI


def _cli(args):
    res = CliRunner().invoke(main, args)
    return res.exit_code, res.stdout, res.stderr


def test_cli_search_runs_and_prints_a_summary(tiny, data, tmp_path):
    code, out, err = _cli(["search", str(tiny), "--data", str(data), "--epochs", "1",
                           "--finetune-epochs", "0", "--batch-size", "16", "-o", str(tmp_path / "o"),
                           "--no-progress"])
    assert code == 0, err
    assert "plan" in out and "energy" in out and (tmp_path / "o" / "plan.yaml").is_file()


def test_cli_defaults_are_the_library_defaults():
    cfg = SearchConfig()
    assert DEFAULTS == {"lam": cfg.lam, "epochs": cfg.epochs, "finetune_epochs": cfg.finetune_epochs,
                        "batch_size": cfg.batch_size}


@pytest.mark.parametrize(("case", "message"), [
    ("shape", r"error: .*bad\.npz: 'x' samples have shape \[2, 2, 8, 8\]; the model expects \[2, 2, 16, 16\]"),
    ("labels", r"error: .*bad\.npz: 'y' has label 12, outside 0\.\.9"),
    ("empty", r"error: .*bad\.npz: split 'val' \('x_val'\) is empty"),
    ("holdout", r"error: .*bad\.npz: the training split has 1 samples of 1 classes, one per class; .* needs at least 2 samples of a class"),
    ("lambda", r"error: options: lambda must be ≥ 0, got -0\.5"),
    ("epochs", r"error: options: epochs must be ≥ 0, got -1"),
    ("plan", r"error: .*nope\.yaml: no such plan file"),
    ("threads", r"error: --threads must be >= 1, got 0"),
])
def test_cli_bad_input_is_one_line_exit_2(tiny, tmp_path, case, message):
    bad = tmp_path / "bad.npz"
    args = ["search", str(tiny), "--data", str(bad), "-o", str(tmp_path / "o"), "--no-progress"]
    if case == "shape":
        make_data(bad, shape=(2, 2, 8, 8))
    elif case == "labels":
        make_data(bad, y=np.full(96, 12))
    elif case == "empty":
        make_data(bad, x_val=np.zeros((0, 2, 2, 16, 16), np.uint8), y_val=np.zeros(0, np.int64))
    elif case == "holdout":
        make_data(bad, n=1)
    else:
        make_data(bad)
    args += {"lambda": ["--lambda", "-0.5"], "epochs": ["--epochs", "-1"],
             "plan": ["--plan", str(tmp_path / "nope.yaml")], "threads": ["--threads", "0"]}.get(case, [])
    code, out, err = _cli(args)
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert pytest.importorskip("re").match(message, lines[0]), lines[0]


# ----------------------------------------------------------------------------- processes


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"
    return env


def _hqc_args(model, data, out, *extra):
    return ["search", str(model), "--data", str(data), "-o", str(out), "--epochs", "2",
            "--finetune-epochs", "1", "--batch-size", "16", "--threads", "1", "--no-progress", *extra]


def _qat_weights(path: Path) -> dict[str, np.ndarray]:
    return {t.name: numpy_helper.to_array(t) for t in onnx.load(path).graph.initializer}


def test_torchrun_two_processes_gloo_equals_one_process(tiny, data, tmp_path):
    """2 ranks (torchrun, gloo) against 1 process, same seed and data. They compute the
    same thing: `batch_size` is the global batch and DistributedSampler gives rank r the
    permutation's entries r, r+2, … of the one-process order, so the two ranks' batches
    of 8 together are the one-process batch of 16 (78 search, 18 held-out, 96 fine-tune
    samples: every batch splits into equal halves), and the averaged gradients are its
    gradients up to the order of float sums. So the plan (every choice) and the
    accuracies are equal; probabilities and weights differ by rounding only (measured:
    probabilities ≤ 1e-6 as written with 6 digits, weights ≤ 2e-7 of each tensor's
    largest entry). An accuracy may differ by at most one validation sample whose logits
    tie within that rounding (none did when measured)."""
    torchrun = Path(sys.executable).with_name("torchrun")
    out = tmp_path / "dist"
    cmd = [str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "hqc.cli",
           *_hqc_args(tiny, data, out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("plan ") == 1  # rank 0 alone prints
    one = tmp_path / "one"
    res = CliRunner().invoke(main, _hqc_args(tiny, data, one))
    assert res.exit_code == 0, res.stderr + res.stdout

    fe = run_frontend(tiny)
    assert read_plan(out / "plan.yaml", fe.layers) == read_plan(one / "plan.yaml", fe.layers)
    d2, d1 = (yaml.safe_load((d / "plan.yaml").read_text()) for d in (out, one))
    assert (d2["search"]["world_size"], d1["search"]["world_size"]) == (2, 1)
    assert d2["layers"].keys() == d1["layers"].keys() == {layer.name for layer in fe.layers}
    for name, e1 in d1["layers"].items():
        e2 = d2["layers"][name]
        assert (e2["choice"], e2["candidates"]) == (e1["choice"], e1["candidates"]), name
        np.testing.assert_allclose(e2["history"], e1["history"], atol=1e-5, err_msg=name)
    n_val = len(np.load(data)["y_val"])
    for key in ("float", "fake_quant", "fake_quant_before_finetune"):
        assert d2["accuracy"][key] == pytest.approx(d1["accuracy"][key], abs=1 / n_val + 1e-9), key
    assert d2["energy"] == d1["energy"]  # a function of the plan alone
    w2, w1 = _qat_weights(out / "model.qat.onnx"), _qat_weights(one / "model.qat.onnx")
    assert w2.keys() == w1.keys()
    for name, w in w1.items():
        np.testing.assert_allclose(w2[name], w, rtol=0, atol=1e-5 * max(1e-12, float(np.abs(w).max())),
                                   err_msg=name)


@pytest.mark.slow
def test_killed_process_resumes_to_the_same_plan(tiny, data, tmp_path):
    hqc = [sys.executable, "-m", "hqc.cli"]
    ref = tmp_path / "ref"
    subprocess.run([*hqc, *_hqc_args(tiny, data, ref)], check=True, env=_env(), timeout=600,
                   capture_output=True)
    out = tmp_path / "cut"
    proc = subprocess.Popen([*hqc, *_hqc_args(tiny, data, out)], env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt = out / "search.ckpt"
    deadline = time.monotonic() + 300
    while not ckpt.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "plan.yaml").exists()
    subprocess.run([*hqc, *_hqc_args(tiny, data, out, "--resume")], check=True, env=_env(),
                   timeout=600, capture_output=True)
    a = yaml.safe_load((ref / "plan.yaml").read_text())
    b = yaml.safe_load((out / "plan.yaml").read_text())
    assert a["layers"] == b["layers"] and a["accuracy"] == b["accuracy"]


# ----------------------------------------------------------------------------- N-Digits


def _ndigits():
    model, data = NDIGITS / "spikformer.onnx", NDIGITS / "ndigits.npz"
    if not (model.is_file() and data.is_file()):
        pytest.skip("examples/ndigits/spikformer.onnx is not shipped yet")
    return model, data


def _judged(res) -> tuple[float, float]:
    """(float, fake-quant) accuracy on the split the 1-point bar is judged on: the test
    split. The shipped float checkpoint is the best-val epoch of its training, so its val
    accuracy is the maximum of 30 draws and any retrained model regresses on val by
    selection alone; nothing chose anything on the test split (docs/search.md)."""
    test = res.document["accuracy"]["test"]
    assert test is not None, "examples/ndigits ships a test split"
    return test["float"], test["fake_quant"]


@pytest.mark.slow
def test_ndigits_lambda_zero_keeps_accuracy(tmp_path):
    model, data = _ndigits()
    res = run_search(model, data, out_dir=tmp_path / "l0", config=SearchConfig(lam=0.0))
    fl, fq = _judged(res)
    assert fq >= fl - 0.01, (fl, fq, res.float_accuracy, res.fake_quant_accuracy)


@pytest.mark.slow
def test_ndigits_default_lambda_meets_the_budget(tmp_path):
    model, data = _ndigits()
    res = run_search(model, data, out_dir=tmp_path / "default")
    assert res.energy_ratio <= 0.15
    fl, fq = _judged(res)
    assert fq >= fl - 0.01, (fl, fq, res.float_accuracy, res.fake_quant_accuracy)


@pytest.mark.slow
def test_ndigits_lambda_sweep_is_monotone(tmp_path):
    model, data = _ndigits()
    expected, plans = [], []
    for lam in (0.0, 0.01, 0.1, 1.0):
        res = run_search(model, data, out_dir=tmp_path / f"l{lam}",
                         config=SearchConfig(lam=lam, finetune_epochs=0))
        expected.append(res.expected_energy_ratio)
        plans.append(res.energy_ratio)
        shutil.rmtree(tmp_path / f"l{lam}", ignore_errors=True)
    assert all(b <= a for a, b in zip(expected, expected[1:], strict=False)), expected
    assert all(b <= a for a, b in zip(plans, plans[1:], strict=False)), plans

@pytest.mark.slow
@pytest.mark.parametrize("q", ["uni2", "pot2"])
def test_ndigits_two_bit_plans_recover_within_three_points(tmp_path, q):
    """Issue 14's bar: every layer at 2 bits, the default fine-tune (learned scales,
    distillation, warm-up + cosine), within 3 points of the float model on test."""
    model, data = _ndigits()
    fe = run_frontend(model)
    plan = tmp_path / "plan.yaml"
    plan.write_text("layers:\n" + "".join(f"  {layer.name}: {q}\n" for layer in fe.layers))
    res = run_search(model, data, out_dir=tmp_path / q, plan=plan)
    fl, fq = _judged(res)
    assert fq >= fl - 0.03, (fl, fq)


def test_task_loss_is_cross_entropy_plus_distillation():
    from hqc.search import task_loss

    torch.manual_seed(0)
    logits, teacher = torch.randn(6, 10), torch.randn(6, 10)
    y = torch.arange(6)
    ce = torch.nn.functional.cross_entropy(logits, y)
    assert torch.equal(task_loss(logits, y), ce)
    assert torch.equal(task_loss(logits, y, teacher, 0.0), ce)
    assert task_loss(logits, y, logits, 1.0).abs() < 1e-6  # the student is the teacher
    p = teacher.softmax(-1)
    kl = (p * (p.log() - logits.log_softmax(-1))).sum(-1).mean()
    torch.testing.assert_close(task_loss(logits, y, teacher, 0.25), 0.75 * ce + 0.25 * kl)


def test_learned_scales_reach_the_lowering_bit_exact(tiny, data, tmp_path):
    """The fine-tune's learned scales travel in scales.npz (named by plan.yaml) to the
    lowering, which uses exactly them: integer codes = hqc.quant's codes under those
    scales, numpy = onnxruntime = C, and the fake-quant model of `hqc verify` (same scales)
    predicts what the integer model predicts."""
    from hqc.lowerdir import lower_model
    from hqc.lowering.weights import layer_weight
    from hqc.quant import channel_scales, kmax_pot, load_scales, quantize_codes
    from hqc.verification import verify_dir

    fe = run_frontend(tiny)
    cycle = ["uni2", "pot2", "uni4", "pot4", "fp32"]
    user = tmp_path / "mine.yaml"
    user.write_text("layers:\n" + "".join(f"  {layer.name}: {cycle[i % 5]}\n" for i, layer in enumerate(fe.layers)))
    res = _run(tiny, data, tmp_path / "out", plan=user, cfg={"finetune_epochs": 1, "scale_lr": 1e-2})
    quantized = [layer for layer in fe.layers if res.plan[layer.name].kind != "fp32"]
    assert set(res.scales) == {layer.name for layer in quantized}
    assert yaml.safe_load(res.plan_path.read_text())["scales"] == "scales.npz"
    on_disk = load_scales(res.scales_path)
    qat = run_frontend(res.qat_model_path)
    moved = 0
    for layer in quantized:
        choice, s = on_disk[layer.name]
        assert choice == res.plan[layer.name].name
        np.testing.assert_array_equal(s, res.scales[layer.name][1])
        moved += not np.array_equal(s, channel_scales(layer_weight(qat.graph, layer), res.plan[layer.name]))
    assert moved == len(quantized)  # the learned scales are not the recomputed ones

    out = tmp_path / "int"
    low = lower_model(res.qat_model_path, res.plan_path, out, data=str(data))
    assert low.doc["scales"]["layers"] == sorted(res.scales)
    by_layer = {n.attrs["layer"]: n.attrs["w"] for n in low.lowered.graph.nodes() if "layer" in n.attrs and "w" in n.attrs}
    for layer in quantized:
        c, s = res.plan[layer.name], on_disk[layer.name][1]
        codes = quantize_codes(layer_weight(qat.graph, layer), c, s)
        if c.kind == "uniform":
            want = codes[0].astype(np.int64)
        else:
            mag = np.left_shift(np.int64(1), kmax_pot(c.bits) - codes[1].astype(np.int64))
            want = np.where(codes[0] > 0, -mag, mag)
        np.testing.assert_array_equal(by_layer[layer.name].reshape(want.shape), want)
    vr = verify_dir(out, data)
    assert vr.identical and vr.agree == {"onnxruntime": vr.samples, "c": vr.samples}
    assert vr.float_vs_int_predictions == vr.samples and vr.spike_agreement >= 0.999
    # a plan.yaml whose scales file is missing is one error line, not a silent recompute
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(res.plan_path, alone / "plan.yaml")
    r = CliRunner().invoke(main, ["lower", str(res.qat_model_path), "--plan", str(alone / "plan.yaml"),
                                  "-o", str(tmp_path / "int2")])
    assert r.exit_code == 2 and "not a learned-scales file" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "int2").exists()


@pytest.mark.parametrize("plan_q", ["uni2", "fp32"])
def test_batchnorm_statistics_follow_the_quantized_model(tmp_path, plan_q):
    """After `correct_batchnorm` every BatchNormalization output of the quantized model has
    the per-channel mean and variance of the float model's on the calibration samples
    (the hand algebra of the docstring); with an all-fp32 plan nothing changes."""
    from hqc.data import Split
    from hqc.search import correct_batchnorm
    from hqc.supernet import Supernet
    from tests.support.lowering import bn_forms_onnx, events

    fe = run_frontend(bn_forms_onnx(tmp_path, False))
    bns = [n for n in fe.graph.nodes() if n.op == "BatchNormalization"]
    assert bns  # the BatchNorm1d stays a node (the exporter folds the one after the Conv)
    before = {t: fe.graph.constants[t].copy() for n in bns for t in n.inputs[3:5]}
    net = Supernet(TorchModel(fe.graph), fe.layers, {layer.name: [parse_choice(plan_q)] for layer in fe.layers},
                   load_target("cmos45"))
    x = events((48, 2, 5, 8), seed=3, lam=1.0)
    split = Split(x, np.zeros(len(x), np.int64))
    outs = [n.outputs[0] for n in bns]

    def stats():
        with torch.no_grad():
            got = net.model.forward_all(torch.from_numpy(x), names=outs)
        return [(o.double().movedim(2, 0).reshape(o.shape[2], -1).mean(1),
                 o.double().movedim(2, 0).reshape(o.shape[2], -1).var(1, unbiased=False)) for o in got]

    net.eval()
    net.set_float()
    ref = stats()
    net.set_plan({layer.name: parse_choice(plan_q) for layer in fe.layers})
    off = stats()
    done = correct_batchnorm(net, split, 48, 16)
    assert done == [n.name for n in bns]
    got = stats()
    for (mf, vf), (mq, vq), (m0, _) in zip(ref, got, off, strict=True):
        np.testing.assert_allclose(mq.numpy(), mf.numpy(), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(vq.numpy(), vf.numpy(), rtol=1e-4, atol=1e-6)
        if plan_q == "uni2":
            assert not torch.allclose(m0, mf, rtol=1e-3, atol=1e-4)  # uni2 had moved them
    for t, v in before.items():  # the graph (model.qat.onnx) carries the new statistics
        if plan_q == "fp32":
            np.testing.assert_allclose(fe.graph.constants[t], v, rtol=1e-6, atol=1e-7)
        else:
            assert fe.graph.constants[t].dtype == v.dtype
    if plan_q == "uni2":
        assert any(not np.allclose(fe.graph.constants[t], v) for t, v in before.items())


@pytest.mark.slow  # ~40 s each on the shared 2-core machine
@pytest.mark.parametrize("builder", ["sj_spiking_vgg", "sj_ms_resnet"])
def test_zoo_model_with_batchnorm_fine_tunes_and_lowers_bit_exact(zoo_build, tmp_path, builder):
    """SpikingJelly zoo nets that keep BatchNormalization nodes (dynamo export): the
    fine-tune with learned scales, the BatchNorm correction, then lower + verify: numpy =
    onnxruntime = C, the integer model predicts the fake-quant model's class."""
    from hqc.lowerdir import lower_model
    from hqc.verification import verify_dir
    from tests.support import zoo

    sys.path.insert(0, str(REPO / "benchmarks"))
    from zoo_lowering_table import _samples

    kwargs = {"sj_spiking_vgg": {"dynamo": True}, "sj_ms_resnet": {"dynamo": True, "variant": "ms"}}[builder]
    zm = zoo_build(getattr(zoo, builder), kwargs)
    fe = run_frontend(zm.onnx_path)
    assert "BatchNormalization" in fe.graph.ops()
    x = _samples(zm, 24, seed=11)
    y = np.random.default_rng(12).integers(0, 10, size=len(x))
    data = tmp_path / "events.npz"
    np.savez(data, x=x, y=y, x_val=x[:16], y_val=y[:16])
    cycle = ["uni2", "pot2", "uni4", "pot4"]
    user = tmp_path / "plan.yaml"
    user.write_text("layers:\n" + "".join(f"  {layer.name}: {cycle[i % 4]}\n" for i, layer in enumerate(fe.layers)))
    res = _run(zm.onnx_path, data, tmp_path / "out", plan=user, cfg={"finetune_epochs": 1, "batch_size": 8})
    assert res.document["search"]["bn_corrected"] > 0
    assert set(res.scales) == {layer.name for layer in fe.layers}
    low = lower_model(res.qat_model_path, res.plan_path, tmp_path / "int", data=str(data))
    assert low.doc["scales"]["layers"] == sorted(res.scales)
    v = verify_dir(tmp_path / "int", data, "val")
    assert v.agree == {"onnxruntime": v.samples, "c": v.samples}, v.agree
    assert v.float_vs_int_predictions >= v.samples - 1 and v.spike_agreement >= 0.99, (
        v.float_vs_int_predictions, v.spike_agreement)
