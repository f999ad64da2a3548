"""Packed weight codes: code i occupies bits [i·b, i·b + b) of a byte stream, least
significant bit first (`pack_bits`, defined with the weight ops in `hqc.intops.weights`;
= `hqc.quant.pack_codes` for 2, 4 and 8 bits) and its inverse."""

from __future__ import annotations

import numpy as np

from hqc.intops.weights import pack_bits

__all__ = ["pack_bits", "unpack_bits"]


def unpack_bits(data: bytes, bits: int, count: int) -> np.ndarray:
    """Inverse of `pack_bits`: (count,) unsigned codes."""
    raw = np.unpackbits(np.frombuffer(data, np.uint8), bitorder="little")[: count * bits]
    if raw.size != count * bits:
        raise ValueError("packed data too short")
    return (raw.reshape(count, bits).astype(np.int64) << np.arange(bits)).sum(axis=1)
