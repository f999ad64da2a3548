"""RAM and flash of the C model: the arena plan, constant bytes and stack, in the header
and in lowering.json's `memory` section (measured with `size` on a build).

    e.allocs (buffers, steps live) --hqc.memplan.plan--> offsets, arena and peak-live bytes
    emitted files --make, size, -fstack-usage--> static RAM, flash, measured stack
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from hqc.ckernels.arena import arena_args
from hqc.intops.cgen import SIZEOF, CEmitter
from hqc.memplan import Buffer, plan

#: Alignment of every buffer in the arena (and of the arena the caller passes).
ARENA_ALIGN = 8
_FRAME = 64  # bytes of one call frame (return address, saved registers) the estimate assumes
_CONST = re.compile(r"^static const (\w+) (\w+)\[(\d+)\]", re.M)
_DECL = re.compile(r"^ +(?:u?int(?:8|16|32|64)_t|int|double|float)\b[^;(]*;", re.M)
_MACRO = re.compile(r"^#define (HQC_\w+) (\d+)", re.M)


def plan_memory(e: CEmitter) -> dict[str, Any]:
    """Plan the arena (hqc.memplan) over e.allocs; the constant bytes and a stack estimate."""
    bufs = [Buffer(name, SIZEOF[rec[0]] * rec[1], rec[2], rec[3]) for name, rec in e.allocs.items()]
    mp = plan(bufs, ARENA_ALIGN)
    const = sum(SIZEOF[t] * int(n) for t, _name, n in _CONST.findall("\n".join(e.data)))
    # an upper estimate whether or not the compiler inlines the kernels into hqc_model_run:
    # two call frames plus, for every kernel, 8 bytes per declared scalar or pointer and
    # per parameter (as if all were inlined and none shared a stack slot)
    slots = sum(sum(m.count(",") + 1 for m in _DECL.findall(f)) + len(arena_args(e, f)[2].split(", "))
                for f in e.funcs)
    return {"buffers": bufs, "plan": mp, "arena_bytes": mp.arena_bytes, "peak_live_bytes": mp.peak_live_bytes,
            "constant_bytes": const, "stack_bytes_estimate": 2 * _FRAME + 64 + 8 * slots}


def arena_defines(e: CEmitter, mem: dict[str, Any]) -> list[str]:
    """`#define HQC_OFF_<buffer> <offset>` lines of the arena plan, by offset."""
    offs = mem["plan"].offsets
    lines = []
    for name, (ctyp, count, first, last, comment) in sorted(e.allocs.items(), key=lambda kv: (offs[kv[0]], kv[0])):
        lines.append(f"#define HQC_OFF_{name} {offs[name]}  /* {ctyp} {name}: {comment}: {SIZEOF[ctyp] * count} B, "
                     f"steps {first}..{last} */" + ("  // hqc-fp32" if ctyp in ("float", "double") else ""))
    return lines


def memory_section(files: dict[str, str], timeout_s: float = 600.0) -> dict[str, Any]:
    """The `memory` section of lowering.json for emitted kernel files: the header's arena,
    peak-live, constant and stack figures, and what `size` measures after building them
    with the Makefile's defaults (CC/CFLAGS of the environment ignored): static RAM of
    hqc_test (data + bss of `size`, the arena included) and flash of hqc_model.o (.text +
    .rodata + .data of `size -A`). When the build fails the measured fields are null and `measure_error` says why."""
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
    out = subprocess.run(["size", str(path)], capture_output=True, text=True, check=True).stdout.splitlines()
    text, data, bss = (int(v) for v in out[1].split()[:3])
    return {"text": text, "data": data, "bss": bss}


def _sections(path: Path) -> dict[str, int]:
    """Section sizes of an object or executable (`size -A`): {".text": bytes, …}."""
    out = subprocess.run(["size", "-A", str(path)], capture_output=True, text=True, check=True).stdout
    sec: dict[str, int] = {}
    for ln in out.splitlines():
        parts = ln.split()
        if len(parts) >= 2 and parts[0].startswith(".") and parts[1].isdigit():
            key = ".rodata" if parts[0].startswith(".rodata") else parts[0]
            sec[key] = sec.get(key, 0) + int(parts[1])
    return sec
