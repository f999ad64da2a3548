"""The C emission context the integer ops write their kernels into, and its helpers.

`CEmitter` owns the tensors' buffers and C types (chosen from the proven bounds:
`uint8_t` for spikes, `int32_t` when the range fits, else `int64_t`), the constant data
(packed weights, neuron parameters, index tables), one `static void kN(uint8_t hqc_arena[])`
function per lowered node and the call sequence of `hqc_model_run`. Every working buffer
(activation tensor, membrane, a kernel's scratch) lives in the caller's arena at an offset
`hqc.memplan` chooses by liveness from the steps that write and read it (`allocs`); a
kernel reaches it through a `T *restrict` pointer (so that the compiler knows buffers live
together never overlap and vectorises without alias checks); nothing mutable is static. Every kernel sits between
`// hqc-kernel begin <name> <kind> …` and `// hqc-kernel end` so that tests can inspect it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hqc.errors import ModelError
from hqc.ir import Graph, Node

SPIKE, I32, I64 = "uint8_t", "int32_t", "int64_t"
#: The parameter list of every kernel function: the arena base. Kernels hold pointers into
#: it as `HQC_PTR(T) name` (a macro for `T *restrict`), so that a `*` in a kernel is a multiply.
KERNEL_PARAMS = "uint8_t hqc_arena[]"
SIZEOF = {"uint8_t": 1, "int8_t": 1, "int16_t": 2, "uint16_t": 2, "int32_t": 4, "uint32_t": 4, "int64_t": 8,
          "uint64_t": 8, "float": 4, "double": 8}
SHL = {I32: "HQC_SHL32", I64: "HQC_SHL64"}


def ctype(lo: int, hi: int) -> str:
    """C type of an integer tensor with values in [lo, hi]; ModelError when none fits."""
    if lo >= 0 and hi <= 1:
        return SPIKE
    if lo >= -(2**31) and hi < 2**31:
        return I32
    if lo >= -(2**63) and hi < 2**63:
        return I64
    raise ModelError(f"C kernels: no C integer type holds the range {lo}..{hi}")


def wide(t: str) -> str:
    """The arithmetic type for values of C type `t` (spikes compute in int32)."""
    return I64 if t == I64 else I32


def strides(shape: tuple[int, ...]) -> list[int]:
    s, acc = [], 1
    for d in reversed(shape):
        s.append(acc)
        acc *= d
    return list(reversed(s))


def c_array(name: str, ctyp: str, values: list[str], per_line: int = 16) -> list[str]:
    lines = [f"static const {ctyp} {name}[{max(1, len(values))}] = {{"]
    vals = values or ["0"]
    for i in range(0, len(vals), per_line):
        lines.append("    " + ", ".join(vals[i: i + per_line]) + ",")
    lines.append("};")
    return lines


def c_ints(a: np.ndarray) -> list[str]:
    out = []
    for v in np.asarray(a, np.int64).reshape(-1).tolist():
        if v == -(2**63):
            out.append("INT64_MIN")
        elif abs(v) >= 2**31:
            out.append(f"INT64_C({v})")
        else:
            out.append(str(v))
    return out


def loops(shape: tuple[int, ...], var: str = "d") -> tuple[list[str], list[str], str]:
    """Nested for-loops over `shape`; returns (open lines, close lines, indent)."""
    opens, closes = [], []
    ind = "    "
    for i, d in enumerate(shape):
        opens.append(f"{ind}for ({var}{i} = 0; {var}{i} < {d}; {var}{i}++) {{")
        closes.insert(0, f"{ind}}}")
        ind += "    "
    return opens, closes, ind


def index(strd: list[int], var: str = "d", skip: int | None = None, zero: set[int] | None = None) -> str:
    """C expression Σ var_i · strd_i (terms with stride 0, `skip` or in `zero` left out)."""
    terms = []
    for i, s in enumerate(strd):
        if i == skip or s == 0 or (zero and i in zero):
            continue
        terms.append(f"{var}{i}" if s == 1 else f"{var}{i} * {s}")
    return " + ".join(terms) or "0"


def broadcast_strides(pshape: tuple[int, ...], shape: tuple[int, ...]) -> list[int]:
    """Strides into a row-major parameter array of shape `pshape` (right-aligned,
    broadcast to `shape`): 0 along the axes where the parameter has size 1."""
    pshape = (1,) * (len(shape) - len(pshape)) + tuple(pshape)
    return [s if d > 1 else 0 for s, d in zip(strides(pshape), pshape, strict=True)]


def tap_ranges(K: int, D: int, P: int, S: int, size: int, out: int) -> list[tuple[int, int, int]]:
    """Per tap k of a window (dilation D, padding P, stride S): (lo, hi, i_lo) — the outputs
    o in [lo, hi) whose input o·S + k·D − P lies inside [0, size), and the input of the
    first one (lo == hi: none)."""
    res = []
    for k in range(K):
        i0 = k * D - P
        lo = max(0, -(i0 // S)) if i0 < 0 else 0
        hi = min(out, (size - 1 - i0) // S + 1) if size - 1 - i0 >= 0 else 0
        hi = max(hi, lo)
        res.append((lo, hi, lo * S + i0))
    return res


class CEmitter:
    """Accumulates the C model: buffers, data, kernels and the call sequence."""

    def __init__(self, g: Graph) -> None:
        self.g = g
        self.bounds: dict[str, tuple[int, int]] = g.meta.get("bounds", {})
        self.buf: dict[str, str] = {}
        self.typ: dict[str, str] = {}
        self.data: list[str] = []
        self.buffers: list[str] = []
        self.funcs: list[str] = []
        self.calls: list[str] = []
        self.weight_bytes: list[dict[str, Any]] = []
        self.n = 0
        self.step = 0  # the call-sequence step being emitted (0: the input copy)
        # arena buffers: name → [C type, element count, first step, last step, comment]
        self.allocs: dict[str, list[Any]] = {}
        self.fuse = True  # apply a LIF inside the convolution feeding it, where the layout allows
        self.fused: dict[str, Node] = {}  # QConv name → the LIF its kernel applies (`conv_lif_pairs`)

    def shape(self, t: str) -> tuple[int, ...]:
        return tuple(int(d) for d in self.g.shape(t))

    def tensor(self, t: str, typ: str | None = None) -> str:
        """Declare the buffer of tensor t (C type from its bound unless given); its name."""
        if t not in self.bounds:
            raise ModelError(f"C kernels: tensor {t!r} has no integer bound")
        lo, hi = self.bounds[t]
        self.typ[t] = typ or ctype(lo, hi)
        self.buf[t] = f"t{len(self.buf)}"
        self.allocs[self.buf[t]] = [self.typ[t], int(np.prod(self.shape(t))), self.step, self.step,
                                    f"{t} {list(self.shape(t))}"]
        return self.buf[t]

    def scratch(self, name: str, ctyp: str, count: int, comment: str) -> str:
        """An arena buffer of `count` elements used by the current step only (a kernel's
        scratch, a membrane). A kernel uses it by `name` (which ckernels declares as a
        restrict pointer in every function that mentions it) or through a local pointer
        initialised with the returned expression (`HQC_PTR(T) p = <expr>;`)."""
        if name in self.allocs:
            raise ModelError(f"C kernels: buffer {name} declared twice")
        self.allocs[name] = [ctyp, int(count), self.step, self.step, comment]
        return f"HQC_AT({ctyp}, HQC_OFF_{name})"

    def read(self, t: str) -> None:
        """The current step reads tensor t: its buffer stays live until here."""
        rec = self.allocs.get(self.buf.get(t, ""))
        if rec is not None:
            rec[3] = max(rec[3], self.step)

    def alias(self, t: str, of: str) -> None:
        """Tensor t shares the buffer of `of` (a reshape: same elements, same order)."""
        self.buf[t], self.typ[t] = self.buf[of], self.typ[of]

    def fn(self, node: Node) -> str:
        """A new kernel function name, called in order from hqc_model_run."""
        self.n += 1
        name = f"k{self.n}"
        self.calls.append(f"    {name}(hqc_arena);  // {node.op} {node.name}")
        return name

    def fn_name(self) -> str:
        """The name of the kernel function `fn` returned last."""
        return f"k{self.n}"

    def next_fn(self) -> str:
        """The name the next `fn` call will return (for data emitted before the kernel)."""
        return f"k{self.n + 1}"

    def simple(self, node: Node, body: list[str], decl: str = "", kind: str | None = None) -> None:
        """A kernel function with declarations `decl` and statements `body`."""
        fn = self.fn(node)
        lines = [f"// hqc-kernel begin {node.name} {kind or node.op.lower()}", f"static void {fn}({KERNEL_PARAMS})", "{"]
        if decl:
            lines.append("    " + decl)
        lines += body
        lines += ["}", "// hqc-kernel end"]
        self.funcs.append("\n".join(lines))
