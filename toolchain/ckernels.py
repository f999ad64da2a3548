"""C99 kernels for the lowered IR: `kernels/` with hqc_model.{h,c}, main.c, Makefile.

Lowered IR → straight-line C99 (static buffers, one function per lowered node). Each
op's kernel is declared with the op in `hqc.intops` (its `c` method, written into a
`hqc.intops.cgen.CEmitter`); this module assembles the source, the header, the test
driver and the Makefile, and builds and runs them.

    weights       packed at their width: code i occupies bits [i·b, i·b + b) of a byte
                  stream, least significant bit first (2-bit: 4 per byte, 4-bit: 2 per
                  byte; = `hqc.quant.pack_codes`), storage words of `hqc.quant.storage_code`
    QConv         event-driven: only nonzero inputs (spikes, nonzero integers) do work
    QLinear       weight-stationary loops; pot → shift and add (no `*` anywhere in the
                  function), uniform → `acc += q` on spikes, `acc += q * x` on integers,
                  fp32 → double accumulation of float32 weights (exact, see docs/lowering.md)
    LIF           integer membrane (int32 or int64 as the bound requires), shifts only

Tensor types from the bounds lower-int proved: uint8_t for spikes, int32_t when the
range fits, else int64_t. Signed left shifts go through `HQC_SHL32/64` (unsigned shift, then
conversion: implementation-defined rather than undefined); signed right shifts are
arithmetic (checked at compile time).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hqc.errors import ModelError
from hqc.intops import op_of
from hqc.intops.cgen import SIZEOF, CEmitter, ctype
from hqc.intops.weights import conv_lif_pairs, pack_bits
from hqc.ir import Graph
from hqc.memplan import Buffer, plan

log = logging.getLogger(__name__)

__all__ = ["CModel", "build", "ctype", "emit_kernels", "memory_section", "pack_bits", "run_binary", "unpack_bits",
           "write_kernels"]


def unpack_bits(data: bytes, bits: int, count: int) -> np.ndarray:
    """Inverse of `pack_bits`: (count,) unsigned codes."""
    raw = np.unpackbits(np.frombuffer(data, np.uint8), bitorder="little")[: count * bits]
    if raw.size != count * bits:
        raise ValueError("packed data too short")
    return (raw.reshape(count, bits).astype(np.int64) << np.arange(bits)).sum(axis=1)


def _emit(e: CEmitter) -> dict[str, str]:
    g = e.g
    inp = g.inputs[0]
    e.tensor(inp)
    if e.fuse:
        e.fused = conv_lif_pairs(g)
    nodes = list(g.nodes())
    for j, node in enumerate(nodes):
        e.step = j + 1
        for t in node.inputs:
            e.read(t)
        op_of(node).c(e, node)
    out = g.outputs[0]
    e.step = len(nodes) + 1  # the copy of the logits
    e.read(out)
    in_size, out_size = int(np.prod(g.shape(inp))), int(np.prod(g.shape(out)))
    lo, hi = e.bounds[inp]
    if lo < -(2**15) or hi >= 2**15:
        raise ModelError(f"C kernels: the input range {lo}..{hi} does not fit int16")
    mem = _memory(e)
    return {
        "hqc_model.h": _HEADER.format(in_size=in_size, out_size=out_size, lo=lo, hi=hi,
                                      in_shape=list(g.shape(inp)), out_shape=list(g.shape(out)),
                                      weight_bytes=sum(w["bytes"] for w in e.weight_bytes),
                                      arena=mem["arena_bytes"], peak=mem["peak_live_bytes"],
                                      const=mem["constant_bytes"], stack=mem["stack_bytes_estimate"],
                                      align=ARENA_ALIGN),
        "hqc_model.c": _source(e, inp, out, in_size, out_size, lo, hi, mem),
        "main.c": _MAIN,
        "Makefile": _MAKEFILE,
    }


#: Alignment of every buffer in the arena (and of the arena the caller passes).
ARENA_ALIGN = 8
_FRAME = 64  # bytes of one call frame (return address, saved registers) the estimate assumes
_CONST = re.compile(r"^static const (\w+) (\w+)\[(\d+)\]", re.M)
_DECL = re.compile(r"^ +(?:u?int(?:8|16|32|64)_t|int|double|float)\b[^;(]*;", re.M)


def _memory(e: CEmitter) -> dict[str, Any]:
    """Plan the arena (hqc.memplan) over e.allocs; the constant bytes and a stack estimate."""
    bufs = [Buffer(name, SIZEOF[rec[0]] * rec[1], rec[2], rec[3]) for name, rec in e.allocs.items()]
    mp = plan(bufs, ARENA_ALIGN)
    const = sum(SIZEOF[t] * int(n) for t, _name, n in _CONST.findall("\n".join(e.data)))
    # an upper estimate whether or not the compiler inlines the kernels into hqc_model_run:
    # two call frames plus, for every kernel, 8 bytes per declared scalar or pointer and
    # per parameter (as if all were inlined and none shared a stack slot)
    slots = sum(sum(m.count(",") + 1 for m in _DECL.findall(f)) + len(_arena_args(e, f)[2].split(", "))
                for f in e.funcs)
    return {"buffers": bufs, "plan": mp, "arena_bytes": mp.arena_bytes, "peak_live_bytes": mp.peak_live_bytes,
            "constant_bytes": const, "stack_bytes_estimate": 2 * _FRAME + 64 + 8 * slots}


def _arena_defines(e: CEmitter, mem: dict[str, Any]) -> list[str]:
    offs = mem["plan"].offsets
    lines = []
    for name, (ctyp, count, first, last, comment) in sorted(e.allocs.items(), key=lambda kv: (offs[kv[0]], kv[0])):
        lines.append(f"#define HQC_OFF_{name} {offs[name]}  /* {ctyp} {name}: {comment}: {SIZEOF[ctyp] * count} B, "
                     f"steps {first}..{last} */" + ("  // hqc-fp32" if ctyp in ("float", "double") else ""))
    return lines


_IDENT = re.compile(r"\b[tk]\d+\w*\b")
_LOCAL = re.compile(r"^ +HQC_PTR\((\w+)\) (\w+) = HQC_AT\(\w+, HQC_OFF_(\w+)\);\n", re.M)
_SIGNATURE = re.compile(r"^static void (k\d+)\(uint8_t hqc_arena\[\]\)$", re.M)


def _arena_args(e: CEmitter, text: str) -> tuple[str, str, str]:
    """A kernel function rewritten to take its arena buffers as restrict pointer parameters
    (buffers one step uses are live together, so they never overlap; the compiler then
    vectorises without alias checks) → (function, its name, the call's arguments)."""
    params, args = [], []
    for ctyp, local, name in _LOCAL.findall(text):  # a kernel's own scratch pointers
        params.append(f"HQC_PTR({ctyp}) {local}")
        args.append(f"HQC_AT({ctyp}, HQC_OFF_{name})")
    text = _LOCAL.sub("", text)
    body = text[text.index("{"):] if "{" in text else text
    for n in sorted({m for m in _IDENT.findall(body) if m in e.allocs}, key=lambda n: (len(n), n)):
        ctyp = e.allocs[n][0]
        params.append(f"HQC_PTR({ctyp}) {n}")
        args.append(f"HQC_AT({ctyp}, HQC_OFF_{n})")
    m = _SIGNATURE.search(text)
    if m is None:
        raise ModelError("internal: a kernel without the arena signature")
    text = text[: m.start()] + f"static void {m.group(1)}({', '.join(params) or 'void'})" + text[m.end():]
    return text, m.group(1), ", ".join(args)


def _with_pointers(e: CEmitter, text: str) -> str:
    """A block with a restrict pointer declared after its opening brace for every arena
    buffer it names."""
    names = sorted({m for m in _IDENT.findall(text) if m in e.allocs}, key=lambda n: (len(n), n))
    lines = text.split("\n")
    at = lines.index("{") + 1
    decl = [f"    HQC_PTR({e.allocs[n][0]}) const {n} = HQC_AT({e.allocs[n][0]}, HQC_OFF_{n});" for n in names]
    return "\n".join(lines[:at] + decl + lines[at:])


def _block(e: CEmitter, stmt: str) -> list[str]:
    """A statement of hqc_model_run in a block of its own, with its arena pointers."""
    return [("    " + ln) if ln else ln for ln in _with_pointers(e, "{\n    " + stmt + "\n}").split("\n")]


def _source(e: CEmitter, inp: str, out: str, in_size: int, out_size: int, lo: int, hi: int,
            mem: dict[str, Any]) -> str:
    funcs, calls = [], []
    for f, call in zip(e.funcs, e.calls, strict=True):
        text, name, args = _arena_args(e, f)
        if not call.startswith(f"    {name}(hqc_arena);"):
            raise ModelError(f"internal: call {call.strip()!r} is not of kernel {name}")
        funcs.append(text)
        call = call.replace(f"{name}(hqc_arena);", f"{name}({args});", 1)
        calls.append(call + ("  // hqc-fp32" if re.search(r"\b(float|double)\b", args) else ""))
    parts = [
        "/* Generated by hqc lower: integer/shift-only kernels of the lowered model. */",
        "#include <stdint.h>",
        '#include "hqc_model.h"',
        "",
        "#define HQC_SHL32(x, n) ((int32_t)((uint32_t)(int32_t)(x) << (n)))",
        "#define HQC_SHL64(x, n) ((int64_t)((uint64_t)(int64_t)(x) << (n)))",
        "#define HQC_SHL16(x, n) ((int16_t)(uint16_t)((uint32_t)(uint16_t)(int16_t)(x) << (n)))",
        "#define HQC_PTR(T) T *restrict  /* a pointer into the arena */",
        "#define HQC_AT(T, off) ((T *)(hqc_arena + (off)))",
        "/* the LIF halves by arithmetic right shift of exact multiples */",
        "typedef char hqc_require_arithmetic_shift[((-3) >> 1) == -2 ? 1 : -1];",
        "",
        "static int64_t hqc_mul_shift_add(int64_t x, int64_t m)",
        "{",
        "    int64_t r = 0;",
        "    int neg = m < 0;",
        "    int b;",
        "    if (neg) m = -m;",
        "    for (b = 0; m != 0; b++, m >>= 1)",
        "        if (m & 1) r += HQC_SHL64(x, b);",
        "    return neg ? -r : r;",
        "}",
        "",
        "/* ---- weights and neuron parameters ---- */",
        *e.data,
        "",
        f"/* ---- working memory: buffers in the caller's arena ({mem['arena_bytes']} bytes; offsets by",
        f"   liveness, hqc.memplan; at most {mem['peak_live_bytes']} bytes are live at one step) ---- */",
        *_arena_defines(e, mem),
        "",
        "/* ---- kernels ---- */",
        *funcs,
        "",
        "int hqc_model_run(void *arena, const int16_t input[], int64_t logits[])",
        "{",
        "    uint8_t *hqc_arena = (uint8_t *)arena;",
        "    int32_t i;",
        f"    for (i = 0; i < {in_size}; i++)",
        f"        if (input[i] < {lo} || input[i] > {hi}) return -1;",
        *_block(e, f"for (i = 0; i < {in_size}; i++) {e.buf[inp]}[i] = ({e.typ[inp]})input[i];"),
        *calls,
        *_block(e, f"for (i = 0; i < {out_size}; i++) logits[i] = (int64_t){e.buf[out]}[i];"),
        "    return 0;",
        "}",
        "",
    ]
    return "\n".join(parts)


_HEADER = """\
/* Generated by hqc lower. The integer model: int16 inputs, int64 logits. */
#ifndef HQC_MODEL_H
#define HQC_MODEL_H
#include <stdint.h>

#define HQC_INPUT_SIZE {in_size}    /* one model input {in_shape}, row-major */
#define HQC_OUTPUT_SIZE {out_size}  /* integer logits {out_shape} */
#define HQC_INPUT_MIN {lo}
#define HQC_INPUT_MAX {hi}
#define HQC_WEIGHT_BYTES {weight_bytes}  /* packed weights (part of HQC_CONST_BYTES) */

/* RAM and flash the model needs. The arena holds every working buffer (activations,
   membranes, scratch), placed by liveness; at most HQC_PEAK_LIVE_BYTES of it are live at
   one step (the bound no placement beats). HQC_CONST_BYTES: weights, neuron parameters
   and index tables (read-only: flash). HQC_STACK_BYTES: an upper estimate of the stack
   hqc_model_run needs (its frame and the largest kernel's; no recursion, no alloca). */
#define HQC_ARENA_BYTES {arena}
#define HQC_PEAK_LIVE_BYTES {peak}
#define HQC_CONST_BYTES {const}
#define HQC_STACK_BYTES {stack}
#define HQC_ARENA_ALIGN {align}

/* An arena of HQC_ARENA_WORDS words of this type is aligned enough, e.g.
   static hqc_arena_t arena[HQC_ARENA_WORDS];  (or malloc(HQC_ARENA_BYTES)). */
typedef uint64_t hqc_arena_t;
#define HQC_ARENA_WORDS ((HQC_ARENA_BYTES + 7) / 8 + 1)

/* Runs the model on one input with `arena` (HQC_ARENA_BYTES bytes aligned to
   HQC_ARENA_ALIGN, owned by the caller; its contents need no initialisation and are
   scratch afterwards). Returns 0, or -1 (nothing computed) when an input value lies
   outside [HQC_INPUT_MIN, HQC_INPUT_MAX]. No static mutable state: reentrant with one
   arena per concurrent call. */
int hqc_model_run(void *arena, const int16_t input[], int64_t logits[]);

#endif
"""

_MAIN = """\
/* Test driver: hqc_test [-t] INPUT
   INPUT holds model inputs back to back, HQC_INPUT_SIZE values each (row-major, the
   model's input layout): raw int16 in host byte order (little-endian on x86 and ARM),
   or with -t whitespace-separated decimal integers. "-" reads stdin.
   Prints one line per model input: its HQC_OUTPUT_SIZE integer logits.
   Exit status 1 on a read error, an incomplete record or an out-of-range value. */
#include <stdio.h>
#include <string.h>
#include <stdint.h>
#include <inttypes.h>
#include "hqc_model.h"

static int16_t input[HQC_INPUT_SIZE];
static int64_t logits[HQC_OUTPUT_SIZE];
static hqc_arena_t arena[HQC_ARENA_WORDS];

static int read_text(FILE *f)
{
    long v;
    int i, r;
    for (i = 0; i < HQC_INPUT_SIZE; i++) {
        r = fscanf(f, "%ld", &v);
        if (r != 1) return i == 0 && r == EOF ? 0 : -1;
        if (v < -32768 || v > 32767) return -1;
        input[i] = (int16_t)v;
    }
    return 1;
}

static int read_raw(FILE *f)
{
    size_t n = fread(input, sizeof(int16_t), HQC_INPUT_SIZE, f);
    if (n == 0 && feof(f)) return 0;
    return n == HQC_INPUT_SIZE ? 1 : -1;
}

int main(int argc, char **argv)
{
    int text = 0, r, j;
    long count = 0;
    const char *path = NULL;
    FILE *f;
    for (j = 1; j < argc; j++) {
        if (strcmp(argv[j], "-t") == 0) text = 1;
        else path = argv[j];
    }
    memset(arena, 0xa5, sizeof arena);  /* the model must not rely on zeroed memory */
    if (path == NULL) {
        fprintf(stderr, "usage: %s [-t] INPUT\\n", argv[0]);
        return 2;
    }
    f = strcmp(path, "-") == 0 ? stdin : fopen(path, text ? "r" : "rb");
    if (f == NULL) {
        fprintf(stderr, "error: cannot open %s\\n", path);
        return 1;
    }
    for (;;) {
        r = text ? read_text(f) : read_raw(f);
        if (r == 0) break;
        if (r < 0) {
            fprintf(stderr, "error: record %ld is incomplete or malformed\\n", count);
            return 1;
        }
        if (hqc_model_run(arena, input, logits) != 0) {
            fprintf(stderr, "error: record %ld has a value outside [%d, %d]\\n", count,
                    HQC_INPUT_MIN, HQC_INPUT_MAX);
            return 1;
        }
        for (j = 0; j < HQC_OUTPUT_SIZE; j++)
            printf(j ? " %" PRId64 : "%" PRId64, logits[j]);
        printf("\\n");
        count++;
    }
    if (f != stdin) fclose(f);
    return 0;
}
"""

_MAKEFILE = """\
# Generated by hqc lower.
#   make && ./hqc_test input.bin        the test driver (main.c)
#   make lib                            libhqc_model.a for firmware: hqc_model.h + the archive
# CC, CFLAGS, CPPFLAGS, LDFLAGS, AR and ARFLAGS come from the environment or the command line
# (make CC=arm-none-eabi-gcc CFLAGS="-O2 -mcpu=cortex-m4"); HQC_CFLAGS is appended to CFLAGS.
ifeq ($(origin CC),default)
CC = gcc
endif
CFLAGS ?= -O2 -std=c99 -Wall -Wextra -pedantic
CFLAGS += $(HQC_CFLAGS)
ifeq ($(origin ARFLAGS),default)
ARFLAGS = rcs
endif

hqc_test: main.c hqc_model.o hqc_model.h
\t$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ main.c hqc_model.o

lib: libhqc_model.a

libhqc_model.a: hqc_model.o
\t$(AR) $(ARFLAGS) $@ hqc_model.o

hqc_model.o: hqc_model.c hqc_model.h
\t$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ hqc_model.c

clean:
\trm -f hqc_test hqc_model.o libhqc_model.a

.PHONY: clean lib
"""


@dataclass
class CModel:
    """The emitted C model: {file name: text} of kernels/, per-layer packed weight bytes,
    and the C type of every tensor's buffer (from its proven bound)."""

    files: dict[str, str]
    weight_bytes: list[dict[str, Any]]
    c_types: dict[str, str]


def emit_kernels(g: Graph, fuse: bool = True) -> CModel:
    """Lowered IR → the C model (files of kernels/, weight bytes, buffer types).

    Pre: `g` came from lower-int, graph.meta["bounds"] present. Post: `make` builds
    hqc_test, whose logits equal `hqc.intref.run` on the same inputs.
    """
    em = CEmitter(g)
    em.fuse = fuse
    files = _emit(em)
    return CModel(files, em.weight_bytes, dict(em.typ))


def write_kernels(g: Graph, directory: str | Path) -> list[dict[str, Any]]:
    """Write kernels/ into `directory` (created); returns the per-layer weight bytes."""
    cm = emit_kernels(g)
    files, wb = cm.files, cm.weight_bytes
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (d / name).write_text(text, encoding="utf-8")
    return wb


_MACRO = re.compile(r"^#define (HQC_\w+) (\d+)", re.M)


def memory_section(files: dict[str, str], timeout_s: float = 600.0) -> dict[str, Any]:
    """The `memory` section of lowering.json for emitted kernel files: the header's arena,
    peak-live, constant and stack figures, and what `size` measures after building them
    with the Makefile's defaults (CC/CFLAGS of the environment ignored): static RAM of
    hqc_test (data + bss of `size`, the arena included) and flash of hqc_model.o (.text +
    .rodata + .data of `size -A`). When the build fails the measured fields are null and `measure_error` says why."""
    import os
    import subprocess
    import tempfile

    m = {k: int(v) for k, v in _MACRO.findall(files["hqc_model.h"])}
    doc: dict[str, Any] = {
        "arena_bytes": m["HQC_ARENA_BYTES"], "peak_live_bytes": m["HQC_PEAK_LIVE_BYTES"],
        "constant_bytes": m["HQC_CONST_BYTES"], "packed_weight_bytes": m["HQC_WEIGHT_BYTES"],
        "stack_bytes_estimate": m["HQC_STACK_BYTES"], "arena_alignment": m["HQC_ARENA_ALIGN"],
        "static_ram_bytes": None, "flash_bytes": None, "stack_bytes_measured": None, "measured": None,
    }
    env = {k: v for k, v in os.environ.items() if k not in ("CC", "CFLAGS", "CPPFLAGS", "LDFLAGS", "HQC_CFLAGS")}
    with tempfile.TemporaryDirectory(prefix="hqc-mem-") as tmp:
        for name, text in files.items():
            (Path(tmp) / name).write_text(text, encoding="utf-8")
        try:
            res = subprocess.run(["make", "-s", "-C", tmp, "hqc_test", "HQC_CFLAGS=-fstack-usage"],
                                 capture_output=True, text=True, timeout=timeout_s, env=env)
            if res.returncode != 0:
                raise OSError(res.stderr.strip().splitlines()[-1] if res.stderr.strip() else "make failed")
            test = _berkeley(Path(tmp) / "hqc_test")
            obj = _sections(Path(tmp) / "hqc_model.o")
            su = Path(tmp) / "hqc_model.su"
            stack = stack_usage(su.read_text()) if su.is_file() else None
        except (OSError, subprocess.SubprocessError, ValueError) as exc:
            doc["measure_error"] = str(exc)[:200]
            return doc
    doc["static_ram_bytes"] = test["data"] + test["bss"]
    doc["flash_bytes"] = obj.get(".text", 0) + obj.get(".rodata", 0) + obj.get(".data", 0)
    doc["stack_bytes_measured"] = stack
    doc["measured"] = {"build": "make hqc_test (the Makefile's CC and CFLAGS defaults)",
                       "hqc_test (size)": test,
                       "hqc_model.o (size -A)": {k: obj[k] for k in (".text", ".rodata", ".data", ".bss") if k in obj}}
    return doc


def stack_usage(su: str) -> int:
    """Stack of hqc_model_run and its deepest kernel from gcc's -fstack-usage report (the
    kernels call nothing, so the chain is two frames deep)."""
    frames = {ln.split("\t")[0].rsplit(":", 1)[-1]: int(ln.split("\t")[1]) for ln in su.splitlines() if "\t" in ln}
    kernels = [v for k, v in frames.items() if re.fullmatch(r"k\d+", k)]
    return frames.get("hqc_model_run", 0) + max(kernels, default=0)


def _berkeley(path: Path) -> dict[str, int]:
    """`size` of an executable (Berkeley format): {"text", "data", "bss"} bytes."""
    import subprocess

    out = subprocess.run(["size", str(path)], capture_output=True, text=True, check=True).stdout.splitlines()
    text, data, bss = (int(v) for v in out[1].split()[:3])
    return {"text": text, "data": data, "bss": bss}


def _sections(path: Path) -> dict[str, int]:
    """Section sizes of an object or executable (`size -A`): {".text": bytes, …}."""
    import subprocess

    out = subprocess.run(["size", "-A", str(path)], capture_output=True, text=True, check=True).stdout
    sec: dict[str, int] = {}
    for ln in out.splitlines():
        parts = ln.split()
        if len(parts) >= 2 and parts[0].startswith(".") and parts[1].isdigit():
            key = ".rodata" if parts[0].startswith(".rodata") else parts[0]
            sec[key] = sec.get(key, 0) + int(parts[1])
    return sec


def build(directory: str | Path, timeout_s: float = 600.0, target: str = "hqc_test",
          make_vars: dict[str, str] | None = None) -> Path:
    """`make target` in a kernels folder → path of the target (hqc_test, or libhqc_model.a
    for "lib"). `make_vars` (e.g. {"CFLAGS": "-O3"}) go on make's command line; otherwise
    CC and CFLAGS come from the environment or the Makefile's defaults. Raises ModelError
    with the compiler's first error line when the build fails."""
    import subprocess

    d = Path(directory)
    args = [f"{k}={v}" for k, v in (make_vars or {}).items()]
    res = subprocess.run(["make", "-s", "-C", str(d), target, *args], capture_output=True, text=True,
                         timeout=timeout_s)
    if res.returncode != 0:
        first = next((ln for ln in (res.stderr + res.stdout).splitlines() if "error" in ln), res.stderr.strip()[:200])
        raise ModelError(f"{d}: make failed: {first}")
    return d / ("libhqc_model.a" if target == "lib" else target)


def run_binary(exe: str | Path, x: np.ndarray, out_size: int, timeout_s: float = 3600.0) -> np.ndarray:
    """Run hqc_test on stacked model inputs (G, *input shape) → logits (G, out_size) int64."""
    import subprocess
    import tempfile

    xi = np.asarray(x)
    if xi.size and (xi.min() < -(2**15) or xi.max() >= 2**15):
        raise ModelError("C kernels: inputs do not fit int16")
    with tempfile.TemporaryDirectory(prefix="hqc-c-") as tmp:
        p = Path(tmp) / "input.bin"
        xi.astype("<i2").tofile(p)
        res = subprocess.run([str(exe), str(p)], capture_output=True, text=True, timeout=timeout_s)
    if res.returncode != 0:
        raise ModelError(f"{exe}: {res.stderr.strip() or 'failed'}")
    rows = [ln.split() for ln in res.stdout.splitlines() if ln.strip()]
    out = np.array(rows, dtype=np.int64).reshape(len(rows), out_size)
    if out.shape[0] != xi.shape[0]:
        raise ModelError(f"{exe}: {out.shape[0]} results for {xi.shape[0]} inputs")
    return out

