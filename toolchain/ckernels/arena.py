"""Kernels reach their arena buffers through restrict pointers.

A kernel function as the ops write it, `static void kN(uint8_t hqc_arena[])` with
`HQC_PTR(T) p = HQC_AT(T, HQC_OFF_x);` locals, is rewritten to take each buffer it names
as a `T *restrict` parameter; a block of `hqc_model_run` gets the pointers declared after
its opening brace.
"""

from __future__ import annotations

import re

from hqc.errors import ModelError
from hqc.intops.cgen import CEmitter

_IDENT = re.compile(r"\b[tk]\d+\w*\b")
_LOCAL = re.compile(r"^ +HQC_PTR\((\w+)\) (\w+) = HQC_AT\(\w+, HQC_OFF_(\w+)\);\n", re.M)
_SIGNATURE = re.compile(r"^static void (k\d+)\(uint8_t hqc_arena\[\]\)$", re.M)


def arena_args(e: CEmitter, text: str) -> tuple[str, str, str]:
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


def with_pointers(e: CEmitter, text: str) -> str:
    """A block with a restrict pointer declared after its opening brace for every arena
    buffer it names."""
    names = sorted({m for m in _IDENT.findall(text) if m in e.allocs}, key=lambda n: (len(n), n))
    lines = text.split("\n")
    at = lines.index("{") + 1
    decl = [f"    HQC_PTR({e.allocs[n][0]}) const {n} = HQC_AT({e.allocs[n][0]}, HQC_OFF_{n});" for n in names]
    return "\n".join(lines[:at] + decl + lines[at:])


def block(e: CEmitter, stmt: str) -> list[str]:
    """A statement of hqc_model_run in a block of its own, with its arena pointers."""
    return [("    " + ln) if ln else ln for ln in with_pointers(e, "{\n    " + stmt + "\n}").split("\n")]
