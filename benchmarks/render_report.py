"""Screenshot check of report.html: build a report, render it in headless Chromium.

    python benchmarks/render_report.py [--from build/x/report.json] [--out build/report-shot]
                                       [--blocks 4] [--epochs 30] [--height 4000]

Without --from it builds a realistic synthetic report (a Spikformer-4-384 on 32×32
inputs, T = 4: a 5-conv tokenizer, 4 blocks of q/k/v/proj and fc1/fc2, a head; a
30-epoch search history; measured-looking firing rates; cmos45), writes report.json,
report.md and report.html into --out, and screenshots report.html to report.png.

Chromium comes from Debian's packages (`apt-get install -y chromium`); it runs with
networking and background services off. Look at the PNGs: charts, legends, labels.
"""

from __future__ import annotations

import argparse
import math
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from hqc.choices import DEFAULT_CHOICES
from hqc.layers import LayerInfo
from hqc.report import (
    AccuracyInfo,
    ModelInfo,
    SearchInfo,
    VerifyInfo,
    build_report,
    load_report,
    write_report,
)
from hqc.targets import load_target

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--force-device-scale-factor=1",
)


class ChromiumMissing(RuntimeError):
    """No Chromium binary on PATH."""


# ------------------------------------------------------------------------ synthetic input


def _conv(name: str, cin: int, cout: int, hw: int, t: int, input_kind: str) -> LayerInfo:
    return LayerInfo(name=name, kind="conv2d", group="tokenizer", weight_shape=(cout, cin, 3, 3),
                     params=cout * cin * 9, macs=t * hw * hw * cin * cout * 9,
                     input_kind=input_kind)  # type: ignore[arg-type]


def _linear(name: str, group: str, din: int, dout: int, tokens: int, t: int,
            input_kind: str = "spikes") -> LayerInfo:
    return LayerInfo(name=name, kind="linear", group=group, weight_shape=(dout, din),  # type: ignore[arg-type]
                     params=din * dout, macs=t * tokens * din * dout, input_kind=input_kind)  # type: ignore[arg-type]


def spikformer_layers(blocks: int = 4, dim: int = 384, t: int = 4, classes: int = 10) -> list[LayerInfo]:
    """The weight layers of a CIFAR-style Spikformer (SPS tokenizer, 8×8 = 64 tokens)."""
    layers = [
        _conv("patch_embed.proj_conv", 3, dim // 8, 32, t, "real"),
        _conv("patch_embed.proj_conv1", dim // 8, dim // 4, 32, t, "spikes"),
        _conv("patch_embed.proj_conv2", dim // 4, dim // 2, 32, t, "spikes"),
        _conv("patch_embed.proj_conv3", dim // 2, dim, 16, t, "spikes"),
        _conv("patch_embed.rpe_conv", dim, dim, 8, t, "spikes"),
    ]
    for b in range(blocks):
        for part in ("q", "k", "v", "proj"):
            layers.append(_linear(f"block.{b}.attn.{part}_linear", "attention", dim, dim, 64, t))
        layers.append(_linear(f"block.{b}.mlp.fc1_linear", "mlp", dim, 4 * dim, 64, t))
        layers.append(_linear(f"block.{b}.mlp.fc2_linear", "mlp", 4 * dim, dim, 64, t))
    layers.append(_linear("head", "head", dim, classes, 1, t, "real"))
    return layers


def _history(rng: np.random.Generator, k_final: int, epochs: int, n: int) -> list[list[float]]:
    """Softmax of logits that drift from near-uniform toward candidate `k_final`."""
    logits = rng.normal(0, 0.15, n)
    rows = []
    for e in range(epochs):
        logits = logits + rng.normal(0, 0.12, n)
        logits[k_final] += 0.09 + 0.05 * rng.random()
        if e < epochs // 3:  # an early favourite that loses later
            logits[(k_final + 1) % n] += 0.06
        p = np.exp(logits - logits.max())
        p /= p.sum()
        rows.append([round(float(x), 6) for x in p])
    return rows


def synthetic_inputs(blocks: int = 4, epochs: int = 30, seed: int = 0) -> dict[str, Any]:
    """Keyword arguments of `build_report` for a realistic searched Spikformer."""
    rng = np.random.default_rng(seed)
    layers = spikformer_layers(blocks)
    cands = list(DEFAULT_CHOICES)

    def pick(layer: LayerInfo) -> str:
        if layer.name.endswith("proj_conv") or layer.group == "head":
            return "uni4" if layer.group == "tokenizer" else "fp32"
        if layer.group == "mlp":
            return "pot2" if "fc1" in layer.name else "uni2"
        if layer.group == "attention":
            return "pot4" if layer.name.endswith(("q_linear", "k_linear")) else "uni4"
        return "uni4"

    plan_layers: dict[str, Any] = {}
    for layer in layers:
        choice = pick(layer)
        hist = _history(rng, cands.index(choice), epochs, len(cands))
        plan_layers[layer.name] = {"choice": choice,
                                   "probability": hist[-1][cands.index(choice)],
                                   "candidates": cands, "history": hist}
    plan = {"model": "build/spikformer-4-384.onnx", "target": "cmos45", "lambda": 0.3,
            "seed": seed, "epochs": epochs, "finetune_epochs": 5,
            "search": {"seconds": 5412.7}, "layers": plan_layers}
    rates = {layer.name: round(float(rng.uniform(0.04, 0.32)), 4)
             for layer in layers if layer.input_kind == "spikes"}
    weights = {}
    for layer in layers:
        c_out = layer.weight_shape[0]
        fan_in = layer.d_in
        per_channel = rng.lognormal(0.0, 0.35, c_out).reshape((-1,) + (1,) * (len(layer.weight_shape) - 1))
        w = rng.laplace(0.0, 1.0 / math.sqrt(fan_in), layer.weight_shape) * per_channel
        weights[layer.name] = w.astype(np.float32)
    n_onnx = 1200 + 450 * blocks
    return {
        "model": ModelInfo(path="build/spikformer-4-384.onnx", onnx_nodes=n_onnx,
                           ir_nodes=60 + 38 * blocks, input_shape=(4, 1, 3, 32, 32),
                           time_steps=4, input_layout="TBCHW"),
        "layers": layers,
        "plan": plan,
        "target": load_target("cmos45"),
        "firing_rates": rates,
        "accuracy": AccuracyInfo(split="val", samples=10_000, float_model=0.9312,
                                 fake_quant=0.9254, integer=0.9251),
        "search": SearchInfo.from_plan(plan),
        "verify": VerifyInfo(reference="numpy integer reference", samples=256,
                             agreement={"onnxruntime": 256, "c": 256}),
        "weights": weights,
    }


# ------------------------------------------------------------------------ chromium


def find_chromium() -> str:
    """Path of a Chromium binary, or ChromiumMissing with the install command."""
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    raise ChromiumMissing("chromium is not installed: run `apt-get update && apt-get install -y "
                          "chromium` (as root) for the report screenshot check")


def screenshot(html_path: Path, png_path: Path, width: int = 1280, height: int = 4000,
               timeout: float = 180.0) -> Path:
    """Render `html_path` in headless Chromium to `png_path` (width × height pixels)."""
    exe = find_chromium()
    url = html_path.resolve().as_uri()
    png_path = png_path.resolve()
    png_path.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="hqc-chromium-") as profile:
        cmd = [exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
               f"--screenshot={png_path}", f"--window-size={width},{height}", url]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if not png_path.exists():
        raise RuntimeError(f"chromium wrote no screenshot (exit {proc.returncode}): "
                           f"{proc.stderr.strip()[-400:]}")
    return png_path


def png_facts(png_path: Path) -> dict[str, int]:
    """Width, height and the number of distinct byte values of the (filtered) pixel data.

    A single-colour image filters to a handful of byte values whatever the PNG filter;
    a page with text and charts uses nearly all 256.
    """
    data = png_path.read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{png_path}: not a PNG file")
    pos, idat, width, height = 8, b"", 0, 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    return {"width": width, "height": height, "bytes": len(data),
            "distinct_byte_values": len(set(raw))}


# ------------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--from", dest="source", type=Path, help="an existing report.json (or its folder)")
    ap.add_argument("--out", type=Path, default=Path("build/report-shot"))
    ap.add_argument("--blocks", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=4000)
    args = ap.parse_args(argv)

    report = (load_report(args.source) if args.source
              else build_report(**synthetic_inputs(args.blocks, args.epochs)))
    files = write_report(args.out, report)
    try:
        shots = [screenshot(files["html"], args.out / "report.png", args.width, args.height)]
    except ChromiumMissing as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for shot in shots:
        facts = png_facts(shot)
        print(f"{shot}: {facts['width']}×{facts['height']} px, {facts['bytes']} bytes, "
              f"{facts['distinct_byte_values']} distinct byte values")
    print(f"html: {files['html']} ({files['html'].stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
