# %% [markdown]
# # hqc from Python
#
# Build a small SpikingJelly spiking network, train it for a moment, compile it with
# `hqc.compile` (per-layer quantizer search → integer/shift-only lowering → C kernels →
# energy report), then read and plot the result.
#
# Runs as a script (`python examples/notebook.py`, about 10 s on an idle 2-core machine)
# or cell by cell in Jupyter / VS Code (`# %%` cells). Everything is written into
# `build/notebook/` below the current folder. Needs `spikingjelly` (`pip install --no-deps
# spikingjelly==2.0.0`); the plot uses matplotlib when it is installed and otherwise
# draws an SVG with the report's own chart code.

# %%
from pathlib import Path

import numpy as np
import torch
from spikingjelly.activation_based import functional, layer, neuron
from torch import nn

import hqc

torch.manual_seed(0)
torch.set_num_threads(1)
HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path("examples").resolve()
OUT = Path("build") / "notebook"

# %% [markdown]
# ## Data: a few samples of the shipped N-Digits event dataset
#
# `x` holds event counts per time bin, (N, T=4, 2 polarities, 32, 32), `y` the digit.
# hqc takes them as arrays: `{"x", "y", "x_val", "y_val"}` (or an NPZ path, or a torch
# Dataset of `(x, y)` items with x shaped (T, C, H, W)).

# %%
with np.load(HERE / "ndigits" / "ndigits.npz", allow_pickle=False) as npz:
    data = {"x": npz["x"][:384], "y": npz["y"][:384], "x_val": npz["x_val"][:96], "y_val": npz["y_val"][:96]}
print({k: (v.shape, v.dtype.name) for k, v in data.items()})


# %% [markdown]
# ## The model: conv → BN → LIF twice, a linear readout averaged over time
#
# SpikingJelly multi-step mode: the input is [T, B, C, H, W]. The LIF neurons get a
# surrogate defined here: SpikingJelly's own surrogates run a custom op that only the
# dynamo exporter handles, and `hqc.compile` exports with the TorchScript exporter
# (`exporter="torchscript"`, the default; `exporter="dynamo"` needs onnxscript).

# %%
class Heaviside(torch.autograd.Function):
    """Spike = (v ≥ threshold), with a sigmoid surrogate gradient."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        s = torch.sigmoid(4.0 * x)
        return grad * 4.0 * s * (1.0 - s)


class Surrogate(nn.Module):
    def forward(self, x):
        return Heaviside.apply(x)


def lif() -> nn.Module:
    return neuron.LIFNode(tau=2.0, v_threshold=1.0, detach_reset=True, surrogate_function=Surrogate())


class TinySNN(nn.Module):
    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.conv1, self.bn1, self.lif1 = layer.Conv2d(2, 16, 3, stride=2, padding=1, bias=False), layer.BatchNorm2d(16), lif()
        self.conv2, self.bn2, self.lif2 = layer.Conv2d(16, 32, 3, stride=2, padding=1, bias=False), layer.BatchNorm2d(32), lif()
        self.pool = layer.AvgPool2d(4)
        self.fc = layer.Linear(32 * 2 * 2, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [T, B, 2, 32, 32] → [B, classes]
        x = self.lif1(self.bn1(self.conv1(x)))
        x = self.lif2(self.bn2(self.conv2(x)))
        return self.fc(self.pool(x).flatten(2)).mean(0)


net = TinySNN()
functional.set_step_mode(net, "m")

# %% [markdown]
# ## A short training run (plain PyTorch, a few seconds)

# %%
x_train = torch.from_numpy(data["x"]).float().transpose(0, 1)  # [T, N, C, H, W]
y_train = torch.from_numpy(data["y"])
opt = torch.optim.Adam(net.parameters(), lr=1e-2)
net.train()
for epoch in range(4):
    for i in torch.randperm(len(y_train)).split(32):
        functional.reset_net(net)
        loss = nn.functional.cross_entropy(net(x_train[:, i]), y_train[i])
        opt.zero_grad()
        loss.backward()
        opt.step()
    print(f"epoch {epoch}: loss {loss.item():.3f}")
functional.reset_net(net)

# %% [markdown]
# ## Compile
#
# `example_input` fixes the exported input shape (batch 1, as hqc expects). The options
# are the CLI's (`epochs`, `finetune_epochs`, `lam`, `seed`, `batch_size`, `device`, …);
# one search epoch and one fine-tune epoch keep this example quick.

# %%
result = hqc.compile(
    net,
    data,
    target="cmos45",
    out=OUT,
    example_input=torch.zeros(4, 1, 2, 32, 32),
    epochs=1,
    finetune_epochs=1,
    batch_size=32,
    seed=0,
)
print(f"accuracy  float {result.float_accuracy:.1%} → fake-quant {result.fake_quant_accuracy:.1%}"
      f" → integer {result.integer_accuracy:.1%}  ({result.split}, {result.samples} samples)")
print(f"energy    {result.energy_pj / 1e6:.3g} µJ vs {result.energy_fp32_pj / 1e6:.3g} µJ fp32 "
      f"({result.energy_ratio:.3f}×, paper model)")
print(f"storage   {result.storage_bits / 8:.0f} B vs {result.storage_fp32_bits / 8:.0f} B fp32, "
      f"{result.average_bits:.2f} bits per weight")
print(f"plan      {result.plan}")
print(f"verified  {result.verified} of {result.samples} samples identical to the numpy reference")
print(f"wrote     {result.report_html}, {result.int_model}, {result.kernels}/")

# %% [markdown]
# ## Read it back
#
# `hqc.load_report(folder)` gives the same object from a finished folder;
# `result.report` is the whole report.json (docs/report.md).

# %%
again = hqc.load_report(OUT)
assert again == result
layers = result.report["layers"]
for row in layers:
    print(f"{row['name']:<12} {row['choice']:<5} {row['energy_total_pj'] / 1e3:9.1f} nJ "
          f"(fp32 {row['fp32']['energy_total_pj'] / 1e3:9.1f} nJ)")

# %% [markdown]
# ## Plot: energy per layer, fp32 vs the plan
#
# With matplotlib: a PNG. Without it: the same chart as report.html draws, as an SVG.

# %%
names = [row["name"] for row in layers]
fp32_pj = [row["fp32"]["energy_total_pj"] for row in layers]
plan_pj = [row["energy_total_pj"] for row in layers]
try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    plt = None
if plt is not None:
    fig, ax = plt.subplots(figsize=(7, 3))
    ys = np.arange(len(names))
    ax.barh(ys - 0.2, fp32_pj, 0.4, label="fp32", color="#aab3bf")
    ax.barh(ys + 0.2, plan_pj, 0.4, label="plan", color="#1f77b4")
    ax.set_yticks(ys, names)
    ax.set_xscale("log")
    ax.set_xlabel("energy per inference (pJ, paper model)")
    ax.legend()
    fig.tight_layout()
    plot_path = OUT / "energy_per_layer.png"
    fig.savefig(plot_path, dpi=120)
else:
    from hqc.report import format_energy
    from hqc.report.svg import Series, hbar_chart

    svg = hbar_chart("energy-per-layer", "Energy per layer: fp32 vs plan", names,
                     [Series("fp32", "#aab3bf", fp32_pj), Series("plan", "#1f77b4", plan_pj)],
                     fmt=format_energy, axis_label="energy per inference (log scale)", show_values=True)
    plot_path = OUT / "energy_per_layer.svg"
    plot_path.write_text(svg.replace("<svg ", '<svg xmlns="http://www.w3.org/2000/svg" ', 1), encoding="utf-8")
print(f"plot      {plot_path}")
