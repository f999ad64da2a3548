"""The exit codes of `hqc` (README "Exit codes"): 0 ok, 1 verification disagreement,
2 user error, 3 internal error (one line; --debug gives the traceback), 130 interrupted."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import onnx
import pytest
import yaml
from click.testing import CliRunner
from onnx import numpy_helper

import hqc.pipeline
import hqc.verification
from hqc.cli import main
from hqc.pipeline import run_frontend
from hqc.verification import VerifyResult
from tests.support import REPO
from tests.support.data import TINY, make_data
from tests.support.zoo import example_spikformer

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _run(*args: str):
    res = CliRunner().invoke(main, [str(a) for a in args])
    return res.exit_code, res.stdout, res.stderr, res


@pytest.fixture(scope="module")
def lowered(zoo_build, tmp_path_factory):
    """The tiny Spikformer, an all-uni4 plan, its data and its lowering folder."""
    d = tmp_path_factory.mktemp("exit")
    model = zoo_build(example_spikformer, TINY).onnx_path
    plan = d / "plan.yaml"
    plan.write_text(yaml.safe_dump({"version": 1, "layers": {x.name: "uni4" for x in run_frontend(model).layers}}))
    data = make_data(d / "d.npz")
    code, _, err, _ = _run("lower", model, "--plan", plan, "-o", d / "low", "--data", data)
    assert code == 0, err
    return model, plan, data, d / "low"


def test_0_ok(lowered):
    _, _, data, low = lowered
    code, out, err, _ = _run("verify", low, "--data", data, "--limit", "4", "--no-c", "--no-float")
    assert code == 0, err
    assert "4/4 identical integer logits" in out


def test_1_verify_disagreement(lowered, tmp_path):
    """Tamper with the integer model's LIF biases: onnxruntime now differs from the numpy
    reference, which still runs the untouched lowered IR."""
    import shutil

    _, _, data, low = lowered
    bad = tmp_path / "low"
    shutil.copytree(low, bad)
    m = onnx.load(str(bad / "model.int.onnx"))
    changed = 0
    for t in m.graph.initializer:
        if "_bias" in t.name:
            t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t) + (1 << 20), t.name))
            changed += 1
    assert changed
    onnx.save(m, str(bad / "model.int.onnx"))
    code, out, err, _ = _run("verify", bad, "--data", data, "--limit", "4", "--no-c", "--no-float")
    assert code == 1, (out, err)
    m_ = re.search(r"numpy reference vs onnxruntime\s+(\d+)/4 identical", out)
    assert m_ and int(m_.group(1)) < 4, out


def test_1_compile_disagreement_leaves_no_folder(lowered, tmp_path, monkeypatch):
    model, plan, data, _ = lowered
    real = hqc.verification.verify_dir

    def disagreeing(*args, **kwargs) -> VerifyResult:
        r = real(*args, **kwargs)
        r.agree["onnxruntime"] = r.samples - 1
        return r

    monkeypatch.setattr(hqc.verification, "verify_dir", disagreeing)
    out = tmp_path / "out"
    code, _, err, _ = _run("compile", model, "--data", data, "--plan", plan, "--finetune-epochs", "0",
                           "--verify-limit", "4", "--no-progress", "-o", out)
    assert code == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0] == (
        "error: verification failed: integer logits differ between the numpy reference and "
        "{'onnxruntime': 3, 'c': 4} of 4 samples"), lines
    assert not out.exists() and os.listdir(tmp_path) == []


@pytest.mark.parametrize("args", [["inspect", "nope.onnx"], ["compile", "--epochs", "x"], ["search", "--device", "gpu"],
                                  ["frobnicate"]])
def test_2_user_error(args, tmp_path):
    code, out, err, _ = _run(*args)
    assert code == 2, (out, err)
    assert "Traceback" not in err


def test_2_user_error_is_one_line(tmp_path):
    code, _, err, _ = _run("inspect", tmp_path / "nope.onnx")
    assert code == 2 and err.strip().splitlines() == [f"error: {tmp_path / 'nope.onnx'}: no such file"]


def _boom(exc: BaseException):
    def run_frontend(*args, **kwargs):
        raise exc

    return run_frontend


def test_3_internal_error_one_line_and_debug_traceback(lowered, monkeypatch):
    model = lowered[0]
    monkeypatch.setattr(hqc.pipeline, "run_frontend", _boom(RuntimeError("boom\nsecond line")))
    code, out, err, _ = _run("inspect", model)
    assert code == 3
    assert err.strip().splitlines() == ["internal error: RuntimeError: boom (rerun with --debug for details)"]
    code, _, _, res = _run("--debug", "inspect", model)
    assert isinstance(res.exception, RuntimeError) and str(res.exception) == "boom\nsecond line"
    assert res.exc_info is not None and res.exc_info[2] is not None  # the traceback is there


def test_130_interrupted(lowered, monkeypatch):
    monkeypatch.setattr(hqc.pipeline, "run_frontend", _boom(KeyboardInterrupt()))
    code, _, err, _ = _run("inspect", lowered[0])
    assert code == 130 and err.strip() == "interrupted"


def test_exit_code_of_the_process(tmp_path):
    """The console entry point returns the same codes to the shell."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.run([sys.executable, "-m", "hqc", "inspect", str(tmp_path / "nope.onnx")],
                       capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    assert p.returncode == 2 and p.stderr.strip() == f"error: {tmp_path / 'nope.onnx'}: no such file"
    p = subprocess.run([sys.executable, "-m", "hqc", "targets", "list"], capture_output=True, text=True,
                       env=env, cwd=REPO, timeout=120)
    assert p.returncode == 0 and "cmos45" in p.stdout

