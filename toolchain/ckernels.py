"""C99 kernels for the lowered IR: `kernels/` with hqc_model.{h,c}, main.c, Makefile.

Lowered IR → straight-line C99 (static buffers, one function per lowered node):

    weights       packed at their width: code i occupies bits [i·b, i·b + b) of a byte
                  stream, least significant bit first (2-bit: 4 per byte, 4-bit: 2 per
                  byte; = `hqc.quant.pack_codes`), storage words of `hqc.quant.storage_code`
    QConv         event-driven: only nonzero inputs (spikes, nonzero integers) do work;
                  each adds one decoded weight row per reached output position to a
                  [position][channel] scratch accumulator (contiguous inner loop over the
                  output channels), transposed into the output per time step
    QLinear       weight-stationary loops
                  all index arithmetic incremental (+= constants) or from constant tables:
                  pot     → shift and add (no `*` anywhere in the function)
                  uniform → `acc += q` on spikes, `acc += q * x` on integers
                  fp32    → double accumulation of float32 weights (exact, see
                            docs/lowering.md), converted to the integer accumulator
    LIF           integer membrane (int32 or int64 as the bound requires), shifts only
    others        Add/Sub/Shl, MatMul (row by row, skipping zeros of the left side; spikes
                  select rows, never multiply), MaxPool, ReduceSum,
                  Transpose, Reshape (an alias), Requant (shift-and-add constant multiply)

Tensor types from the bounds lower-int computed: uint8_t for spikes, int32_t when the
range fits, else int64_t. Signed left shifts go through `HQC_SHL32/64` (unsigned shift, then
conversion: implementation-defined rather than undefined); signed right shifts are
arithmetic (checked at compile time). Every kernel sits between `// hqc-kernel begin
<layer> <quantizer> <input>` and `// hqc-kernel end` so that tests can inspect it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from hqc.errors import ModelError
from hqc.ir import Graph
from hqc.quant import pack_codes

log = logging.getLogger(__name__)

SPIKE, I32, I64 = "uint8_t", "int32_t", "int64_t"
_SHL = {I32: "HQC_SHL32", I64: "HQC_SHL64"}


# --------------------------------------------------------------------------- packing
def pack_bits(codes: np.ndarray, bits: int) -> bytes:
    """Unsigned b-bit codes (1 ≤ b ≤ 8) → a little-endian bit stream: code i in bits
    [i·b, i·b + b); identical to `hqc.quant.pack_codes` for b ∈ {2, 4, 8}."""
    if not 1 <= bits <= 8:
        raise ValueError(f"cannot pack {bits}-bit codes")
    c = np.asarray(codes, np.int64).reshape(-1)
    if c.size and (c.min() < 0 or c.max() >= 1 << bits):
        raise ValueError(f"codes outside 0..{(1 << bits) - 1}")
    if bits in (2, 4, 8):
        return pack_codes(c, bits)
    bitarr = ((c[:, None] >> np.arange(bits)) & 1).astype(np.uint8).reshape(-1)
    return np.packbits(bitarr, bitorder="little").tobytes()


def unpack_bits(data: bytes, bits: int, count: int) -> np.ndarray:
    """Inverse of `pack_bits`: (count,) unsigned codes."""
    raw = np.unpackbits(np.frombuffer(data, np.uint8), bitorder="little")[: count * bits]
    if raw.size != count * bits:
        raise ValueError("packed data too short")
    return (raw.reshape(count, bits).astype(np.int64) << np.arange(bits)).sum(axis=1)


# --------------------------------------------------------------------------- helpers
def ctype(lo: int, hi: int) -> str:
    """C type of an integer tensor with values in [lo, hi]."""
    if lo >= 0 and hi <= 1:
        return SPIKE
    if lo >= -(2**31) and hi < 2**31:
        return I32
    return I64


def _wide(t: str) -> str:
    return I64 if t == I64 else I32


def _prod(xs) -> int:
    n = 1
    for v in xs:
        n *= int(v)
    return n


def _strides(shape: tuple[int, ...]) -> list[int]:
    s, acc = [], 1
    for d in reversed(shape):
        s.append(acc)
        acc *= d
    return list(reversed(s))


class _ConvGeometry:
    """Shapes and attributes of one 1-D/2-D convolution (1-D as height 1)."""

    def __init__(self, N: int, C: int, H: int, W: int, CO: int, HO: int, WO: int, KH: int, KW: int,
                 SY: int, SX: int, DY: int, DX: int, PT: int, PL: int) -> None:
        self.N, self.C, self.H, self.W, self.CO, self.HO, self.WO = N, C, H, W, CO, HO, WO
        self.KH, self.KW, self.SY, self.SX, self.DY, self.DX, self.PT, self.PL = KH, KW, SY, SX, DY, DX, PT, PL

    @staticmethod
    def ranges(K: int, D: int, P: int, S: int, size: int, out: int) -> list[tuple[int, int, int]]:
        """Per tap k: (lo, hi, i_lo) — the outputs o in [lo, hi) whose input o·S + k·D − P
        lies inside [0, size), and the input of the first one (lo == hi: none)."""
        res = []
        for k in range(K):
            i0 = k * D - P
            lo = max(0, -(i0 // S)) if i0 < 0 else 0
            hi = min(out, (size - 1 - i0) // S + 1) if size - 1 - i0 >= 0 else 0
            hi = max(hi, lo)
            res.append((lo, hi, lo * S + i0))
        return res


def _array(name: str, ctyp: str, values: list[str], per_line: int = 16) -> list[str]:
    lines = [f"static const {ctyp} {name}[{max(1, len(values))}] = {{"]
    vals = values or ["0"]
    for i in range(0, len(vals), per_line):
        lines.append("    " + ", ".join(vals[i: i + per_line]) + ",")
    lines.append("};")
    return lines


def _ints(a: np.ndarray) -> list[str]:
    out = []
    for v in np.asarray(a, np.int64).reshape(-1).tolist():
        if v == -(2**63):
            out.append("INT64_MIN")
        elif abs(v) >= 2**31:
            out.append(f"INT64_C({v})")
        else:
            out.append(str(v))
    return out


def _loops(shape: tuple[int, ...], var: str = "d") -> tuple[list[str], list[str], str]:
    """Nested for-loops over `shape`; returns (open lines, close lines, indent)."""
    opens, closes = [], []
    ind = "    "
    for i, d in enumerate(shape):
        opens.append(f"{ind}for ({var}{i} = 0; {var}{i} < {d}; {var}{i}++) {{")
        closes.insert(0, f"{ind}}}")
        ind += "    "
    return opens, closes, ind


def _index(strides: list[int], var: str = "d", skip: int | None = None, zero: set[int] | None = None) -> str:
    terms = []
    for i, s in enumerate(strides):
        if i == skip or s == 0 or (zero and i in zero):
            continue
        terms.append(f"{var}{i}" if s == 1 else f"{var}{i} * {s}")
    return " + ".join(terms) or "0"


# --------------------------------------------------------------------------- emitter
class _CEmitter:
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

    def _tensor(self, t: str, alias_of: str | None = None, typ: str | None = None) -> None:
        if alias_of is not None:
            self.buf[t], self.typ[t] = self.buf[alias_of], self.typ[alias_of]
            return
        if t not in self.bounds:
            raise ModelError(f"C kernels: tensor {t!r} has no integer bound")
        lo, hi = self.bounds[t]
        self.typ[t] = typ or ctype(lo, hi)
        self.buf[t] = f"t{len(self.buf)}"
        size = _prod(self.g.shape(t))
        self.buffers.append(f"static {self.typ[t]} {self.buf[t]}[{size}];  // {t} {list(self.g.shape(t))}")

    def _fn(self, node) -> str:
        self.n += 1
        name = f"k{self.n}"
        self.calls.append(f"    {name}();  // {node.op} {node.name}")
        return name

    # ---------------------------------------------------------------- weight layers
    def _weights(self, node, fn: str) -> tuple[str, str]:
        a = node.attrs
        quant = str(a["quant"])
        if quant == "fp32":
            wf = np.asarray(a["w_float"], np.float32).reshape(-1)
            vals = [float(v).hex() + "f" if v != 0 else "0.0f" for v in wf.astype(np.float64)]
            self.data.append(f"// hqc-fp32 weights of {a['layer']}: {wf.size} float32")
            self.data += [ln + "  // hqc-fp32" if i == 0 else ln for i, ln in enumerate(_array(f"{fn}_w", "float", vals, 6))]
            inv = [float(np.ldexp(1.0, -int(e))).hex() for e in np.asarray(a["unit_exp"]).reshape(-1)]
            self.data += [ln + "  // hqc-fp32" if i == 0 else ln for i, ln in enumerate(_array(f"{fn}_u", "double", inv, 6))]
            nbytes = 4 * wf.size
        else:
            bits = int(a["bits"])
            packed = pack_bits(np.asarray(a["codes"]).reshape(-1), bits)
            self.data.append(f"// {a['layer']}: {quant}, {np.asarray(a['codes']).size} codes packed in {len(packed)} bytes")
            self.data += _array(f"{fn}_w", "uint8_t", [f"0x{v:02x}" for v in packed])
            nbytes = len(packed)
        self.weight_bytes.append({"layer": a["layer"], "quantizer": quant, "bytes": nbytes,
                                  "params": int(np.asarray(a["w"]).size)})
        return quant, f"{fn}_w"

    @staticmethod
    def _decode(quant: str, bits: int, in_spikes: bool, acc: str, w: str) -> list[str]:
        """Lines decoding the next weight (bit position bp) into q / v / sh+neg."""
        if quant == "fp32":
            return ["wv = (double)" + w + "[wi]; wi++;", "if (wv == 0.0) continue;"]
        mask = (1 << bits) - 1
        lines = [f"code = (uint32_t)({w}[bp >> 3] >> (bp & 7));"]
        if bits not in (1, 2, 4, 8):
            lines.append(f"if ((bp & 7) > {8 - bits}) code |= (uint32_t){w}[(bp >> 3) + 1] << (8 - (bp & 7));")
        lines += [f"code &= {mask}u;", f"bp += {bits};"]
        if quant.startswith("uni"):
            lines += [f"q = (int32_t)code - (int32_t)((code >> {bits - 1}) << {bits});", "if (q == 0) continue;"]
        else:
            kmax = (1 << (bits - 1)) - 1
            lines.append(f"sh = {kmax} - (int32_t)(code & {kmax}u);")
            if in_spikes:
                lines += [f"v = ({acc})1 << sh;", f"if (code >> {bits - 1}) v = -v;"]
            else:
                lines.append(f"neg = -({acc})(code >> {bits - 1});")
        return lines

    @staticmethod
    def _body(quant: str, in_spikes: bool, acc: str, x: str, Y: str, y: str) -> str:
        if quant == "fp32":
            return f"{Y}_d[{y}] += wv * (double){x};"
        if quant.startswith("uni"):
            return f"if ({x}) {Y}[{y}] += q;" if in_spikes else f"{Y}[{y}] += ({acc})q * {x};"
        if in_spikes:
            return f"if ({x}) {Y}[{y}] += v;"
        return f"t = {_SHL[acc]}({x}, sh); {Y}[{y}] += (t ^ neg) - neg;"

    def _decls(self, quant: str, in_spikes: bool, acc: str, extra: str) -> list[str]:
        d = [f"    int32_t {extra};"]
        if quant == "fp32":
            d.append("    int32_t wi = 0;")
            d.append("    double wv;")
        else:
            d.append("    uint32_t bp = 0, code;")
            if quant.startswith("uni"):
                d.append("    int32_t q;")
            else:
                d.append("    int32_t sh;")
                d.append(f"    {acc} v;" if in_spikes else f"    {acc} t, neg;")
        return d

    def _weight_layer(self, node) -> tuple[Graph, dict[str, Any], str, str, str, str, str, np.ndarray]:
        """What QConv and QLinear start with: the output buffer, the kernel function's
        name, the emitted weights → (graph, attrs, x, y, fn, quantizer, weight array, w)."""
        a = node.attrs
        x, y = node.inputs[0], node.outputs[0]
        self._tensor(y)
        fn = self._fn(node)
        quant, wname = self._weights(node, fn)
        return self.g, a, x, y, fn, quant, wname, np.asarray(a["w"])

    def _qconv(self, node) -> None:
        g, a, x, y, fn, quant, wname, w = self._weight_layer(node)
        nd = int(a["nd"])
        xs, ys = tuple(g.shape(x)), tuple(g.shape(y))
        if nd == 1:
            N, C, H, W = xs[0], xs[1], 1, xs[2]
            CO, HO, WO = ys[1], 1, ys[2]
            KH, KW = 1, w.shape[2]
            SY, SX = 1, a["strides"][0]
            DY, DX = 1, a["dilations"][0]
            PT, PL = 0, a["pads"][0]
        elif nd == 2:
            N, C, H, W = xs
            CO, HO, WO = ys[1], ys[2], ys[3]
            KH, KW = w.shape[2], w.shape[3]
            SY, SX = a["strides"]
            DY, DX = a["dilations"]
            PT, PL = a["pads"][0], a["pads"][1]
        else:
            raise ModelError(f"C kernels: {nd}-D convolution (node {node.name!r}) is not supported")
        acc = _wide(self.typ[y])
        in_spikes = self.typ[x] == SPIKE
        bits = int(a["bits"])
        X, Y = self.buf[x], self.buf[y]
        geo = _ConvGeometry(N, C, H, W, CO, HO, WO, KH, KW, SY, SX, DY, DX, PT, PL)
        lines = [f"// hqc-kernel begin {a['layer']} {quant} {'spikes' if in_spikes else 'integers'}",
                 f"static void {fn}(void)", "{"]
        tgt = Y + "_d" if quant == "fp32" else Y
        lines += self._conv_events(fn, quant, bits, acc, wname, X, tgt, geo, in_spikes)
        if quant == "fp32":
            lines.append(f"    for (n = 0, yn = 0; n < {N}; n++, yn += {CO * HO * WO})")
            lines.append(f"        for (co = 0, yc = yn; co < {CO}; co++, yc += {HO * WO})")
            lines.append(f"            for (i = 0; i < {HO * WO}; i++) {Y}[yc + i] = ({acc})({Y}_d[yc + i] * {fn}_u[co]);")
        lines += ["}", "// hqc-kernel end"]
        self._finish(lines, Y, quant, N * CO * HO * WO)

    def _conv_events(self, fn: str, quant: str, bits: int, acc: str, wname: str, X: str, tgt: str,
                     g: _ConvGeometry, in_spikes: bool) -> list[str]:
        """Event-driven convolution. Per time step and input channel: the weights are
        decoded into a small table [tap][output channel]; every nonzero input (a spike, or
        a nonzero integer with its value) is expanded into the (output position, tap)
        pairs it reaches inside the output; each pair adds its tap's row of the table
        (times the value, as a shift for power-of-two weights) to the outputs of all
        channels at its position, in a scratch accumulator laid out [position][channel]
        (a contiguous, test-free inner loop over the output channels), transposed into
        the output at the end of the time step. The work is proportional to the nonzero
        inputs, not to the input size. Each output sums its terms in the order of the
        direct loops (input channel, then tap), so fp32 layers' double sums are the same."""
        kk = g.KH * g.KW
        step_w = 1 if quant == "fp32" else bits  # per weight: one float, or `bits` bits
        plane = g.HO * g.WO
        pot_int = quant.startswith("pot") and not in_spikes
        self.data += _array(f"{fn}_rowc", "int32_t", [str(o * g.WO * g.CO) for o in range(g.HO)])
        self.data += _array(f"{fn}_colc", "int32_t", [str(o * g.CO) for o in range(g.WO)])
        lines = self._decls(quant, in_spikes, acc, "n, co, ci, ky, kx, tp, j, np, iy, ix, p, ty, tx, oy, ox, oyo, oxo, "
                                                   "xn, yn, xc, yc, si, wbi, b, i")
        lines.append("    int32_t wci, wco, i0, s0, y0, ie;")
        lines.append(f"    static int32_t po[{g.H * g.W * kk}], pt[{g.H * g.W * kk}];  // (output position, tap) pairs")
        if not in_spikes:
            lines.append(f"    static {acc} pv[{g.H * g.W * kk}];  // the pair's input value")
            lines.append(f"    {acc} xv;")
        if quant == "fp32":
            lines.append(f"    static double wb[{kk * g.CO}];  // one input channel's weights, [tap][output channel]")
        elif pot_int:
            lines.append(f"    static int32_t wsh[{kk * g.CO}];  // one input channel's weight shifts, [tap][output channel]")
            lines.append(f"    static {acc} wng[{kk * g.CO}];  // and their signs (0 or -1)")
        else:
            lines.append(f"    static {acc} wb[{kk * g.CO}];  // one input channel's weights, [tap][output channel]")
        atyp = "double" if quant == "fp32" else acc
        lines.append(f"    static {atyp} acc_s[{plane * g.CO}];  // one time step's outputs, [position][output channel]")
        lines.append(f"    for (n = 0, xn = 0, yn = 0; n < {g.N}; n++, xn += {g.C * g.H * g.W}, yn += {g.CO * plane}) {{")
        lines.append(f"        for (i = 0; i < {plane * g.CO}; i++) acc_s[i] = 0;")
        lines.append(f"        for (ci = 0, xc = xn, wci = 0; ci < {g.C}; ci++, xc += {g.H * g.W}, wci += {kk * step_w}) {{")
        lines.append(f"            for (iy = 0, p = xc, np = 0; iy < {g.H}; iy++) {{")
        lines.append(f"                for (ix = 0; ix < {g.W}; ix++, p++) {{")
        lines.append(f"                    if (!{X}[p]) continue;")
        if not in_spikes:
            lines.append(f"                    xv = ({acc}){X}[p];")
        # an input at (iy, ix) reaches output (oy, ox) through tap (ky, kx) when
        # oy·SY = iy + PT − ky·DY and ox·SX = ix + PL − kx·DX
        lines.append(f"                    for (ky = 0, oyo = {g.PT}, tp = 0; ky < {g.KH}; ky++, oyo -= {g.DY}) {{")
        lines.append("                        ty = iy + oyo;")
        lines += self._tap_coord("ty", "oy", g.SY, g.HO, "                        ", f"tp += {g.KW * g.CO}; ")
        lines.append(f"                        for (kx = 0, oxo = {g.PL}; kx < {g.KW}; kx++, oxo -= {g.DX}, tp += {g.CO}) {{")
        lines.append("                            tx = ix + oxo;")
        lines += self._tap_coord("tx", "ox", g.SX, g.WO, "                            ")
        lines.append(f"                            po[np] = {fn}_rowc[oy] + {fn}_colc[ox]; pt[np] = tp;"
                     + (" pv[np] = xv;" if not in_spikes else "") + " np++;")
        lines += ["                        }", "                    }", "                }", "            }"]
        lines.append("            if (np == 0) continue;")
        lines.append(f"            for (co = 0, wco = wci; co < {g.CO}; co++, wco += {g.C * kk * step_w}) {{")
        lines.append("                " + ("wi = wco;" if quant == "fp32" else "bp = (uint32_t)wco;"))
        lines.append(f"                for (tp = 0, wbi = co; tp < {kk}; tp++, wbi += {g.CO}) {{")
        for ln in self._decode(quant, bits, in_spikes, acc, wname):
            if "continue" not in ln:
                lines.append("                    " + ln)
        if pot_int:
            lines.append("                    wsh[wbi] = sh; wng[wbi] = neg;")
        else:
            lines.append("                    wb[wbi] = " + ("wv" if quant == "fp32" else "q" if quant.startswith("uni") else "v") + ";")
        lines += ["                }", "            }"]
        lines.append("            for (j = 0; j < np; j++) {")
        lines.append("                b = po[j]; wbi = pt[j];" + (" xv = pv[j];" if not in_spikes else ""))
        if in_spikes:
            add = "acc_s[b + co] += wb[wbi + co];"
        elif quant == "fp32":
            add = "acc_s[b + co] += wb[wbi + co] * (double)xv;"
        elif pot_int:
            add = f"t = {_SHL[acc]}(xv, wsh[wbi + co]); acc_s[b + co] += (t ^ wng[wbi + co]) - wng[wbi + co];"
        else:
            add = "acc_s[b + co] += wb[wbi + co] * xv;"
        lines.append(f"                for (co = 0; co < {g.CO}; co++) {{ {add} }}")
        lines += ["            }", "        }"]
        # transpose [position][channel] → [channel][position] in blocks of 16 positions
        # (the block's reads stay in the L1 cache)
        lines.append(f"        for (i0 = 0, s0 = 0, y0 = yn; i0 < {plane}; i0 += 16, s0 += {16 * g.CO}, y0 += 16) {{")
        lines.append(f"            ie = {plane} - i0 < 16 ? {plane} - i0 : 16;")
        lines.append(f"            for (co = 0, yc = y0; co < {g.CO}; co++, yc += {plane})")
        lines.append(f"                for (i = 0, si = s0 + co; i < ie; i++, si += {g.CO}) {tgt}[yc + i] = acc_s[si];")
        lines += ["        }", "    }"]
        return lines

    @staticmethod
    def _tap_coord(t: str, o: str, stride: int, size: int, ind: str, skip: str = "") -> list[str]:
        """Lines mapping an input offset `t` to output coordinate `o`, or (`skip`, then)
        `continue` when it has none."""
        if stride == 1:
            return [f"{ind}if ({t} < 0 || {t} >= {size}) {{ {skip}continue; }}", f"{ind}{o} = {t};"]
        return [f"{ind}if ({t} < 0 || {t} % {stride} != 0) {{ {skip}continue; }}", f"{ind}{o} = {t} / {stride};",
                f"{ind}if ({o} >= {size}) {{ {skip}continue; }}"]

    def _finish(self, lines: list[str], Y: str, quant: str, size: int) -> None:
        if quant == "fp32":
            self.buffers.append(f"static double {Y}_d[{size}];  // hqc-fp32 accumulator")
        self.funcs.append("\n".join(lines))

    def _qlinear(self, node) -> None:
        g, a, x, y, fn, quant, wname, w = self._weight_layer(node)
        NO, NI = w.shape
        M = _prod(g.shape(x)) // NI
        acc = _wide(self.typ[y])
        in_spikes = self.typ[x] == SPIKE
        X, Y = self.buf[x], self.buf[y]
        lines = [f"// hqc-kernel begin {a['layer']} {quant} {'spikes' if in_spikes else 'integers'}",
                 f"static void {fn}(void)", "{"]
        lines += self._decls(quant, in_spikes, acc, "o, k, m, xi, yi, i")
        tgt = Y + "_d" if quant == "fp32" else Y
        lines.append(f"    for (i = 0; i < {M * NO}; i++) {tgt}[i] = 0;")
        lines.append(f"    for (o = 0; o < {NO}; o++) {{")
        lines.append(f"        for (k = 0; k < {NI}; k++) {{")
        for ln in self._decode(quant, int(a["bits"]), in_spikes, acc, wname):
            lines.append("            " + ln)
        lines.append(f"            for (m = 0, xi = k, yi = o; m < {M}; m++, xi += {NI}, yi += {NO}) {{")
        lines.append(f"                {self._body(quant, in_spikes, acc, X + '[xi]', Y, 'yi')}")
        lines += ["            }", "        }", "    }"]
        if quant == "fp32":
            lines.append(f"    for (m = 0, yi = 0; m < {M}; m++)")
            lines.append(f"        for (o = 0; o < {NO}; o++, yi++) {Y}[yi] = ({acc})({Y}_d[yi] * {fn}_u[o]);")
        lines += ["}", "// hqc-kernel end"]
        self._finish(lines, Y, quant, M * NO)

    # ---------------------------------------------------------------- neurons
    def _lif(self, node) -> None:
        g = self.g
        a = node.attrs
        x, y = node.inputs[0], node.outputs[0]
        self._tensor(y)
        fn = self._fn(node)
        shape = tuple(g.shape(x))
        ta = int(a["time_axis"])
        step = tuple(d for i, d in enumerate(shape) if i != ta)
        mem = I32 if int(a["mem_bits"]) <= 31 else I64
        k, xs, F = int(a["tau_shift"]), int(a["x_shift"]), int(a["frac_bits"])
        pshape = np.asarray(a["bias"]).shape
        if len(pshape) != len(step):
            raise ModelError(f"C kernels: LIF {node.name!r} parameters of rank {len(pshape)}")
        pstr = [s if d > 1 else 0 for s, d in zip(_strides(pshape), pshape, strict=True)]
        vstr = _strides(step)
        full_p = [0] * len(shape)
        full_v = [0] * len(shape)
        j = 0
        for i in range(len(shape)):
            if i == ta:
                continue
            full_p[i], full_v[i] = pstr[j], vstr[j]
            j += 1
        ptype = "int32_t" if mem == I32 else "int64_t"
        self.data += _array(f"{fn}_sg", "int8_t", _ints(a["sign"]))
        self.data += _array(f"{fn}_b", ptype, _ints(a["bias"]))
        self.data += _array(f"{fn}_th", ptype, _ints(a["theta"]))
        self.buffers.append(f"static {mem} {fn}_v[{_prod(step)}];  // membrane of {node.name}")
        X, Y = self.buf[x], self.buf[y]
        opens, closes, ind = _loops(shape)
        lines = [f"// hqc-kernel begin {a.get('neuron', node.name)} lif F={F}", f"static void {fn}(void)", "{",
                 "    int32_t " + ", ".join(f"d{i}" for i in range(len(shape))) + ", i, xi, vi, pi;",
                 f"    {mem} xv, num, h;", "    int s;",
                 f"    for (i = 0; i < {_prod(step)}; i++) {fn}_v[i] = 0;"]
        lines += opens
        lines += [
            f"{ind}xi = {_index(_strides(shape))};",
            f"{ind}vi = {_index(full_v)};",
            f"{ind}pi = {_index(full_p)};",
            f"{ind}xv = ({mem}){X}[xi];",
            f"{ind}if ({fn}_sg[pi] < 0) xv = -xv; else if ({fn}_sg[pi] == 0) xv = 0;",
            f"{ind}xv = {_SHL[mem]}(xv, {F}) + {fn}_b[pi];",
            f"{ind}num = {_SHL[mem]}({fn}_v[vi], {k}) - {fn}_v[vi] + {_SHL[mem]}(xv, {xs});",
            f"{ind}h = num >> {k};",
            f"{ind}s = h >= {fn}_th[pi];",
            f"{ind}{fn}_v[vi] = s ? 0 : h;",
            f"{ind}{Y}[xi] = (uint8_t)s;",
        ]
        lines += closes
        lines += ["}", "// hqc-kernel end"]
        self.funcs.append("\n".join(lines))

    # ---------------------------------------------------------------- other ops
    def _simple(self, node, body: list[str], decl: str = "") -> None:
        fn = self._fn(node)
        lines = [f"// hqc-kernel begin {node.name} {node.op.lower()}", f"static void {fn}(void)", "{"]
        if decl:
            lines.append("    " + decl)
        lines += body
        lines += ["}", "// hqc-kernel end"]
        self.funcs.append("\n".join(lines))

    def _elementwise(self, node) -> None:
        y = node.outputs[0]
        self._tensor(y)
        size = _prod(self.g.shape(y))
        ins = [self.buf[t] for t in node.inputs]
        Y = self.buf[y]
        w = _wide(self.typ[y])
        if node.op == "Add":
            expr = f"({w}){ins[0]}[i] + ({w}){ins[1]}[i]"
        elif node.op == "Sub":
            expr = f"({w}){ins[0]}[i] - ({w}){ins[1]}[i]"
        else:
            expr = f"{_SHL[w]}({ins[0]}[i], {int(node.attrs['n'])})"
        self._simple(node, [f"    for (i = 0; i < {size}; i++) {Y}[i] = ({self.typ[y]})({expr});"], "int32_t i;")

    def _transpose(self, node) -> None:
        x, y = node.inputs[0], node.outputs[0]
        self._tensor(y)
        perm = list(node.attrs["perm"])
        xs = tuple(self.g.shape(x))
        ys = tuple(self.g.shape(y))
        xst = _strides(xs)
        opens, closes, ind = _loops(ys)
        src = _index([xst[p] for p in perm])
        body = opens + [f"{ind}{self.buf[y]}[yi++] = {self.buf[x]}[{src}];"] + closes
        decl = "int32_t " + ", ".join(f"d{i}" for i in range(len(ys))) + ", yi = 0;"
        self._simple(node, body, decl)

    def _matmul(self, node) -> None:
        a, b = node.inputs
        y = node.outputs[0]
        self._tensor(y)
        sa, sb, sy = (tuple(self.g.shape(t)) for t in (a, b, y))
        if len(sa) < 2 or len(sb) < 2 or sa[:-2] != sb[:-2]:
            raise ModelError(f"C kernels: MatMul {node.name!r} with broadcast batch dims {list(sa)} @ {list(sb)}")
        M, K, N = sa[-2], sa[-1], sb[-1]
        batch = _prod(sa[:-2])
        w = _wide(self.typ[y])
        A, B, Y = self.buf[a], self.buf[b], self.buf[y]
        ta, tb = self.typ[a], self.typ[b]
        # row by row: each nonzero A[m, k] adds (its share of) row k of B to row m of Y,
        # a contiguous loop over n; zeros of A (most of a spike tensor) cost one test
        if tb == SPIKE and ta == SPIKE:
            add = f"r[n] += {B}[bk + n];"
        elif tb == SPIKE:
            add = f"r[n] += av & -({w}){B}[bk + n];"  # B is 0/1: a mask, no multiply
        elif ta == SPIKE:
            add = f"r[n] += {B}[bk + n];"
        else:
            add = f"r[n] += av * {B}[bk + n];"
        body = [
            f"    static {w} r[{N}];",
            f"    for (bt = 0, ai = 0, bb = 0, yi = 0; bt < {batch}; bt++, bb += {K * N})",
            f"        for (m = 0; m < {M}; m++) {{",
            f"            for (n = 0; n < {N}; n++) r[n] = 0;",
            f"            for (k = 0, bk = bb; k < {K}; k++, ai++, bk += {N}) {{",
            f"                av = ({w}){A}[ai];",
            "                if (av == 0) continue;",
            f"                for (n = 0; n < {N}; n++) {add}",
            "            }",
            f"            for (n = 0; n < {N}; n++, yi++) {Y}[yi] = ({self.typ[y]})r[n];",
            "        }",
        ]
        self._simple(node, body, f"int32_t bt, m, n, k, ai, bb, bk, yi; {w} av;")

    def _maxpool(self, node) -> None:
        x, y = node.inputs[0], node.outputs[0]
        self._tensor(y)
        xs, ys = tuple(self.g.shape(x)), tuple(self.g.shape(y))
        k = list(node.attrs["kernel_shape"])
        st = list(node.attrs["strides"])
        pads = list(node.attrs["pads"])
        if len(k) == 1:
            xs, ys, k, st, pads = (xs[0], xs[1], 1, xs[2]), (ys[0], ys[1], 1, ys[2]), [1] + k, [1] + st, [0, pads[0], 0, pads[1]]
        if len(k) != 2:
            raise ModelError(f"C kernels: {len(k)}-D max-pool (node {node.name!r})")
        N, C, H, W = xs
        HO, WO = ys[2], ys[3]
        X, Y = self.buf[x], self.buf[y]
        lo = {SPIKE: "0", I32: "INT32_MIN", I64: "INT64_MIN"}[self.typ[x]]
        # separable: a row pass (max over the window's columns) into a scratch plane, then a
        # column pass (max over the window's rows); each tap's output range is clipped to
        # the input beforehand, so the inner loops are contiguous and test-free
        xr_ = _ConvGeometry.ranges(k[1], 1, pads[1], st[1], W, WO)
        fn_tab = f"mp{len(self.funcs)}"
        self.data += _array(f"{fn_tab}_oxlo", "int32_t", [str(r[0]) for r in xr_])
        self.data += _array(f"{fn_tab}_oxhi", "int32_t", [str(r[1]) for r in xr_])
        self.data += _array(f"{fn_tab}_ixlo", "int32_t", [str(r[2]) for r in xr_])
        # output row oy takes the input rows [oy·S − P, oy·S − P + K) ∩ [0, H)
        rows = [(max(0, oy * st[0] - pads[0]), min(H, oy * st[0] - pads[0] + k[0])) for oy in range(HO)]
        self.data += _array(f"{fn_tab}_iy0", "int32_t", [str(a * WO) for a, _ in rows])
        self.data += _array(f"{fn_tab}_iy1", "int32_t", [str(b * WO) for _, b in rows])
        typ = self.typ[x]
        body = [
            f"    static {typ} h[{H * WO}];  // row pass of one plane",
            f"    for (p = 0, xp = 0, yi = 0; p < {N * C}; p++, xp += {H * W}) {{",
            f"        for (iy = 0, xr = xp, hr = 0; iy < {H}; iy++, xr += {W}, hr += {WO}) {{",
            f"            for (ox = 0; ox < {WO}; ox++) h[hr + ox] = {lo};",
            f"            for (kx = 0; kx < {k[1]}; kx++)",
            f"                for (ox = {fn_tab}_oxlo[kx], ix = xr + {fn_tab}_ixlo[kx]; ox < {fn_tab}_oxhi[kx]; ox++, ix += {st[1]})",
            f"                    h[hr + ox] = {X}[ix] > h[hr + ox] ? {X}[ix] : h[hr + ox];",
            "        }",
            f"        for (oy = 0; oy < {HO}; oy++, yi += {WO}) {{",
            f"            for (ox = 0; ox < {WO}; ox++) {Y}[yi + ox] = {lo};",
            f"            for (hr = {fn_tab}_iy0[oy]; hr < {fn_tab}_iy1[oy]; hr += {WO})",
            f"                for (ox = 0; ox < {WO}; ox++) {Y}[yi + ox] = h[hr + ox] > {Y}[yi + ox] ? h[hr + ox] : {Y}[yi + ox];",
            "        }",
            "    }",
        ]
        self._simple(node, body, "int32_t p, oy, ox, iy, ix, kx, xp, xr, hr, yi;")

    def _reducesum(self, node) -> None:
        x, y = node.inputs[0], node.outputs[0]
        self._tensor(y)
        xs = tuple(self.g.shape(x))
        axes = set(int(v) for v in node.attrs["axes"])
        kept = tuple(1 if i in axes else d for i, d in enumerate(xs))
        ost = _strides(kept)
        opens, closes, ind = _loops(xs)
        body = [f"    for (i = 0; i < {_prod(self.g.shape(y))}; i++) {self.buf[y]}[i] = 0;"]
        body += opens + [f"{ind}{self.buf[y]}[{_index(ost, zero=axes)}] += {self.buf[x]}[xi++];"] + closes
        decl = "int32_t " + ", ".join(f"d{i}" for i in range(len(xs))) + ", i, xi = 0;"
        self._simple(node, body, decl)

    def _requant(self, node) -> None:
        x, y = node.inputs[0], node.outputs[0]
        self._tensor(y, typ=I64)
        shape = tuple(self.g.shape(y))
        mult, bias = np.asarray(node.attrs["mult"]), np.asarray(node.attrs["bias"])
        fn = f"k{self.n + 1}"
        self.data += _array(f"{fn}_m", "int64_t", _ints(mult))
        self.data += _array(f"{fn}_b", "int64_t", _ints(bias))
        pstr = [s if d > 1 else 0 for s, d in zip(_strides(mult.shape), mult.shape, strict=True)]
        opens, closes, ind = _loops(shape)
        body = opens + [f"{ind}pi = {_index(pstr)};",
                        f"{ind}{self.buf[y]}[yi] = hqc_mul_shift_add((int64_t){self.buf[x]}[yi], {fn}_m[pi]) + {fn}_b[pi];",
                        f"{ind}yi++;"] + closes
        decl = "int32_t " + ", ".join(f"d{i}" for i in range(len(shape))) + ", pi, yi = 0;"
        self._simple(node, body, decl)

    # ---------------------------------------------------------------- driver
    def emit(self) -> dict[str, str]:
        g = self.g
        inp = g.inputs[0]
        self._tensor(inp)
        for node in g.nodes():
            op = node.op
            if op == "Reshape":
                self._tensor(node.outputs[0], alias_of=node.inputs[0])
            elif op == "QConv":
                self._qconv(node)
            elif op == "QLinear":
                self._qlinear(node)
            elif op == "LIF":
                self._lif(node)
            elif op in ("Add", "Sub", "Shl"):
                self._elementwise(node)
            elif op == "Transpose":
                self._transpose(node)
            elif op == "MatMul":
                self._matmul(node)
            elif op == "MaxPool":
                self._maxpool(node)
            elif op == "ReduceSum":
                self._reducesum(node)
            elif op == "Requant":
                self._requant(node)
            else:
                raise ModelError(f"C kernels: no kernel for {op} (node {node.name!r})")
        out = g.outputs[0]
        in_size, out_size = _prod(g.shape(inp)), _prod(g.shape(out))
        lo, hi = self.bounds[inp]
        if lo < -(2**15) or hi >= 2**15:
            raise ModelError(f"C kernels: the input range {lo}..{hi} does not fit int16")
        return {
            "hqc_model.h": _HEADER.format(in_size=in_size, out_size=out_size, lo=lo, hi=hi,
                                          in_shape=list(g.shape(inp)), out_shape=list(g.shape(out)),
                                          weight_bytes=sum(w["bytes"] for w in self.weight_bytes)),
            "hqc_model.c": self._source(inp, out, in_size, out_size, lo, hi),
            "main.c": _MAIN,
            "Makefile": _MAKEFILE,
        }

    def _source(self, inp: str, out: str, in_size: int, out_size: int, lo: int, hi: int) -> str:
        parts = [
            "/* Generated by hqc lower: integer/shift-only kernels of the lowered model. */",
            "#include <stdint.h>",
            '#include "hqc_model.h"',
            "",
            "#define HQC_SHL32(x, n) ((int32_t)((uint32_t)(int32_t)(x) << (n)))",
            "#define HQC_SHL64(x, n) ((int64_t)((uint64_t)(int64_t)(x) << (n)))",
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
            *self.data,
            "",
            "/* ---- activations (static, not reused) ---- */",
            *self.buffers,
            "",
            "/* ---- kernels ---- */",
            *self.funcs,
            "",
            "int hqc_model_run(const int16_t input[], int64_t logits[])",
            "{",
            "    int32_t i;",
            f"    for (i = 0; i < {in_size}; i++) {{",
            f"        if (input[i] < {lo} || input[i] > {hi}) return -1;",
            f"        {self.buf[inp]}[i] = ({self.typ[inp]})input[i];",
            "    }",
            *self.calls,
            f"    for (i = 0; i < {out_size}; i++) logits[i] = (int64_t){self.buf[out]}[i];",
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
#define HQC_WEIGHT_BYTES {weight_bytes}

/* Runs the model on one input; returns 0, or -1 (nothing computed) when an input value
   lies outside [HQC_INPUT_MIN, HQC_INPUT_MAX]. Not reentrant: static buffers. */
int hqc_model_run(const int16_t input[], int64_t logits[]);

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
        if (hqc_model_run(input, logits) != 0) {
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
# Generated by hqc lower.  make && ./hqc_test input.bin
CC = gcc
CFLAGS ?= -O2 -std=c99 -Wall -Wextra -pedantic

hqc_test: main.c hqc_model.c hqc_model.h
\t$(CC) $(CFLAGS) -o $@ main.c hqc_model.c

clean:
\trm -f hqc_test

.PHONY: clean
"""


def emit_kernels(g: Graph) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """Lowered IR → ({file name: text} of kernels/, per-layer packed weight bytes).

    Pre: `g` came from lower-int, graph.meta["bounds"] present. Post: `make` builds
    hqc_test, whose logits equal `hqc.intref.run` on the same inputs.
    """
    em = _CEmitter(g)
    files = em.emit()
    return files, em.weight_bytes


def write_kernels(g: Graph, directory: str | Path) -> list[dict[str, Any]]:
    """Write kernels/ into `directory` (created); returns the per-layer weight bytes."""
    files, wb = emit_kernels(g)
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (d / name).write_text(text, encoding="utf-8")
    return wb


def build(directory: str | Path, timeout_s: float = 600.0) -> Path:
    """`make` in a kernels folder → path of hqc_test. Raises ModelError with the compiler's
    first error line when the build fails."""
    import subprocess

    d = Path(directory)
    res = subprocess.run(["make", "-s", "-C", str(d)], capture_output=True, text=True, timeout=timeout_s)
    if res.returncode != 0:
        first = next((ln for ln in (res.stderr + res.stdout).splitlines() if "error" in ln), res.stderr.strip()[:200])
        raise ModelError(f"{d}: make failed: {first}")
    return d / "hqc_test"


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

