"""C99 kernels for the lowered IR: `kernels/` with hqc_model.{h,c}, main.c, Makefile.

Lowered IR → straight-line C99 (one function per lowered node, every working buffer in
the caller's arena). Each op's kernel is declared with the op in `hqc.intops` (its `c`
method, written into a `hqc.intops.cgen.CEmitter`); this package assembles the source,
the header, the test driver and the Makefile, and builds and runs them:

    source     the files of kernels/ from the lowered graph (`emit_kernels`, `write_kernels`)
    arena      kernels rewritten to take their arena buffers as restrict pointers
    memory     the arena plan, constant and stack bytes; lowering.json's `memory` section
    templates  the header template, main.c and the Makefile
    build      `make` in a kernels folder, running hqc_test on inputs
    packing    packed weight codes (`pack_bits`, `unpack_bits`)

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

from hqc.ckernels.build import build, run_binary
from hqc.ckernels.memory import _sections as _sections  # re-exported: the tests read section sizes
from hqc.ckernels.memory import memory_section, stack_usage
from hqc.ckernels.packing import pack_bits, unpack_bits
from hqc.ckernels.source import CModel, emit_kernels, write_kernels
from hqc.intops.cgen import ctype

__all__ = ["CModel", "build", "ctype", "emit_kernels", "memory_section", "pack_bits", "run_binary", "stack_usage",
           "unpack_bits", "write_kernels"]
