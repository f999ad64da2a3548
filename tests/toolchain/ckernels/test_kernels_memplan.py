"""The arena: the greedy liveness planner (no two buffers live together share a byte, a
hand-computed placement, never below the peak-live bound), the emitted model keeps no
static mutable state (hqc_model.o has no .data/.bss), the header's figures equal the
plan, the stack estimate covers what gcc reports, and lowering.json's memory section."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hqc import ckernels, intref
from hqc.memplan import Buffer, check_plan, plan
from tests.support.lowering import TINY, events, groups_of, lower_zoo
from tests.support.zoo import example_spikformer

needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("make") is None,
                               reason="gcc and make are needed")


def test_plan_by_hand():
    bufs = [Buffer("a", 100, 0, 1), Buffer("b", 50, 1, 2), Buffer("c", 100, 2, 3)]
    mp = plan(bufs, align=8)
    # a and c are never live together: c reuses a's bytes; b sits above both
    assert mp.offsets == {"a": 0, "c": 0, "b": 104}
    assert mp.arena_bytes == 160 == mp.peak_live_bytes
    check_plan(bufs, mp)


def test_check_plan_rejects_an_overlap():
    bufs = [Buffer("a", 16, 0, 1), Buffer("b", 16, 1, 1)]
    mp = plan(bufs)
    mp.offsets["b"] = 8
    with pytest.raises(ValueError, match="overlap"):
        check_plan(bufs, mp)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5000), st.integers(0, 30), st.integers(0, 10)), max_size=40))
def test_plan_is_valid_and_bounded(specs):
    bufs = [Buffer(f"b{i}", size, first, first + span) for i, (size, first, span) in enumerate(specs)]
    mp = plan(bufs)
    check_plan(bufs, mp)
    assert mp.peak_live_bytes <= mp.arena_bytes <= sum(-(-b.size // 8) * 8 for b in bufs)


@pytest.fixture(scope="module")
def tiny(zoo_build, tmp_path_factory):
    zm = zoo_build(example_spikformer, dict(TINY))
    fe, _plan, lm = lower_zoo(zm, plan_offset=3)
    d = tmp_path_factory.mktemp("memplan")
    cm = ckernels.emit_kernels(lm.graph)
    for name, text in cm.files.items():
        (d / name).write_text(text)
    return zm, fe, lm, d, cm


def _macros(text: str) -> dict[str, int]:
    return {k: int(v) for k, v in re.findall(r"^#define (HQC_\w+) (\d+)", text, re.M)}


def test_arena_defines_follow_the_plan(tiny):
    *_, d, cm = tiny
    src = (d / "hqc_model.c").read_text()
    m = _macros((d / "hqc_model.h").read_text())
    spans = re.findall(r"^#define HQC_OFF_(\w+) (\d+)  /\* (\w+) \w+: .*: (\d+) B, steps (\d+)\.\.(\d+)", src, re.M)
    assert spans
    bufs = [Buffer(n, int(size), int(a), int(b)) for n, _off, _t, size, a, b in spans]
    mp = plan(bufs)
    assert {n: int(off) for n, off, *_ in spans} == mp.offsets
    check_plan(bufs, mp)
    assert m["HQC_ARENA_BYTES"] == mp.arena_bytes >= m["HQC_PEAK_LIVE_BYTES"] == mp.peak_live_bytes
    assert m["HQC_ARENA_BYTES"] < sum(b.size for b in bufs)  # buffers do share bytes
    assert not re.search(r"^\s*static (?!const|void|int64_t hqc_mul)", src, re.M)  # nothing mutable is static


@needs_gcc
def test_no_static_state_and_stack_estimate(tiny, tmp_path):
    *_, d, _cm = tiny
    m = _macros((d / "hqc_model.h").read_text())
    for opt in ("-O0", "-O2"):
        obj = tmp_path / f"m{opt}.o"
        subprocess.run(["gcc", opt, "-std=c99", "-fstack-usage", "-c", "-o", str(obj), str(d / "hqc_model.c")],
                       check=True, cwd=tmp_path)
        sec = ckernels._sections(obj)
        assert sec.get(".data", 0) == 0 and sec.get(".bss", 0) == 0
        measured = ckernels.stack_usage(obj.with_suffix(".su").read_text())
        assert 0 < measured <= m["HQC_STACK_BYTES"], (opt, measured)


@needs_gcc
def test_two_arenas_interleaved_give_the_reference(tiny, tmp_path):
    zm, fe, lm, d, _cm = tiny
    lib = ckernels.build(d, target="lib")
    caller = tmp_path / "two.c"
    caller.write_text(TWO_ARENAS)
    exe = tmp_path / "two"
    subprocess.run(["gcc", "-O2", "-std=c99", "-I", str(d), "-o", str(exe), str(caller), str(lib)], check=True)
    x = groups_of(events((4, zm.T, 2, 16, 16), seed=3, lam=0.6), fe)
    ref = intref.run(lm.graph, x)[0].reshape(4, -1)
    inp = tmp_path / "in.bin"
    x.astype("<i2").tofile(inp)
    out = subprocess.run([str(exe), str(inp)], capture_output=True, text=True, check=True).stdout
    got = np.array([ln.split() for ln in out.splitlines()], np.int64)
    assert np.array_equal(got, np.repeat(ref, 2, axis=0))


#: Sample i on arena i % 2, both arenas first filled with different garbage, each sample run twice.
TWO_ARENAS = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "hqc_model.h"

int main(int argc, char **argv)
{
    static int16_t x[HQC_INPUT_SIZE];
    int64_t logits[HQC_OUTPUT_SIZE];
    void *arena[2];
    int j, r;
    long i = 0;
    FILE *f = argc > 1 ? fopen(argv[1], "rb") : NULL;
    arena[0] = malloc(HQC_ARENA_BYTES + 1);
    arena[1] = malloc(HQC_ARENA_BYTES + 1);
    if (f == NULL || !arena[0] || !arena[1]) return 2;
    memset(arena[0], 0x5a, HQC_ARENA_BYTES);
    memset(arena[1], 0xff, HQC_ARENA_BYTES);
    while (fread(x, sizeof x[0], HQC_INPUT_SIZE, f) == HQC_INPUT_SIZE) {
        for (r = 0; r < 2; r++) {
            if (hqc_model_run(arena[(i + r) % 2], x, logits) != 0) return 1;
            for (j = 0; j < HQC_OUTPUT_SIZE; j++) printf(j ? " %lld" : "%lld", (long long)logits[j]);
            printf("\n");
        }
        i++;
    }
    return 0;
}
"""


@needs_gcc
def test_lowering_json_memory_section(tmp_path, zoo_build):
    from hqc.lowerdir import lower_model
    from hqc.pipeline import run_frontend

    zm = zoo_build(example_spikformer, dict(TINY))
    fe = run_frontend(str(zm.onnx_path))
    res = lower_model(zm.onnx_path, {layer.name: "pot2" for layer in fe.layers}, tmp_path / "low")
    mem = json.loads((tmp_path / "low" / "lowering.json").read_text())["memory"]
    m = _macros((tmp_path / "low" / "kernels" / "hqc_model.h").read_text())
    assert mem == res.doc["memory"]
    assert mem["arena_bytes"] == m["HQC_ARENA_BYTES"] and mem["peak_live_bytes"] == m["HQC_PEAK_LIVE_BYTES"]
    assert mem["constant_bytes"] == m["HQC_CONST_BYTES"] >= mem["packed_weight_bytes"] == m["HQC_WEIGHT_BYTES"]
    # the test binary's static RAM holds the arena (plus main.c's buffers and the C library's)
    assert mem["arena_bytes"] <= mem["static_ram_bytes"] <= mem["arena_bytes"] + 2 * m["HQC_INPUT_SIZE"] + 8192
    assert mem["flash_bytes"] >= mem["constant_bytes"] - 4096
    assert 0 < mem["stack_bytes_measured"] <= mem["stack_bytes_estimate"]
