"""The emitted C under the compiler's strictest eye: it builds with -Wall -Wextra -Werror
-pedantic, runs clean under AddressSanitizer and UndefinedBehaviorSanitizer (any report
aborts: -fno-sanitize-recover=all) with logits equal to the numpy reference's, and the
Makefile honours CC/CFLAGS from the environment and builds libhqc_model.a for firmware,
which a caller links against with its own arena."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from hqc import ckernels, intref
from tests.support import REPO
from tests.support.lowering import TINY, events, groups_of, lower_zoo, mixed_plan
from tests.support.zoo import example_spikformer

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("make") is None,
                                reason="gcc and make are needed")

STRICT = "-O1 -std=c99 -Wall -Wextra -Werror -pedantic"
SANITIZE = "-g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all"


def _sanitizer_env() -> dict[str, str]:
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = "detect_leaks=1:abort_on_error=0:exitcode=99"
    env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1:exitcode=98"
    return env


def _check_sanitized(d: Path, x: np.ndarray, ref: np.ndarray) -> None:
    exe = ckernels.build(d, make_vars={"CFLAGS": f"{STRICT} {SANITIZE}"})
    inp = d / "input.bin"
    x.astype("<i2").tofile(inp)
    res = subprocess.run([str(exe), str(inp)], capture_output=True, text=True, env=_sanitizer_env(), timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "runtime error" not in res.stderr and "AddressSanitizer" not in res.stderr, res.stderr[-2000:]
    got = np.array([ln.split() for ln in res.stdout.splitlines()], np.int64)
    assert np.array_equal(got, ref.reshape(len(ref), -1))


@pytest.fixture(scope="module", params=[False, True], ids=["ts", "dynamo"])
def tiny(request, zoo_build, tmp_path_factory):
    """The tiny zoo Spikformer, every quantizer in its plan, lowered and written out."""
    zm = zoo_build(example_spikformer, {**TINY, "dynamo": request.param})
    fe, _plan, lm = lower_zoo(zm, plan_offset=2)
    d = tmp_path_factory.mktemp("safety")
    ckernels.write_kernels(lm.graph, d)
    return zm, fe, lm, d


def test_strict_warnings_build(tiny):
    *_, d = tiny
    res = subprocess.run(["make", "-s", "-C", str(d), "CFLAGS=-O2 -std=c99 -Wall -Wextra -Werror -pedantic"],
                         capture_output=True, text=True)
    assert res.returncode == 0 and "warning" not in res.stderr, res.stderr[-2000:]


def test_sanitizers_clean_on_verify_inputs(tiny):
    zm, fe, lm, d = tiny
    x = groups_of(events((12, zm.T, 2, 16, 16), seed=11, lam=0.8), fe)
    x[0] = 0  # the silent input
    ref = intref.run(lm.graph, x)[0]
    _check_sanitized(d, x, ref)


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["ndigits", "motion"])
def test_sanitizers_clean_on_shipped_model_and_its_static_ram(dataset, tmp_path):
    from hqc.passes.lower_int import lower_graph
    from hqc.pipeline import run_frontend

    repo = REPO
    fe = run_frontend(repo / "examples" / dataset / "spikformer.onnx")
    lm = lower_graph(fe.graph, fe.layers, mixed_plan(fe.layers), input_range=(0, 255))
    ckernels.write_kernels(lm.graph, tmp_path)
    with np.load(repo / "examples" / dataset / f"{dataset}.npz") as z:
        x = groups_of(z["x_val"][:6].astype(np.float32), fe)
    ref = intref.run(lm.graph, x)[0]
    _check_sanitized(tmp_path, x, ref)
    # issue 15's bar: the test binary's static RAM (data + bss, the arena included) ≤ 512 KiB
    mem = ckernels.memory_section(ckernels.emit_kernels(lm.graph).files)
    assert mem["arena_bytes"] <= mem["static_ram_bytes"] <= 512 * 1024, mem


def test_makefile_honours_cc_and_cflags_from_the_environment(tiny, tmp_path):
    *_, d = tiny
    log = tmp_path / "cc.log"
    wrapper = tmp_path / "mycc"
    wrapper.write_text(f'#!/bin/sh\necho "$@" >> {log}\nexec gcc "$@"\n')
    wrapper.chmod(0o755)
    env = {**os.environ, "CC": str(wrapper), "CFLAGS": "-O1 -std=c99 -DHQC_FROM_ENV=1"}
    subprocess.run(["make", "-s", "-C", str(d), "clean"], check=True)
    res = subprocess.run(["make", "-s", "-C", str(d)], capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr
    calls = log.read_text()
    assert "-DHQC_FROM_ENV=1" in calls and "-O2" not in calls
    # without CC in the environment the Makefile's gcc, with its default flags
    env = {k: v for k, v in os.environ.items() if k not in ("CC", "CFLAGS")}
    subprocess.run(["make", "-s", "-C", str(d), "clean"], check=True)
    res = subprocess.run(["make", "-C", str(d)], capture_output=True, text=True, env=env)
    assert res.returncode == 0 and re.search(r"^gcc +-O2 -std=c99 ", res.stdout, re.M), res.stdout


def test_make_lib_links_into_a_firmware_style_caller(tiny, tmp_path):
    zm, fe, lm, d = tiny
    lib = ckernels.build(d, target="lib")
    assert lib.name == "libhqc_model.a" and lib.is_file()
    caller = tmp_path / "fw.c"
    caller.write_text(FIRMWARE)
    exe = tmp_path / "fw"
    subprocess.run(["gcc", "-O2", "-std=c99", "-Wall", "-Wextra", "-Werror", "-I", str(d), "-o", str(exe),
                    str(caller), str(lib)], check=True, capture_output=True, text=True)
    x = groups_of(events((3, zm.T, 2, 16, 16), seed=5, lam=0.7), fe)
    ref = intref.run(lm.graph, x)[0].reshape(3, -1)
    inp = tmp_path / "in.bin"
    x.astype("<i2").tofile(inp)
    res = subprocess.run([str(exe), str(inp)], capture_output=True, text=True, check=True)
    got = np.array([ln.split() for ln in res.stdout.splitlines()], np.int64)
    assert np.array_equal(got, ref)


#: A caller as firmware would write it: its own arena, no heap; reads raw int16 records.
FIRMWARE = r"""
#include <stdio.h>
#include <stdint.h>
#include "hqc_model.h"

static hqc_arena_t arena[HQC_ARENA_WORDS];

int main(int argc, char **argv)
{
    static int16_t x[HQC_INPUT_SIZE];
    int64_t logits[HQC_OUTPUT_SIZE];
    int j;
    FILE *f = argc > 1 ? fopen(argv[1], "rb") : NULL;
    if (f == NULL) return 2;
    while (fread(x, sizeof x[0], HQC_INPUT_SIZE, f) == HQC_INPUT_SIZE) {
        if (hqc_model_run(arena, x, logits) != 0) return 1;
        for (j = 0; j < HQC_OUTPUT_SIZE; j++) printf(j ? " %lld" : "%lld", (long long)logits[j]);
        printf("\n");
    }
    fclose(f);
    return 0;
}
"""
