"""Building a kernels folder with its Makefile and running the test driver on inputs."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import numpy as np

from hqc.errors import ModelError


def build(directory: str | Path, timeout_s: float = 600.0, target: str = "hqc_test",
          make_vars: dict[str, str] | None = None) -> Path:
    """`make target` in a kernels folder → path of the target (hqc_test, or libhqc_model.a
    for "lib"). `make_vars` (e.g. {"CFLAGS": "-O3"}) go on make's command line; otherwise
    CC and CFLAGS come from the environment or the Makefile's defaults. Raises ModelError
    with the compiler's first error line when the build fails."""
    d = Path(directory)
    args = [f"{k}={v}" for k, v in (make_vars or {}).items()]
    res = subprocess.run(["make", "-s", "-C", str(d), target, *args], capture_output=True, text=True,
                         timeout=timeout_s)
    if res.returncode != 0:
        first = next((ln for ln in (res.stderr + res.stdout).splitlines() if "error" in ln), res.stderr.strip()[:200])
        raise ModelError(f"{d}: make failed: {first}")
    return d / ("libhqc_model.a" if target == "lib" else target)


def run_binary(exe: str | Path, x: np.ndarray, out_size: int, timeout_s: float = 3600.0) -> np.ndarray:
    """Run hqc_test on stacked model inputs (G, *input shape) → logits (G, out_size) int64."""
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
