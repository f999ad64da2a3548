"""Shared helpers of the benchmark scripts: the machine, the shipped examples, plan costs.

Not part of the `hqc` package; the scripts put this folder on `sys.path`.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

#: The shipped examples: name -> (model, data).
DATASETS: dict[str, tuple[Path, Path]] = {
    "ndigits": (REPO / "examples" / "ndigits" / "spikformer.onnx", REPO / "examples" / "ndigits" / "ndigits.npz"),
    "motion": (REPO / "examples" / "motion" / "spikformer.onnx", REPO / "examples" / "motion" / "motion.npz"),
}


def single_thread_env() -> None:
    """Ask numpy's BLAS and OpenMP for one thread (call before numpy is imported)."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one)."""
    cpu = platform.processor() or "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return cpu


def machine_info() -> dict[str, Any]:
    """CPU model, core count, library versions, torch threads and the load average now."""
    import torch

    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "load_average_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    with contextlib.suppress(ImportError):
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    info["git"] = git_state()
    return info


def git_state() -> str | None:
    """The repository's HEAD commit (short), with "+dirty" when tracked files differ."""
    import subprocess

    try:
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (head + ("+dirty" if dirty else "")) or None


def plan_costs(layers: Sequence[Any], plan: Mapping[str, Any], target: Any,
               firing_rates: Mapping[str, float] | None) -> dict[str, Any]:
    """Energy, storage and average bits of a plan vs fp32, exactly as the report computes
    them (`hqc.targets.model_cost`; average bits = storage bits / params).

    Returns fractions of fp32: energy_paper, energy_spike (None without rates), storage;
    average_bits; and the absolute totals (pJ, bits).
    """
    from hqc.targets import model_cost

    cost = model_cost(layers, dict(plan), target, firing_rates)
    total = cost.total
    return {
        "energy_paper": cost.ratios["energy_total_pj"],
        "energy_spike": cost.ratios["spike_energy_total_pj"],
        "storage": cost.ratios["storage_bits"],
        "average_bits": total.storage_bits / total.params if total.params else None,
        "energy_pj": total.energy_total_pj,
        "energy_fp32_pj": cost.baseline_total.energy_total_pj,
        "spike_energy_pj": total.spike_energy_total_pj,
        "spike_energy_fp32_pj": cost.baseline_total.spike_energy_total_pj,
        "storage_bits": total.storage_bits,
        "storage_fp32_bits": cost.baseline_total.storage_bits,
    }


def write_json(path: Path, doc: Mapping[str, Any]) -> None:
    """Write JSON atomically (temp file + rename): a half-written result never exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
