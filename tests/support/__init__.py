"""Shared non-test code of the test suite: nothing here is collected by pytest.

- helpers: hand-built ONNX graphs and onnxruntime runs (the frontend and pass tests).
- zoo: the model zoo (SpikingJelly, snnTorch, hand-written, the example Spikformer).
- lowering: plans, event inputs and reference models of the lowering tests.
- rescale: two small nets whose lowering needs rescaled sums (lowering tests, bench_rounding).
- data: the tiny learnable spike dataset and zoo-shaped random events of the compile tests.
- compiled: an `hqc compile` folder's numbers against recomputed references.
- cli: running `hqc` through click's CliRunner and checking its one-line errors.

Test modules import from here (or use conftest.py fixtures), never from one another;
tests/test_layout.py checks it."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
NDIGITS = REPO / "examples" / "ndigits"
NDIGITS_MODEL = NDIGITS / "spikformer.onnx"
