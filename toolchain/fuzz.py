"""Fuzzing harness for the file loaders (used by tests and benchmarks/fuzz_loaders.py).

Each target takes bytes, writes them to a file, and calls a loader. The property: the
loader returns or raises `HqcError` — any other exception is a crash. Inputs are
mutations of valid seed files (bit flips, truncation, splices, byte insertions) and raw
random bytes, drawn by hypothesis.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from hqc.errors import HqcError


def seed_onnx() -> bytes:
    from onnx import TensorProto, helper, numpy_helper

    nodes = [
        helper.make_node("Gather", ["X", "i0"], ["x0"], axis=0),
        helper.make_node("Sub", ["x0", "th"], ["m"]),
        helper.make_node("GreaterOrEqual", ["m", "z"], ["c"]),
        helper.make_node("Cast", ["c"], ["s"], to=TensorProto.FLOAT),
        helper.make_node("MatMul", ["s", "W"], ["Y"]),
    ]
    inits = [
        numpy_helper.from_array(np.array(0, np.int64), "i0"),
        numpy_helper.from_array(np.array(1.0, np.float32), "th"),
        numpy_helper.from_array(np.array(0.0, np.float32), "z"),
        numpy_helper.from_array(np.ones((3, 2), np.float32), "W"),
    ]
    g = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 1, 3])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, 2])], inits,
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m.SerializeToString()


def seed_yaml() -> bytes:
    from importlib import resources

    return resources.files("hqc.targets").joinpath("cmos45.yaml").read_bytes()


def seed_plan() -> bytes:
    return b"schema: hqc.plan/1\nlayers:\n  fc: {choice: uni4, probability: 0.9}\n  conv: pot2\n"


def seed_npz() -> bytes:
    buf = io.BytesIO()
    rng = np.random.default_rng(0)
    np.savez(buf, x=(rng.random((3, 2, 1, 2, 2)) < 0.5).astype(np.float32), y=np.array([0, 1, 2]))
    return buf.getvalue()


def _with_file(data: bytes, suffix: str, fn: Callable[[Path], object]) -> None:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / f"input{suffix}"
        p.write_bytes(data)
        try:
            fn(p)
        except HqcError:
            pass


def load_onnx_target(data: bytes) -> None:
    from hqc.pipeline import run_frontend

    _with_file(data, ".onnx", run_frontend)


def load_yaml_target(data: bytes) -> None:
    from hqc.targets import load_table

    _with_file(data, ".yaml", load_table)


def load_plan_target(data: bytes) -> None:
    from hqc.plan import load_plan_yaml

    _with_file(data, ".yaml", load_plan_yaml)


def load_config_target(data: bytes) -> None:
    from hqc.config import CompileConfig

    _with_file(data, ".yaml", CompileConfig.from_file)


def load_npz_target(data: bytes) -> None:
    from hqc.data import load_data

    _with_file(data, ".npz", lambda p: load_data(p, (2, 1, 2, 2), num_classes=3))


TARGETS: dict[str, tuple[Callable[[bytes], None], Callable[[], bytes]]] = {
    "onnx": (load_onnx_target, seed_onnx),
    "target-yaml": (load_yaml_target, seed_yaml),
    "plan-yaml": (load_plan_target, seed_plan),
    "config-yaml": (load_config_target, lambda: b"epochs: 3\nlambda: 0.5\nseed: 1\n"),
    "npz": (load_npz_target, seed_npz),
}


def mutate(seed: bytes, ops: list[tuple[int, int, int]]) -> bytes:
    """Apply (kind, position, value) edits: 0 flip a bit, 1 truncate, 2 insert, 3 delete,
    4 overwrite a byte, 5 duplicate a chunk."""
    b = bytearray(seed)
    for kind, pos, val in ops:
        if not b:
            b = bytearray([val & 0xFF])
        i = pos % len(b)
        if kind == 0:
            b[i] ^= 1 << (val % 8)
        elif kind == 1:
            b = b[: i + 1]
        elif kind == 2:
            b[i:i] = bytes([val & 0xFF])
        elif kind == 3:
            del b[i]
        elif kind == 4:
            b[i] = val & 0xFF
        else:
            n = 1 + val % 64
            b[i:i] = b[i : i + n]
    return bytes(b)
