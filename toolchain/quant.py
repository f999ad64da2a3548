"""Weight quantizers: the exact code sets shared by the search, the lowering, the cost
model and the C kernels (see docs/quantizers.md).

All scales are per output channel (axis 0 of the weight in PyTorch convention), float32.

uniform b-bit (`uni<b>`): symmetric, zero point 0.
    codes q ∈ [-(2^(b-1) - 1), 2^(b-1) - 1]  (uni2: {-1, 0, 1}; uni4: {-7 … 7})
    value  = s · q;   q = clamp(round_half_even(w / s))
    stored as b-bit two's complement.
power-of-two b-bit (`pot<b>`): sign and exponent, no zero.
    codes (sign, k), sign ∈ {0, 1}, k ∈ [0, 2^(b-1) - 1]  (pot2: ±s, ±s/2; pot4: ±s·2^-0…-7)
    value  = (-1)^sign · s · 2^-k;  k = #{j < kmax : |w| < 0.75 · s · 2^-j}
    (the nearest power of two in the linear domain; 0.75·2^-j is the midpoint of 2^-j
    and 2^-(j+1); a weight of exactly 0 gets sign 0 and k = kmax)
    stored as (sign << (b-1)) | k.
fp32: unchanged.

Scales: s = r* · max|w_c| / qmax (uniform, qmax = 2^(b-1) - 1) or s = r* · max|w_c|
(power-of-two), where r* minimizes the squared quantization error of the channel over
the fixed grid SCALE_GRID (first minimum wins). The rule is computed in numpy (float64
error, float32 scale) by `channel_scales`, and the torch path calls the same function on
the detached weight, so numpy and torch produce bit-identical codes.

Training, two gradients (forward values identical, bit for bit, to the numpy path):
  `fake_quant_torch` — scales fixed (the search's MSE-grid scales): straight-through,
      gradient 1 with respect to the latent weight (`Q(w).detach() + (w - w.detach())`).
  `learned_fake_quant_torch` — learned per-channel scales (the fine-tune), LSQ (Esser et
      al., ICLR 2020): with x = w / s and L = qmax (uniform) or 1 (power-of-two, x in
      units of the largest level s),
          ∂Q/∂w = 1 if |x| ≤ L else 0                       (clipped weights: no gradient)
          ∂Q/∂s = (Q(w)/s − x) if |x| ≤ L else sign(x)·L     (Q(w)/s = q, or ±2^-k)
      and the gradient reaching s is multiplied by g = 1 / sqrt(N_c · L), N_c the weights
      per output channel (LSQ's gradient scaling). The power-of-two quantizer is the same
      estimator with the level ±2^-k in place of round(x).
"""

from __future__ import annotations

import math

import numpy as np

from hqc.choices import QuantChoice

SCALE_GRID = np.linspace(0.2, 1.0, 41)


def qmax_uniform(bits: int) -> int:
    return 2 ** (bits - 1) - 1


def kmax_pot(bits: int) -> int:
    return 2 ** (bits - 1) - 1


def _flat(w: np.ndarray) -> np.ndarray:
    return np.asarray(w, np.float32).reshape(w.shape[0], -1)


def _uniform_codes(w: np.ndarray, s: np.ndarray, bits: int) -> np.ndarray:
    q = qmax_uniform(bits)
    s = s.reshape((-1,) + (1,) * (w.ndim - 1)).astype(np.float32)
    return np.clip(np.round(w.astype(np.float32) / s), -q, q).astype(np.int8)


def _pot_codes(w: np.ndarray, s: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    kmax = kmax_pot(bits)
    w = w.astype(np.float32)
    s = s.reshape((-1,) + (1,) * (w.ndim - 1)).astype(np.float32)
    a = np.abs(w)
    k = np.zeros(w.shape, np.int8)
    for j in range(kmax):
        mid = (np.float32(0.75) * s) * np.float32(2.0**-j)
        k += (a < mid).astype(np.int8)
    sign = (w < 0).astype(np.int8)
    return sign, k


def channel_scales(w: np.ndarray, choice: QuantChoice) -> np.ndarray:
    """Per-output-channel float32 scales by the documented MSE-grid rule."""
    if choice.kind == "fp32":
        raise ValueError("fp32 has no scale")
    flat = _flat(w)
    maxabs = np.abs(flat).max(axis=1)
    maxabs = np.where(maxabs > 0, maxabs, np.float32(1.0)).astype(np.float32)
    best_err = np.full(flat.shape[0], np.inf)
    best = np.zeros(flat.shape[0], np.float32)
    for r in SCALE_GRID:
        if choice.kind == "uniform":
            s = (np.float32(r) * maxabs / np.float32(qmax_uniform(choice.bits))).astype(np.float32)
        else:
            s = (np.float32(r) * maxabs).astype(np.float32)
        deq = dequantize(*quantize_codes(flat, choice, s), choice=choice).astype(np.float64)
        err = ((deq - flat.astype(np.float64)) ** 2).sum(axis=1)
        better = err < best_err
        best_err = np.where(better, err, best_err)
        best = np.where(better, s, best)
    return best.astype(np.float32)


def check_scales(scales: np.ndarray, channels: int, choice: QuantChoice, where: str = "scales") -> np.ndarray:
    """Given scales as float32 (channels,); ValueError unless finite, > 0 and of that length."""
    s = np.asarray(scales)
    if s.shape != (channels,):
        raise ValueError(f"{where}: {choice.name} needs {channels} per-channel scales, got shape {list(s.shape)}")
    s = s.astype(np.float32)
    if not np.all(np.isfinite(s)) or not np.all(s > 0):
        raise ValueError(f"{where}: scales must be finite and > 0")
    return s


def quantize_codes(w: np.ndarray, choice: QuantChoice, scales: np.ndarray) -> tuple[np.ndarray, ...]:
    """Integer codes of w: (q,) for uniform, (sign, k) for power-of-two; plus the scales."""
    if choice.kind == "uniform":
        return (_uniform_codes(w, scales, choice.bits), scales)
    if choice.kind == "pot":
        sign, k = _pot_codes(w, scales, choice.bits)
        return (sign, k, scales)
    raise ValueError("fp32 has no codes")


def dequantize(*codes_and_scales: np.ndarray, choice: QuantChoice) -> np.ndarray:
    """Float32 values of the codes: s·q or (-1)^sign·s·2^-k."""
    *codes, s = codes_and_scales
    if choice.kind == "uniform":
        (q,) = codes
        s = s.reshape((-1,) + (1,) * (q.ndim - 1)).astype(np.float32)
        return q.astype(np.float32) * s
    sign, k = codes
    s = s.reshape((-1,) + (1,) * (k.ndim - 1)).astype(np.float32)
    mag = s * np.exp2(-k.astype(np.float32))
    return np.where(sign > 0, -mag, mag).astype(np.float32)


def fake_quant_numpy(w: np.ndarray, choice: QuantChoice, scales: np.ndarray | None = None) -> np.ndarray:
    """Q(w) in numpy (float32), the reference of the torch path; `scales` (float32, one
    per output channel) default to `channel_scales(w, choice)`."""
    if choice.kind == "fp32":
        return np.asarray(w, np.float32)
    s = channel_scales(w, choice) if scales is None else check_scales(scales, w.shape[0], choice)
    return dequantize(*quantize_codes(np.asarray(w, np.float32), choice, s), choice=choice)


def pack_codes(codes: np.ndarray, bits: int) -> bytes:
    """Pack unsigned b-bit codes (b ∈ {2, 4, 8}) little-end first: 2-bit → 4 per byte
    (code i in bits 2i..2i+1), 4-bit → 2 per byte (low nibble first)."""
    if bits not in (2, 4, 8):
        raise ValueError(f"cannot pack {bits}-bit codes")
    c = np.asarray(codes, np.int64).reshape(-1) & ((1 << bits) - 1)
    per = 8 // bits
    pad = (-c.size) % per
    c = np.concatenate([c, np.zeros(pad, np.int64)]).reshape(-1, per)
    shifts = np.arange(per, dtype=np.int64) * bits
    return ((c << shifts).sum(axis=1)).astype(np.uint8).tobytes()


def unpack_codes(data: bytes, bits: int, count: int) -> np.ndarray:
    """Inverse of `pack_codes`: unsigned codes (count,)."""
    b = np.frombuffer(data, np.uint8).astype(np.int64)
    per = 8 // bits
    shifts = np.arange(per, dtype=np.int64) * bits
    c = ((b[:, None] >> shifts) & ((1 << bits) - 1)).reshape(-1)
    return c[:count]


def storage_code(codes: tuple[np.ndarray, ...], choice: QuantChoice) -> np.ndarray:
    """The unsigned b-bit storage word of each weight: two's complement q, or sign|k."""
    if choice.kind == "uniform":
        (q,) = codes
        return q.astype(np.int64) & ((1 << choice.bits) - 1)
    sign, k = codes
    return (sign.astype(np.int64) << (choice.bits - 1)) | k.astype(np.int64)


# ------------------------------------------------------------------------ torch
def fake_quant_torch(w, choice: QuantChoice, scales=None):
    """Straight-through fake quantization of a torch weight; same codes as numpy."""
    import torch

    if choice.kind == "fp32":
        return w
    if scales is None:
        scales = channel_scales(w.detach().cpu().numpy(), choice)
    s = torch.as_tensor(scales, dtype=w.dtype, device=w.device).reshape((-1,) + (1,) * (w.dim() - 1))
    wd = w.detach()
    if choice.kind == "uniform":
        q = qmax_uniform(choice.bits)
        val = torch.clamp(torch.round(wd / s), -q, q) * s
    else:
        a = wd.abs()
        k = torch.zeros_like(wd)
        for j in range(kmax_pot(choice.bits)):
            k = k + (a < (0.75 * s) * (2.0**-j)).to(wd.dtype)
        mag = s * torch.exp2(-k)
        val = torch.where(wd < 0, -mag, mag)
    return val + (w - wd)  # forward is exactly val; gradient 1 w.r.t. w


def scale_level(choice: QuantChoice) -> int:
    """L of the learned quantizers: the largest level in units of s (qmax, or 1 for pot)."""
    return qmax_uniform(choice.bits) if choice.kind == "uniform" else 1


def learned_fake_quant_torch(w, choice: QuantChoice, scale, grad_scale: float | None = None):
    """Q(w) with a learned per-channel scale (torch, shape (C_out,), > 0): LSQ gradients
    for w and s as the module docstring says; the forward value is bit-identical to
    `fake_quant_torch(w, choice, scale.detach())` and to the numpy path with those scales.

    grad_scale: the factor g on the gradient of s (default 1 / sqrt(N_c · L))."""
    import torch

    if choice.kind == "fp32":
        return w
    level = scale_level(choice)
    if grad_scale is None:
        grad_scale = 1.0 / math.sqrt(max(1, w[0].numel()) * level)
    shape = (-1,) + (1,) * (w.dim() - 1)
    s0 = scale.to(w.dtype).reshape(shape)
    sg = s0 * grad_scale
    s = s0.detach() + (sg - sg.detach())  # forward exactly s; gradient scaled by g
    wd, sd = w.detach(), s0.detach()
    if choice.kind == "uniform":
        lvl = torch.clamp(torch.round(wd / sd), -level, level)
    else:
        a = wd.abs()
        k = torch.zeros_like(wd)
        for j in range(kmax_pot(choice.bits)):
            k = k + (a < (0.75 * sd) * (2.0**-j)).to(wd.dtype)
        mag = torch.exp2(-k)
        lvl = torch.where(wd < 0, -mag, mag)
    x = torch.clamp(w / s, -level, level)
    return s * (lvl + (x - x.detach()))  # forward: s · level (exact); LSQ backward


# ------------------------------------------------------------------ learned scales on disk
#: {layer name: (choice name, float32 scales (C_out,))}: scales learned for a layer's choice.
LearnedScales = dict[str, tuple[str, np.ndarray]]

SCALES_FILE = "scales.npz"


def save_scales(path, scales: LearnedScales) -> None:
    """Write learned scales as an NPZ (one float32 array per layer, named by the layer, and
    `__choices__`: "layer=choice" strings), atomically; loaded without pickle."""
    from hqc.outdir import atomic_file

    arrays = {layer: np.asarray(s, np.float32) for layer, (_, s) in scales.items()}
    if "__choices__" in arrays:
        raise ValueError("a layer may not be named __choices__")
    arrays["__choices__"] = np.array([f"{layer}={c}" for layer, (c, _) in scales.items()], dtype=str)
    with atomic_file(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


def load_scales(path) -> LearnedScales:
    """Inverse of `save_scales`; ValueError (one line) for a file that is not such an NPZ."""
    try:
        with np.load(path, allow_pickle=False) as z:
            choices = dict(str(e).split("=", 1) for e in z["__choices__"])
            out = {layer: (c, np.asarray(z[layer], np.float32)) for layer, c in choices.items()}
    except (OSError, KeyError, ValueError) as exc:
        raise ValueError(f"{path}: not a learned-scales file ({type(exc).__name__}: {exc})") from None
    return out
