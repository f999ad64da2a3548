"""Weight layers of the integer dialect: QConv and QLinear.

    QConv(x)      y[n,o,p] = Σ_{c,k} w[o,c,k] · x_pad[n, c, p·stride + k·dilation]
                  (zero padding; w = the layer's integer weights: uniform codes q,
                  power-of-two ±2^(kmax−k), fp32 mantissas on the per-channel grid)
                  group > 1 (attribute `group`, default 1): output channel o sees the
                  input channels of its group only, c ∈ [j·C/G, (j+1)·C/G), j = o div O/G;
                  w (O, C/G, k…) (depthwise: G = C)
    QLinear(x)    y[..., o] = Σ_i w[o, i] · x[..., i]
                  weight_left = 1: y[..., o, n] = Σ_i w[o, i] · x[..., i, n]  (W · x)

Attributes: `layer`, `quant` (fp32 | uniN | potN), `bits`, `w` (int64, PyTorch layout),
`codes` (the packed storage words, uniform/pot) or `w_float` + `unit_exp` (fp32);
QConv adds `nd`, `strides`, `pads`, `dilations` and optionally `group`; QLinear
optionally `weight_left`. The weights are stored in PyTorch layout either way, so a
layer's packed bytes are ⌈params · bits / 8⌉ with or without groups.

ONNX: QConv is Pad(0) → Reshape (N, C·Hp·Wp) → Gather(im2col indices) → MatMul(int64
weight matrix) → Transpose → Reshape (grouped: the columns reshaped to (N, G, P, C/G·k)
and one batched MatMul with the (G, C/G·k, O/G) weights); QLinear is MatMul(x, Wᵀ)
(weight_left: MatMul(W, x)). An fp32 layer casts to double, multiplies by the float32
weights held as double, scales by 2^-e per channel (exact) and casts back to int64: the
accumulation is exact (docs/lowering.md), so the integers equal the reference's.
C: event-driven convolution (only nonzero inputs work; grouped: each input channel adds
into the O/G outputs of its group), weight-stationary linear loops; power-of-two layers
shift and add (no `*`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from onnx import TensorProto

from hqc.errors import ModelError
from hqc.intops.base import Interval, IntOp, prod, register, weighted_sum_bounds
from hqc.intops.cgen import KERNEL_PARAMS, SHL, SPIKE, CEmitter, c_array, c_ints, wide
from hqc.intops.onnxgen import I64, OnnxBuilder, windows_gather
from hqc.ir import Graph, Node
from hqc.quant import pack_codes

_EXACT = float(2**53)


# --------------------------------------------------------------------------- numpy kernels
def imatmul(a: np.ndarray, b: np.ndarray, engine: str = "auto") -> np.ndarray:
    """Exact int64 a @ b (numpy broadcasting). engine: auto | int64 | float64.

    Integer matrix products go through float64 BLAS only when max|a|·max|b|·K < 2^53,
    which makes every partial sum an exactly representable integer (the result equals
    int64 arithmetic bit for bit); otherwise numpy's int64 matmul runs."""
    a = np.asarray(a, np.int64)
    b = np.asarray(b, np.int64)
    k = a.shape[-1]
    if engine != "int64" and a.size and b.size:
        bound = float(np.abs(a).max()) * float(np.abs(b).max()) * k
        if bound < _EXACT:
            return np.matmul(a.astype(np.float64), b.astype(np.float64)).astype(np.int64)
        if engine == "float64":
            raise ModelError("float64 engine: product bound exceeds 2^53")
    return np.matmul(a, b)


def pad_spatial(x: np.ndarray, pads: list[int], nd: int, value: int) -> np.ndarray:
    """Pad the last nd axes of x (ONNX pads order) with `value`."""
    width = [(0, 0)] * (x.ndim - nd) + [(pads[i], pads[i + nd]) for i in range(nd)]
    if not any(p for pr in width for p in pr):
        return x
    return np.pad(x, width, constant_values=value)


def windows(x: np.ndarray, kernel: list[int], strides: list[int], dil: list[int]) -> np.ndarray:
    """x (B, C, *sp) → (B, C, *out, *k) windows (a view)."""
    nd = len(kernel)
    span = [(k - 1) * d + 1 for k, d in zip(kernel, dil, strict=True)]
    v = sliding_window_view(x, span, axis=tuple(range(2, 2 + nd)))
    sl = [slice(None)] * 2 + [slice(None, None, s) for s in strides] + [slice(None, None, d) for d in dil]
    return v[tuple(sl)]


def conv_int(x: np.ndarray, w: np.ndarray, strides: list[int], pads: list[int], dil: list[int],
             engine: str = "auto", group: int = 1) -> np.ndarray:
    """Exact integer convolution, x (B, C, *sp) int64, w (O, C/group, *k) int64 → (B, O, *out).

    group > 1: the channels split into `group` consecutive blocks, output block j
    (O/group channels) sees input block j only (ONNX/PyTorch grouped convolution;
    depthwise when group = C)."""
    nd = w.ndim - 2
    xp = pad_spatial(np.asarray(x, np.int64), pads, nd, 0)
    win = windows(xp, list(w.shape[2:]), strides, dil)  # (B, C, *out, *k)
    bsz, c = win.shape[:2]
    out = win.shape[2: 2 + nd]
    if group != 1:
        return _grouped_conv(win, np.asarray(w, np.int64), group, engine)
    perm = [0] + list(range(2, 2 + nd)) + [1] + list(range(2 + nd, 2 + 2 * nd))
    cols = win.transpose(perm).reshape(bsz * int(np.prod(out)), -1)
    y = imatmul(cols, w.reshape(w.shape[0], -1).T, engine)  # (B·out, O)
    y = y.reshape((bsz,) + tuple(out) + (w.shape[0],))
    return np.moveaxis(y, -1, 1)


def _grouped_conv(win: np.ndarray, w: np.ndarray, group: int, engine: str) -> np.ndarray:
    """Windows (B, C, *out, *k) and grouped weights (O, C/G, *k) → (B, O, *out): one
    batched matrix product (G, B·out, C/G·k) @ (G, C/G·k, O/G); with few outputs per
    group (depthwise) an int64 accumulation over the (input channel, tap) pairs of a
    group instead, which needs no im2col copy."""
    nd = w.ndim - 2
    bsz, c = win.shape[:2]
    out = tuple(win.shape[2: 2 + nd])
    o, cg = w.shape[0], c // group
    if o // group < 16:
        og = o // group
        kshape = tuple(w.shape[2:])
        wg = w.reshape((group, og, cg) + kshape)
        xg = win.reshape((bsz, group, cg) + win.shape[2:])  # (B, G, Cg, *out, *k), a view
        y = np.zeros((bsz, group, og) + out, np.int64)
        lead = (1, group, og) + (1,) * nd
        for ci in range(cg):
            for k in np.ndindex(*kshape):
                xs = xg[(slice(None), slice(None), ci, Ellipsis) + k]  # (B, G, *out)
                y += wg[(slice(None), slice(None), ci) + k].reshape(lead) * xs[:, :, None]
        return y.reshape((bsz, o) + out)
    win = win.reshape((bsz, group, cg) + win.shape[2:])  # (B, G, Cg, *out, *k)
    perm = [1, 0] + list(range(3, 3 + nd)) + [2] + list(range(3 + nd, 3 + 2 * nd))
    cols = win.transpose(perm).reshape(group, bsz * int(np.prod(out)), -1)
    wg = w.reshape(group, o // group, -1).transpose(0, 2, 1)  # (G, Cg·k, Og)
    y = imatmul(cols, wg, engine)  # (G, B·out, Og)
    y = y.reshape((group, bsz) + out + (o // group,))
    y = np.moveaxis(y, -1, 1)  # (G, Og, B, *out)
    return np.moveaxis(y.reshape((o, bsz) + out), 1, 0)


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


# --------------------------------------------------------------------------- ONNX
def _onnx_qmatmul(b: OnnxBuilder, x: str, node: Node, base: str) -> str:
    """x (..., K) int64 @ the layer's weights (O, K) → (..., O) int64 (float island for fp32)."""
    w = np.asarray(node.attrs["w"], np.int64)
    wmat = w.reshape(w.shape[0], -1)
    if node.attrs["quant"] == "fp32":
        first = len(b.nodes)
        wf = np.asarray(node.attrs["w_float"], np.float32).reshape(w.shape[0], -1).astype(np.float64)
        xd = b.op("Cast", [x], base, to=TensorProto.DOUBLE)
        y = b.op("MatMul", [xd, b.const(np.ascontiguousarray(wf.T), base + "_wf")], base)
        inv = np.ldexp(1.0, -np.asarray(node.attrs["unit_exp"], np.int64).astype(np.int32))
        y = b.op("Mul", [y, b.const(inv.astype(np.float64), base + "_inv_unit")], base)
        y = b.op("Cast", [y], base, to=I64)
        b.mark_fp32(first, node.attrs["layer"])
        return y
    return b.op("MatMul", [x, b.const(np.ascontiguousarray(wmat.T), base + "_w")], base)


def _onnx_grouped_matmul(b: OnnxBuilder, cols: str, node: Node, base: str, n: int, rows: int) -> str:
    """Grouped im2col columns (N, P, C·k) → (N, G, O/G, P): group j's columns (N, P, C/G·k)
    times its weights (C/G·k, O/G), as one batched int64 MatMul (float island for fp32)."""
    w = np.asarray(node.attrs["w"], np.int64)
    grp = int(node.attrs["group"])
    o = w.shape[0]
    x = b.op("Reshape", [cols, b.i64([n, rows, grp, -1])], base)
    x = b.op("Transpose", [x], base, perm=[0, 2, 1, 3])  # (N, G, P, Cg·k)
    if node.attrs["quant"] == "fp32":
        first = len(b.nodes)
        wf = np.asarray(node.attrs["w_float"], np.float32).reshape(grp, o // grp, -1).astype(np.float64)
        xd = b.op("Cast", [x], base, to=TensorProto.DOUBLE)
        y = b.op("MatMul", [xd, b.const(np.ascontiguousarray(wf.transpose(0, 2, 1)), base + "_wf")], base)
        inv = np.ldexp(1.0, -np.asarray(node.attrs["unit_exp"], np.int64).astype(np.int32))
        y = b.op("Mul", [y, b.const(inv.reshape(grp, 1, o // grp).astype(np.float64), base + "_inv_unit")], base)
        y = b.op("Cast", [y], base, to=I64)
        b.mark_fp32(first, node.attrs["layer"])
    else:
        wg = np.ascontiguousarray(w.reshape(grp, o // grp, -1).transpose(0, 2, 1))
        y = b.op("MatMul", [x, b.const(wg, base + "_w")], base)  # (N, G, P, Og)
    return b.op("Transpose", [y], base, perm=[0, 1, 3, 2])


def _onnx_left_matmul(b: OnnxBuilder, x: str, node: Node, base: str) -> str:
    """W (O, K) @ x (..., K, M) → (..., O, M) int64 (float island for fp32)."""
    w = np.asarray(node.attrs["w"], np.int64)
    if node.attrs["quant"] == "fp32":
        first = len(b.nodes)
        wf = np.asarray(node.attrs["w_float"], np.float32).astype(np.float64)
        xd = b.op("Cast", [x], base, to=TensorProto.DOUBLE)
        y = b.op("MatMul", [b.const(np.ascontiguousarray(wf), base + "_wf"), xd], base)
        inv = np.ldexp(1.0, -np.asarray(node.attrs["unit_exp"], np.int64).astype(np.int32))
        y = b.op("Mul", [y, b.const(inv.reshape(-1, 1).astype(np.float64), base + "_inv_unit")], base)
        y = b.op("Cast", [y], base, to=I64)
        b.mark_fp32(first, node.attrs["layer"])
        return y
    return b.op("MatMul", [b.const(np.ascontiguousarray(w), base + "_w"), x], base)


# --------------------------------------------------------------------------- C
class ConvGeometry:
    """Shapes and attributes of one 1-D/2-D convolution (1-D as height 1)."""

    def __init__(self, N: int, C: int, H: int, W: int, CO: int, HO: int, WO: int, KH: int, KW: int,
                 SY: int, SX: int, DY: int, DX: int, PT: int, PL: int, G: int = 1) -> None:
        self.N, self.C, self.H, self.W, self.CO, self.HO, self.WO = N, C, H, W, CO, HO, WO
        self.KH, self.KW, self.SY, self.SX, self.DY, self.DX, self.PT, self.PL = KH, KW, SY, SX, DY, DX, PT, PL
        self.G, self.CG, self.OG = G, C // G, CO // G  # groups, input and output channels per group


# ---------------------------------------------------------------- weight layers
def _c_weights(e: CEmitter, node: Node, fn: str, conv: bool = False) -> tuple[str, str]:
    """Emit the layer's weights. Codes are packed in PyTorch order, except for a QConv
    (`conv`): [group][input channel][tap][output channel of the group], so that one input
    channel's table is one contiguous run of the bit stream (same byte count)."""
    a = node.attrs
    quant = str(a["quant"])
    if quant == "fp32":
        wf = np.asarray(a["w_float"], np.float32).reshape(-1)
        vals = [float(v).hex() + "f" if v != 0 else "0.0f" for v in wf.astype(np.float64)]
        e.data.append(f"// hqc-fp32 weights of {a['layer']}: {wf.size} float32")
        e.data += [ln + "  // hqc-fp32" if i == 0 else ln for i, ln in enumerate(c_array(f"{fn}_w", "float", vals, 6))]
        inv = [float(np.ldexp(1.0, -int(e))).hex() for e in np.asarray(a["unit_exp"]).reshape(-1)]
        e.data += [ln + "  // hqc-fp32" if i == 0 else ln for i, ln in enumerate(c_array(f"{fn}_u", "double", inv, 6))]
        nbytes = 4 * wf.size
    else:
        bits = int(a["bits"])
        codes = np.asarray(a["codes"])
        if conv:
            grp = int(a.get("group", 1))
            o, cg = codes.shape[:2]
            codes = codes.reshape(grp, o // grp, cg, -1).transpose(0, 2, 3, 1)
        packed = pack_bits(codes.reshape(-1), bits)
        e.data.append(f"// {a['layer']}: {quant}, {np.asarray(a['codes']).size} codes packed in {len(packed)} bytes")
        e.data += c_array(f"{fn}_w", "uint8_t", [f"0x{v:02x}" for v in packed])
        nbytes = len(packed)
    e.weight_bytes.append({"layer": a["layer"], "quantizer": quant, "bytes": nbytes,
                              "params": int(np.asarray(a["w"]).size)})
    return quant, f"{fn}_w"

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

def _body(quant: str, in_spikes: bool, acc: str, x: str, Y: str, y: str) -> str:
    if quant == "fp32":
        return f"{Y}_d[{y}] += wv * (double){x};"
    if quant.startswith("uni"):
        return f"if ({x}) {Y}[{y}] += q;" if in_spikes else f"{Y}[{y}] += ({acc})q * {x};"
    if in_spikes:
        return f"if ({x}) {Y}[{y}] += v;"
    return f"t = {SHL[acc]}({x}, sh); {Y}[{y}] += (t ^ neg) - neg;"

def _decls(quant: str, in_spikes: bool, acc: str, extra: str) -> list[str]:
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

def _weight_layer(e: CEmitter, node: Node) -> tuple[Graph, dict[str, Any], str, str, str, str, str, np.ndarray]:
    """What QConv and QLinear start with: the output buffer, the kernel function's
    name, the emitted weights → (graph, attrs, x, y, fn, quantizer, weight array, w)."""
    a = node.attrs
    x, y = node.inputs[0], node.outputs[0]
    e.tensor(y)
    fn = e.fn(node)
    quant, wname = _c_weights(e, node, fn, conv=node.op == "QConv")
    return e.g, a, x, y, fn, quant, wname, np.asarray(a["w"])

def _c_qconv(e: CEmitter, node: Node) -> None:
    g, a, x, y, fn, quant, wname, w = _weight_layer(e, node)
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
    acc = wide(e.typ[y])
    in_spikes = e.typ[x] == SPIKE
    bits = int(a["bits"])
    X, Y = e.buf[x], e.buf[y]
    geo = ConvGeometry(N, C, H, W, CO, HO, WO, KH, KW, SY, SX, DY, DX, PT, PL, int(a.get("group", 1)))
    lines = [f"// hqc-kernel begin {a['layer']} {quant} {'spikes' if in_spikes else 'integers'}",
             f"static void {fn}({KERNEL_PARAMS})", "{"]
    tgt = Y
    lif = _fused_lif(e, node, geo)
    # every partial sum, single weight and single product lies in the output's proven
    # range: int16 scratch (accumulator, weight table, input values) when it and the
    # input's range fit
    (lo, hi), (xlo, xhi) = e.bounds[y], e.bounds[x]
    narrow = quant != "fp32" and -(2**15) <= min(lo, xlo) and max(hi, xhi) < 2**15
    lines += _conv_events(e, fn, quant, bits, acc, wname, X, tgt, geo, in_spikes, lif, narrow, max(-xlo, xhi))
    lines += ["}", "// hqc-kernel end"]
    e.funcs.append("\n".join(lines))  # (fp32: each step's double sums scaled into the output, no double copy)

def conv_lif_pairs(g: Graph) -> dict[str, Node]:
    """Convolutions whose output only a LIF reads (through reshapes), in the layout the
    fused kernel needs (time first, parameters per output channel): {QConv name: LIF}."""
    from hqc.intops.neuron import lif_channel_params, lif_multiplies

    readers: dict[str, list[Node]] = {}
    for node in g.nodes():
        for t in node.inputs:
            readers.setdefault(t, []).append(node)
    pairs = {}
    for node in g.nodes():
        if node.op != "QConv" or int(node.attrs["nd"]) not in (1, 2):
            continue
        t = node.outputs[0]
        while t not in g.outputs and len(readers.get(t, [])) == 1 and readers[t][0].op == "Reshape":
            t = readers[t][0].outputs[0]
        nxt = readers.get(t, [])
        if t in g.outputs or len(nxt) != 1 or nxt[0].op != "LIF" or nxt[0].inputs[0] != t:
            continue
        lif = nxt[0]
        ys = tuple(int(d) for d in g.shape(node.outputs[0]))
        T = int(g.shape(lif.inputs[0])[0])
        if node.attrs["quant"].startswith("pot") and lif_multiplies(lif.attrs):
            continue  # a power-of-two kernel stays free of multiplies
        if ys[0] % T == 0 and lif_channel_params(lif, g, ys[1]) is not None:
            pairs[node.name] = lif
    return pairs


class FusedLIF:
    """A LIF applied inside a convolution's kernel at the end of every time step."""

    def __init__(self, node: Node, fn: str, mem: str, init: list[str], Y: str, per_step: int) -> None:
        self.node, self.fn, self.mem, self.init, self.Y, self.per_step = node, fn, mem, init, Y, per_step


def _fused_lif(e: CEmitter, node: Node, geo: ConvGeometry) -> FusedLIF | None:
    """When e.fused pairs the convolution with a LIF: the convolution's output is never
    stored (size 0), the LIF's spikes and membrane live from this step on."""
    from hqc.intops.neuron import lif_channel_params, lif_fused_setup

    lif = e.fused.get(node.name)
    if lif is None:
        return None
    per = lif_channel_params(lif, e.g, geo.CO)
    if per is None:
        raise ModelError(f"C kernels: LIF {lif.name!r} cannot be fused into {node.name!r}")
    e.allocs[e.buf[node.outputs[0]]][1] = 0  # never materialised
    e.tensor(lif.outputs[0])
    T = int(e.g.shape(lif.inputs[0])[0])
    count = (geo.N // T) * geo.CO * geo.HO * geo.WO  # one time step's elements (B·C·P)
    fn = e.fn_name() + "l"
    mem, init = lif_fused_setup(e, lif, fn, per, count)
    return FusedLIF(lif, fn, mem, init, e.buf[lif.outputs[0]], count)


def _conv_events(e: CEmitter, fn: str, quant: str, bits: int, acc: str, wname: str, X: str, tgt: str,
                 g: ConvGeometry, in_spikes: bool, lif: FusedLIF | None = None, narrow: bool = False,
                 xmax: int = 0) -> list[str]:
    """Event-driven convolution. Per time step and input channel: the weights are
    decoded into a small table [tap][output channel]; every nonzero input (a spike, or
    a nonzero integer with its value) is expanded into the (output position, tap)
    pairs it reaches inside the output; each pair adds its tap's row of the table
    (times the value, as a shift for power-of-two weights) to the outputs of all
    channels at its position, in a scratch accumulator laid out [position][channel]
    (a contiguous, test-free inner loop over the output channels), transposed into
    the output at the end of the time step. The work is proportional to the nonzero
    inputs, not to the input size. Each output sums its terms in the order of the
    direct loops (input channel, then tap), so fp32 layers' double sums are the same.

    Grouped (G > 1): the same per input channel, with the table and the row additions
    restricted to the O/G output channels of the channel's group."""
    kk = g.KH * g.KW
    OG = g.OG  # output channels one input channel reaches (= CO without groups)
    step_w = 1 if quant == "fp32" else bits  # per weight: one float, or `bits` bits
    plane = g.HO * g.WO
    pot_int = quant.startswith("pot") and not in_spikes
    # weight offset of one input channel's table: fp32 in PyTorch order (floats), packed
    # codes in [group][input channel][tap][output channel] order (bits), see _c_weights
    ci_w = kk if quant == "fp32" else kk * OG * bits
    e.data += c_array(f"{fn}_rowc", "int32_t", [str(o * g.WO * g.CO) for o in range(g.HO)])
    e.data += c_array(f"{fn}_colc", "int32_t", [str(o * g.CO) for o in range(g.WO)])
    # power-of-two weights on integer inputs: the table holds ±2^k as on spikes, and each
    # input value adds it shifted by every set bit of |x| (no multiply, and the shift
    # count is the same for all channels, so the channel loop vectorises)
    lines = [f"    int32_t n, co, ci, ky, kx, tp, j, np, iy, ix, p, ty, tx, oy, ox, oyo, oxo, xn, yn, xc, yc, si, wbi, b, i, "
             f"wci, y0{', i0, s0, ie' if lif is None else ''};"]
    if quant == "fp32":
        lines += ["    int32_t wi = 0, wco;", "    double wv;"]
    elif bytewise_table(bits, kk * OG):
        lines.append("    int32_t by;\n    uint32_t byte;")
    else:
        lines.append("    uint32_t bp, code;")
    lut = _pot_lut(quant, bits, sacc_of(narrow, acc))
    if quant.startswith("pot") and lut is None:
        lines.append(f"    int32_t sh;\n    {acc} v;")
    if lut is not None:  # power-of-two codes → ±2^k by a table of the 2^bits values
        e.data += c_array(f"{fn}_lut", sacc_of(narrow, acc), c_ints(np.array(lut)))
    # power-of-two weights on small integer inputs (|x| ≤ MULTIPLES): a table of the
    # multiples m·w, m = 0..|x|max, built by additions, and one pass per input
    mult = pot_int and 0 < xmax <= MULTIPLES
    if mult:
        lines.append("    int32_t mm, mo, jo;")
    elif pot_int:
        lines.append("    uint32_t ux;\n    int32_t bt;")
    wtab = "one input channel's weights, [tap][output channel]"
    if g.G > 1:
        lines.append("    int32_t gi, cl, wcg, cog;")
    pairs = g.H * g.W * kk  # (output position, tap) pairs of one input channel
    pot = "uint16_t" if plane * g.CO < 2**16 else "int32_t"  # offsets in the accumulator
    ptt = "uint16_t" if kk * OG < 2**16 else "int32_t"  # offsets in the weight table
    lines.append(f"    HQC_PTR({pot}) po = {e.scratch(fn + '_po', pot, pairs, 'output positions of the pairs')};")
    lines.append(f"    HQC_PTR({ptt}) pt = {e.scratch(fn + '_pt', ptt, pairs, 'taps of the pairs')};")
    sacc = sacc_of(narrow, acc)
    if not in_spikes:
        xt = acc if quant == "fp32" else sacc
        lines.append(f"    HQC_PTR({xt}) pv = {e.scratch(fn + '_pv', xt, pairs, 'input values of the pairs')};")
        lines.append(f"    {xt} xv;")
    if quant == "fp32":
        lines.append(f"    HQC_PTR(double) wb = {e.scratch(fn + '_wb', 'double', kk * OG, wtab)};")
    else:
        lines.append(f"    HQC_PTR({sacc}) wb = {e.scratch(fn + '_wb', sacc, kk * OG, wtab)};")
    if pot_int and 0 < xmax <= MULTIPLES:
        lines.append(f"    HQC_PTR({sacc}) wm = {e.scratch(fn + '_wm', sacc, (xmax + 1) * kk * OG, 'multiples of the table')};")
        e.data += c_array(f"{fn}_xo", "int32_t", [str(m * kk * OG) for m in range(xmax + 1)])
    atyp = "double" if quant == "fp32" else sacc
    lines.append(f"    HQC_PTR({atyp}) acc_s = {e.scratch(fn + '_acc', atyp, plane * g.CO, 'one step, [position][channel]')};")
    if lif is not None:
        lines.append("    int32_t vb = 0;")
        lines += lif.init
    lines.append(f"    for (n = 0, xn = 0, yn = 0; n < {g.N}; n++, xn += {g.C * g.H * g.W}, yn += {g.CO * plane}) {{")
    lines.append(f"        for (i = 0; i < {plane * g.CO}; i++) acc_s[i] = 0;")
    if lif is not None:  # the membrane of sample n mod B (time steps outermost)
        lines.append(f"        vb = n % {lif.per_step // (g.CO * plane)} == 0 ? 0 : vb + {g.CO * plane};")
    if g.G == 1:
        lines.append(f"        for (ci = 0, xc = xn, wci = 0; ci < {g.C}; ci++, xc += {g.H * g.W}, wci += {ci_w}) {{")
    else:  # group gi: input channels [gi·CG, +CG), output channels [cog, cog + OG)
        lines.append(f"        for (gi = 0, xc = xn, wcg = 0, cog = 0; gi < {g.G}; gi++, "
                     f"wcg += {OG * g.CG * kk * step_w}, cog += {OG})")
        lines.append(f"        for (cl = 0, wci = wcg; cl < {g.CG}; cl++, xc += {g.H * g.W}, wci += {ci_w}) {{")
    # spikes eight at a time: a word of eight spike bytes, then only its set bytes (most
    # inputs are zero; the pairs come in the same order as from the byte loop)
    words = in_spikes and g.W % 8 == 0
    if words:
        lines[0] = lines[0][:-1] + ", ix0;\n    uint64_t w;"
        lines.append(f"            for (iy = 0, p = xc, np = 0; iy < {g.H}; iy++, p += {g.W}) {{")
        lines.append(f"                for (ix0 = 0; ix0 < {g.W}; ix0 += 8) {{")
        lines.append(f"                    HQC_LOAD8(w, {X} + p + ix0);")
        lines.append("                    while (w != 0) {")
        lines.append("                    ix = ix0 + HQC_BYTE0(w);")
        lines.append("                    w &= w - 1;")
    else:
        lines.append(f"            for (iy = 0, p = xc, np = 0; iy < {g.H}; iy++) {{")
        lines.append(f"                for (ix = 0; ix < {g.W}; ix++, p++) {{")
        lines.append(f"                    if (!{X}[p]) continue;")
    if not in_spikes:
        lines.append(f"                    xv = ({xt}){X}[p];")
    lines += _interior_pairs(fn, g, OG, in_spikes)
    # an input at (iy, ix) reaches output (oy, ox) through tap (ky, kx) when
    # oy·SY = iy + PT − ky·DY and ox·SX = ix + PL − kx·DX
    lines.append(f"                    for (ky = 0, oyo = {g.PT}, tp = 0; ky < {g.KH}; ky++, oyo -= {g.DY}) {{")
    lines.append("                        ty = iy + oyo;")
    lines += _tap_coord("ty", "oy", g.SY, g.HO, "                        ", f"tp += {g.KW * OG}; ")
    lines.append(f"                        for (kx = 0, oxo = {g.PL}; kx < {g.KW}; kx++, oxo -= {g.DX}, tp += {OG}) {{")
    lines.append("                            tx = ix + oxo;")
    lines += _tap_coord("tx", "ox", g.SX, g.WO, "                            ")
    lines.append(f"                            po[np] = {fn}_rowc[oy] + {fn}_colc[ox]; pt[np] = tp;"
                 + (" pv[np] = xv;" if not in_spikes else "") + " np++;")
    lines += ["                        }", "                    }", "                }", "            }"]
    if words:
        lines.append("            }")
    lines.append("            if (np == 0) continue;")
    if quant == "fp32":  # PyTorch order: output channel, then tap
        lines.append(f"            for (co = 0, wco = wci; co < {OG}; co++, wco += {g.CG * kk}) {{")
        lines.append("                wi = wco;")
        lines.append(f"                for (tp = 0, wbi = co; tp < {kk}; tp++, wbi += {OG}) {{")
        for ln in _decode(quant, bits, in_spikes or pot_int, acc, wname):
            if "continue" not in ln:
                lines.append("                    " + ln)
        lines.append("                    wb[wbi] = wv;")
        lines += ["                }", "            }"]
    else:
        lines += _table_decode(quant, bits, acc, wname, kk * OG, f"{fn}_lut" if lut is not None else None)
    if mult:  # wm[m·n + j] = m·wb[j] by additions (offsets incremental: no multiply)
        nt = kk * OG
        lines.append(f"            for (j = 0; j < {nt}; j++) {{ wm[j] = 0; wm[{nt} + j] = wb[j]; }}")
        lines.append(f"            for (mm = 2, mo = {2 * nt}; mm <= {xmax}; mm++, mo += {nt})")
        lines.append(f"                for (j = 0, jo = mo - {nt}; j < {nt}; j++, jo++) wm[mo + j] = wm[jo] + wb[j];")
    lines.append("            for (j = 0; j < np; j++) {")
    lines.append("                b = po[j]" + (" + cog" if g.G > 1 else "") + "; wbi = pt[j];"
                 + (" xv = pv[j];" if not in_spikes else ""))
    if in_spikes:
        add = "acc_s[b + co] += wb[wbi + co];"
    elif quant == "fp32":
        add = "acc_s[b + co] += wb[wbi + co] * (double)xv;"
    else:
        add = "acc_s[b + co] += wb[wbi + co] * xv;"
    if mult:  # the multiple |x|·w, added or subtracted
        lines.append(f"                mo = {fn}_xo[xv < 0 ? -xv : xv] + wbi;")
        lines.append(f"                if (xv < 0) for (co = 0; co < {OG}; co++) acc_s[b + co] -= wm[mo + co];")
        lines.append(f"                else for (co = 0; co < {OG}; co++) acc_s[b + co] += wm[mo + co];")
    elif pot_int:  # x = ±Σ 2^bt over the set bits of |x|: add (or subtract) the table shifted
        shl = "HQC_SHL16" if sacc == "int16_t" else SHL[acc]
        lines.append(f"                ux = (uint32_t)(xv < 0 ? -({acc})xv : ({acc})xv);")
        lines.append("                for (bt = 0; ux != 0; bt++, ux >>= 1) {")
        lines.append("                    if (!(ux & 1u)) continue;")
        lines.append(f"                    if (xv < 0) for (co = 0; co < {OG}; co++) acc_s[b + co] -= {shl}(wb[wbi + co], bt);")
        lines.append(f"                    else for (co = 0; co < {OG}; co++) acc_s[b + co] += {shl}(wb[wbi + co], bt);")
        lines.append("                }")
    else:
        lines.append(f"                for (co = 0; co < {OG}; co++) {{ {add} }}")
    lines += ["            }", "        }"]
    if lif is None:
        # transpose [position][channel] → [channel][position] in blocks of 16 positions
        # (the block's reads stay in the L1 cache)
        lines.append(f"        for (i0 = 0, s0 = 0, y0 = yn; i0 < {plane}; i0 += 16, s0 += {16 * g.CO}, y0 += 16) {{")
        lines.append(f"            ie = {plane} - i0 < 16 ? {plane} - i0 : 16;")
        lines.append(f"            for (co = 0, yc = y0; co < {g.CO}; co++, yc += {plane})")
        val = f"({acc})(acc_s[si] * {fn}_u[co])" if quant == "fp32" else "acc_s[si]"  # fp32: × 2^−e, exact
        lines.append(f"                for (i = 0, si = s0 + co; i < ie; i++, si += {g.CO}) {tgt}[yc + i] = {val};")
        lines.append("        }")
    else:
        # the LIF's step on the accumulator in its own order (position, then channel: the
        # membrane and the accumulator contiguous, the channel loop vectorisable), each
        # spike stored straight into the [channel][position] output
        from hqc.intops.neuron import lif_update

        lines.append(f"        for (i = 0, si = 0, y0 = yn; i < {plane}; i++, y0++)")
        lines.append(f"            for (co = 0, yc = y0; co < {g.CO}; co++, si++, yc += {plane}) {{")
        lines.append(f"                {lif.mem} xv, num, h;")
        lines.append("                int s;")
        xval = f"({acc})(acc_s[si] * {fn}_u[co])" if quant == "fp32" else "acc_s[si]"
        lines += lif_update(lif.fn, lif.node.attrs, lif.mem, "                ", xval, "vb + si", "co")
        lines.append(f"                {lif.Y}[yc] = (uint8_t)s;")
        lines.append("            }")
    lines.append("    }")
    return lines

def _interior_pairs(fn: str, g: ConvGeometry, OG: int, in_spikes: bool) -> list[str]:
    """Stride 1: an input whose taps all land inside the output appends its kk pairs
    unrolled (output offsets and taps are constants from the position of its first tap;
    the same pairs in the same order as the tap loops, which stay for the border)."""
    kk = g.KH * g.KW
    if g.SY != 1 or g.SX != 1 or kk == 1 or kk > 49:
        return []
    # tap (ky, kx) reaches oy = iy + PT − ky·DY: inside [0, HO) for every ky when
    # iy ∈ [(KH−1)·DY − PT, HO − PT)
    y_lo, y_hi = (g.KH - 1) * g.DY - g.PT, g.HO - g.PT
    x_lo, x_hi = (g.KW - 1) * g.DX - g.PL, g.WO - g.PL
    if y_lo >= y_hi or x_lo >= x_hi:
        return []
    ind = "                    "
    conds = [c for c, trivial in ((f"iy >= {y_lo}", y_lo <= 0), (f"iy < {y_hi}", y_hi >= g.H),
                                  (f"ix >= {x_lo}", x_lo <= 0), (f"ix < {x_hi}", x_hi >= g.W)) if not trivial]
    out = [f"{ind}if ({' && '.join(conds) or '1'}) {{",
           f"{ind}    b = {fn}_rowc[iy + {g.PT}] + {fn}_colc[ix + {g.PL}];"]
    for t in range(kk):
        ky, kx = divmod(t, g.KW)
        off = (ky * g.DY * g.WO + kx * g.DX) * g.CO
        at = "np" if t == 0 else f"np + {t}"
        out.append(f"{ind}    po[{at}] = b - {off}; pt[{at}] = {t * OG};" + ("" if in_spikes else f" pv[{at}] = xv;"))
    out += [f"{ind}    np += {kk};", f"{ind}    continue;", f"{ind}}}"]
    return out


#: Largest input magnitude for which a power-of-two layer on integers uses a table of multiples.
MULTIPLES = 8


def bytewise_table(bits: int, n: int) -> bool:
    """True when a table of n codes decodes byte by byte (codes tile bytes, runs aligned)."""
    return bits in (2, 4, 8) and (n * bits) % 8 == 0


def sacc_of(narrow: bool, acc: str) -> str:
    """The C type of a convolution's scratch accumulator and weight table."""
    return "int16_t" if narrow else acc


def _pot_lut(quant: str, bits: int, ctyp: str) -> list[int] | None:
    """The values ±2^k of the 2^bits power-of-two codes (sign bit on top, k = kmax − low
    bits), or None for other quantizers or when a value does not fit `ctyp`."""
    if not quant.startswith("pot"):
        return None
    kmax = (1 << (bits - 1)) - 1
    vals = [(-1 if c >> (bits - 1) else 1) * (1 << (kmax - (c & kmax))) for c in range(1 << bits)]
    lim = {"int16_t": 2**15, "int32_t": 2**31, "int64_t": 2**63}[ctyp]
    return vals if max(abs(v) for v in vals) < lim else None


def _table_decode(quant: str, bits: int, acc: str, w: str, n: int, lut: str | None = None) -> list[str]:
    """Lines decoding one input channel's n codes (a contiguous run from bit wci) into
    wb[0..n): byte by byte when codes tile bytes (2/4/8 bits, the run byte-aligned), else
    code by code (bit position bp)."""
    mask = (1 << bits) - 1
    kmax = (1 << (bits - 1)) - 1

    def value(code: str) -> list[str]:
        if lut is not None:
            return [f"{lut}[{code}]"]
        if quant.startswith("uni"):
            return [f"{code} - (int32_t)(({code} >> {bits - 1}) << {bits})"]
        return [f"sh = {kmax} - (int32_t)({code} & {kmax}u);", f"v = ({acc})1 << sh;",
                f"(({code} >> {bits - 1}) ? -v : v)"]

    ind = "                "
    if bytewise_table(bits, n):
        per = 8 // bits
        lines = [f"            for (j = 0, by = wci >> 3; j < {n}; j += {per}, by++) {{",
                 f"{ind}byte = (uint32_t){w}[by];"]
        for k in range(per):
            code = f"(int32_t)((byte >> {k * bits}) & {mask}u)" if k < per - 1 or k == 0 else f"(int32_t)(byte >> {k * bits})"
            *pre, val = value(code)
            lines += [ind + ln for ln in pre] + [f"{ind}wb[j + {k}] = {val};" if k else f"{ind}wb[j] = {val};"]
        return lines + ["            }"]
    lines = ["            for (j = 0, bp = (uint32_t)wci; j < " + str(n) + "; j++) {"]
    for ln in _decode(quant, bits, True, acc, w):
        if "continue" not in ln and not ln.startswith(("q =", "sh =", "v =", "if (code")):
            lines.append(ind + ln)
    *pre, val = value("(int32_t)code")
    lines += [ind + ln for ln in pre] + [f"{ind}wb[j] = {val};", "            }"]
    return lines


def _tap_coord(t: str, o: str, stride: int, size: int, ind: str, skip: str = "") -> list[str]:
    """Lines mapping an input offset `t` to output coordinate `o`, or (`skip`, then)
    `continue` when it has none."""
    if stride == 1:
        return [f"{ind}if ({t} < 0 || {t} >= {size}) {{ {skip}continue; }}", f"{ind}{o} = {t};"]
    return [f"{ind}if ({t} < 0 || {t} % {stride} != 0) {{ {skip}continue; }}", f"{ind}{o} = {t} / {stride};",
            f"{ind}if ({o} >= {size}) {{ {skip}continue; }}"]

def _finish(e: CEmitter, lines: list[str], Y: str, quant: str, size: int) -> None:
    if quant == "fp32":
        e.scratch(f"{Y}_d", "double", size, "hqc-fp32 accumulator")
    e.funcs.append("\n".join(lines))

def _c_qlinear(e: CEmitter, node: Node) -> None:
    g, a, x, y, fn, quant, wname, w = _weight_layer(e, node)
    NO, NI = w.shape
    M = prod(g.shape(x)) // NI
    acc = wide(e.typ[y])
    in_spikes = e.typ[x] == SPIKE
    X, Y = e.buf[x], e.buf[y]
    lines = [f"// hqc-kernel begin {a['layer']} {quant} {'spikes' if in_spikes else 'integers'}",
             f"static void {fn}({KERNEL_PARAMS})", "{"]
    lines += _decls(quant, in_spikes, acc, "o, k, m, xi, yi, i")
    tgt = Y + "_d" if quant == "fp32" else Y
    lines.append(f"    for (i = 0; i < {M * NO}; i++) {tgt}[i] = 0;")
    lines.append(f"    for (o = 0; o < {NO}; o++) {{")
    lines.append(f"        for (k = 0; k < {NI}; k++) {{")
    for ln in _decode(quant, int(a["bits"]), in_spikes, acc, wname):
        lines.append("            " + ln)
    lines.append(f"            for (m = 0, xi = k, yi = o; m < {M}; m++, xi += {NI}, yi += {NO}) {{")
    lines.append(f"                {_body(quant, in_spikes, acc, X + '[xi]', Y, 'yi')}")
    lines += ["            }", "        }", "    }"]
    if quant == "fp32":
        lines.append(f"    for (m = 0, yi = 0; m < {M}; m++)")
        lines.append(f"        for (o = 0; o < {NO}; o++, yi++) {Y}[yi] = ({acc})({Y}_d[yi] * {fn}_u[o]);")
    lines += ["}", "// hqc-kernel end"]
    _finish(e, lines, Y, quant, M * NO)


def _c_qlinear_left(e: CEmitter, node: Node) -> None:
    """y[m, o, n] = Σ_k w[o, k] · x[m, k, n]: each weight decoded once, then applied to
    the contiguous row x[m, k, :] of every leading index m."""
    g, a, x, y, fn, quant, wname, w = _weight_layer(e, node)
    NO, NI = w.shape
    xs = g.shape(x)
    NC = int(xs[-1])
    M = prod(xs) // (NI * NC)
    acc = wide(e.typ[y])
    in_spikes = e.typ[x] == SPIKE
    X, Y = e.buf[x], e.buf[y]
    lines = [f"// hqc-kernel begin {a['layer']} {quant} {'spikes' if in_spikes else 'integers'}",
             f"static void {fn}({KERNEL_PARAMS})", "{"]
    lines += _decls(quant, in_spikes, acc, "o, k, m, n, xk, yo, xi, yi, i")
    tgt = Y + "_d" if quant == "fp32" else Y
    lines.append(f"    for (i = 0; i < {M * NO * NC}; i++) {tgt}[i] = 0;")
    lines.append(f"    for (o = 0, yo = 0; o < {NO}; o++, yo += {NC}) {{")
    lines.append(f"        for (k = 0, xk = 0; k < {NI}; k++, xk += {NC}) {{")
    for ln in _decode(quant, int(a["bits"]), in_spikes, acc, wname):
        lines.append("            " + ln)
    lines.append(f"            for (m = 0, xi = xk, yi = yo; m < {M}; m++, xi += {NI * NC}, yi += {NO * NC}) {{")
    lines.append(f"                for (n = 0; n < {NC}; n++) {{ {_body(quant, in_spikes, acc, X + '[xi + n]', Y, 'yi + n')} }}")
    lines += ["            }", "        }", "    }"]
    if quant == "fp32":
        lines.append(f"    for (m = 0, yi = 0; m < {M}; m++)")
        lines.append(f"        for (o = 0; o < {NO}; o++)")
        lines.append(f"            for (n = 0; n < {NC}; n++, yi++) {Y}[yi] = ({acc})({Y}_d[yi] * {fn}_u[o]);")
    lines += ["}", "// hqc-kernel end"]
    _finish(e, lines, Y, quant, M * NO * NC)


# --------------------------------------------------------------------------- the ops
_WEIGHT_ATTRS = {"layer": "str", "quant": "str", "bits": "int", "w": "array", "codes": "array?",
                 "w_float": "array?", "unit_exp": "array?"}


class _WeightOp(IntOp):
    def validate(self, node: Node) -> None:
        a = node.attrs
        if a["quant"] == "fp32":
            if "w_float" not in a or "unit_exp" not in a:
                raise self.error(node, "an fp32 layer needs w_float and unit_exp")
        elif "codes" not in a:
            raise self.error(node, f"a {a['quant']} layer needs its storage codes")

    def bounds(self, node: Node, ins: list[Interval], g: Graph) -> list[Interval]:
        return [weighted_sum_bounds(node.attrs["w"], ins[0])]


@register
class QConv(_WeightOp):
    name = "QConv"
    attrs = {**_WEIGHT_ATTRS, "nd": "int", "strides": "ints", "pads": "ints", "dilations": "ints", "group": "int?"}

    def validate(self, node: Node) -> None:
        super().validate(node)
        grp = int(node.attrs.get("group", 1))
        o = np.asarray(node.attrs["w"]).shape[0]
        if grp < 1 or o % grp:
            raise self.error(node, f"group {grp} does not divide the {o} output channels")

    def bounds(self, node: Node, ins: list[Interval], g: Graph) -> list[Interval]:
        c = g.shape(node.inputs[0])[1]
        w = np.asarray(node.attrs["w"])
        grp = int(node.attrs.get("group", 1))
        if w.shape[1] * grp != c:
            raise self.error(node, f"{c} input channels, but weights {list(w.shape)} with group {grp}")
        return super().bounds(node, ins, g)

    def ref(self, node: Node, xs: list[np.ndarray], engine: str) -> np.ndarray:
        x = xs[0]
        g, b = x.shape[:2]
        y = conv_int(x.reshape((g * b,) + x.shape[2:]), np.asarray(node.attrs["w"], np.int64),
                     list(node.attrs["strides"]), list(node.attrs["pads"]), list(node.attrs["dilations"]), engine,
                     int(node.attrs.get("group", 1)))
        return y.reshape((g, b) + y.shape[1:])

    def onnx(self, b: OnnxBuilder, g: Graph, node: Node) -> None:
        x = node.inputs[0]
        shape = tuple(g.shape(x))
        w = np.asarray(node.attrs["w"])
        base = node.outputs[0]
        cols, osp = windows_gather(b, x, shape, list(w.shape[2:]), list(node.attrs["strides"]),
                                   list(node.attrs["pads"]), list(node.attrs["dilations"]), 0, base, True)
        if int(node.attrs.get("group", 1)) != 1:
            y = _onnx_grouped_matmul(b, cols, node, base, shape[0], prod(osp))  # (N, G, O/G, out)
        else:
            y = _onnx_qmatmul(b, cols, node, base)  # (N, out, O)
            y = b.op("Transpose", [y], base, perm=[0, 2, 1])
        b.op("Reshape", [y, b.i64([shape[0], w.shape[0], *osp])], base, out=node.outputs[0])

    def c(self, e: CEmitter, node: Node) -> None:
        _c_qconv(e, node)


@register
class QLinear(_WeightOp):
    name = "QLinear"
    attrs = {**_WEIGHT_ATTRS, "weight_left": "int?"}

    def bounds(self, node: Node, ins: list[Interval], g: Graph) -> list[Interval]:
        shape = g.shape(node.inputs[0])
        k = np.asarray(node.attrs["w"]).shape[1]
        axis = -2 if node.attrs.get("weight_left", 0) else -1
        if len(shape) < -axis or shape[axis] != k:
            raise self.error(node, f"input {list(shape)} does not have {k} features on axis {axis}")
        return super().bounds(node, ins, g)

    def ref(self, node: Node, xs: list[np.ndarray], engine: str) -> np.ndarray:
        w = np.asarray(node.attrs["w"], np.int64)
        if node.attrs.get("weight_left", 0):
            return imatmul(w, xs[0], engine)
        return imatmul(xs[0], w.T, engine)

    def onnx(self, b: OnnxBuilder, g: Graph, node: Node) -> None:
        out = node.outputs[0]
        if node.attrs.get("weight_left", 0):
            y = _onnx_left_matmul(b, node.inputs[0], node, out)
        else:
            y = _onnx_qmatmul(b, node.inputs[0], node, out)
        b.op("Identity", [y], out, out=out)

    def c(self, e: CEmitter, node: Node) -> None:
        if node.attrs.get("weight_left", 0):
            _c_qlinear_left(e, node)
        else:
            _c_qlinear(e, node)
