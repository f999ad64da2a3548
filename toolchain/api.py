"""The Python API: `hqc.compile`, `hqc.inspect`, `hqc.cost`, `hqc.lower`, `hqc.verify`,
`hqc.load_report` (docs/api.md).

Each function calls the same library functions as its command and raises the same
`HqcError` with the same one-line message; nothing here parses arguments or prints.

    model: ONNX path | torch nn.Module (+ example_input) ──export──▶ model.onnx
    data:  NPZ path | arrays {x, y, x_val, y_val, …} | torch Dataset(s) ──▶ data.npz
      ──▶ run_compile(CompileConfig) ──▶ out/ ──load_report──▶ CompileReport

A model or data given as objects is written to a temporary folder that is removed when
the call returns; the output folder's config.yaml and report.json then name those
temporary files (pass paths to make a run reproducible from its config.yaml).
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from hqc.config import CompileConfig
from hqc.errors import ConfigError, DataError, HqcError, ModelError

__all__ = [
    "CompileReport",
    "HqcError",
    "compile",
    "compile_options",
    "cost",
    "inspect",
    "load_report",
    "lower",
    "verify",
]

#: The ONNX opset of the TorchScript exporter (`exporter="torchscript"`).
TORCHSCRIPT_OPSET = 17

#: NPZ keys of the three splits, as `hqc.data` reads them.
_SPLIT_KEYS = {"train": ("x", "y"), "val": ("x_val", "y_val"), "test": ("x_test", "y_test")}

# CompileConfig field → the API's (and the CLI's) option name; the rest keep their names
_RENAMED = {"lambda_": "lam"}
# passed as compile()'s own arguments, not as options
_POSITIONAL = ("model", "data", "target", "out")


def compile_options() -> dict[str, Any]:
    """The options `hqc.compile` takes (the CLI's names) with their defaults, from
    `CompileConfig`."""
    defaults = CompileConfig()
    return {_RENAMED.get(f.name, f.name): getattr(defaults, f.name) for f in fields(CompileConfig)
            if f.name not in _POSITIONAL}


# ----------------------------------------------------------------------------- result


@dataclass(frozen=True)
class CompileReport:
    """The headline numbers of a compile (from its report.json) and the paths it wrote.

    Accuracies are top-1 in 0..1 on `split` (`samples` samples); energies are per
    inference in pJ (paper model; `spike_*`: the spike-aware estimate, None when no
    firing rates were measured); storage in bits; ratios are plan / fp32 (below 1 is a
    saving). `report` is the whole report.json document (docs/report.md). After a
    `stop_after` run only `out_dir`, `stopped_after` and the figures measured so far are
    set.
    """

    out_dir: Path
    stopped_after: str | None = None
    target: str | None = None
    split: str | None = None
    samples: int | None = None
    float_accuracy: float | None = None
    fake_quant_accuracy: float | None = None
    integer_accuracy: float | None = None
    energy_pj: float | None = None
    energy_fp32_pj: float | None = None
    energy_ratio: float | None = None
    spike_energy_pj: float | None = None
    spike_energy_fp32_pj: float | None = None
    spike_energy_ratio: float | None = None
    storage_bits: int | None = None
    storage_fp32_bits: int | None = None
    storage_ratio: float | None = None
    average_bits: float | None = None
    plan: dict[str, str] = field(default_factory=dict)
    verified: dict[str, int] = field(default_factory=dict)
    report_json: Path | None = None
    report_html: Path | None = None
    report_md: Path | None = None
    plan_yaml: Path | None = None
    int_model: Path | None = None
    kernels: Path | None = None
    report: dict[str, Any] | None = field(default=None, repr=False)

    @classmethod
    def from_dir(cls, directory: str | Path) -> CompileReport:
        """Read DIR/report.json (validated as `hqc report DIR` does; same errors)."""
        from hqc.report import REPORT_FILES, load_report, report_path

        path = report_path(directory)
        doc = load_report(path)
        d = path.parent
        acc = doc["accuracy"] or {}
        tot, base, ratios = doc["total"], doc["baseline_fp32"], doc["ratios"]
        outputs = doc["outputs"]

        def out(role: str) -> Path | None:
            return d / outputs[role].rstrip("/") if role in outputs else None

        return cls(
            out_dir=d,
            target=doc["target"]["name"],
            split=acc.get("split"),
            samples=acc.get("samples"),
            float_accuracy=acc.get("float"),
            fake_quant_accuracy=acc.get("fake_quant"),
            integer_accuracy=acc.get("integer"),
            energy_pj=tot["energy_total_pj"],
            energy_fp32_pj=base["energy_total_pj"],
            energy_ratio=ratios["energy_total_pj"],
            spike_energy_pj=tot["spike_energy_total_pj"],
            spike_energy_fp32_pj=base["spike_energy_total_pj"],
            spike_energy_ratio=ratios["spike_energy_total_pj"],
            storage_bits=tot["storage_bits"],
            storage_fp32_bits=base["storage_bits"],
            storage_ratio=ratios["storage_bits"],
            average_bits=tot["average_bits"],
            plan={row["name"]: row["choice"] for row in doc["layers"]},
            verified=dict((doc["verify"] or {}).get("agreement", {})),
            report_json=path,
            report_html=d / REPORT_FILES["html"],
            report_md=d / REPORT_FILES["md"],
            plan_yaml=out("plan"),
            int_model=out("int_model"),
            kernels=out("kernels"),
            report=doc,
        )

    def to_dict(self) -> dict[str, Any]:
        """Every field but `report`, JSON-ready (paths as strings)."""
        d = asdict(self)
        d.pop("report")
        return {k: str(v) if isinstance(v, Path) else v for k, v in d.items()}


def load_report(directory: str | Path) -> CompileReport:
    """A finished `hqc compile` folder (or its report.json) → CompileReport."""
    return CompileReport.from_dir(directory)


# ----------------------------------------------------------------------------- inputs


def _export(module: Any, example_input: Any, path: Path, exporter: str) -> None:
    """torch nn.Module → ONNX at `path` (eval mode, SpikingJelly state reset around it)."""
    import contextlib as _cl
    import io
    import warnings

    import torch

    if example_input is None:
        raise ConfigError("model is a torch nn.Module: pass example_input= (one input tensor, batch 1)")
    if exporter not in ("torchscript", "dynamo"):
        raise ConfigError(f"exporter must be 'torchscript' or 'dynamo', got {exporter!r}")
    args = tuple(example_input) if isinstance(example_input, (tuple, list)) else (example_input,)
    args = tuple(torch.as_tensor(a) for a in args)
    was_training = module.training
    module.eval()
    _reset_state(module)
    try:
        with torch.no_grad(), warnings.catch_warnings(), _cl.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            if exporter == "dynamo":
                torch.onnx.export(module, args, str(path), dynamo=True, verbose=False)
            else:
                torch.onnx.export(module, args, str(path), dynamo=False, opset_version=TORCHSCRIPT_OPSET)
    except HqcError:
        raise
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"torch.onnx.export ({exporter}) failed: {first}") from exc
    finally:
        _reset_state(module)
        module.train(was_training)


def _reset_state(module: Any) -> None:
    """Reset SpikingJelly neuron state (membranes) so the export starts from rest."""
    try:
        from spikingjelly.activation_based import base
    except ImportError:
        return
    for m in module.modules():
        if isinstance(m, base.MemoryModule):
            m.reset()


def _is_module(obj: Any) -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return False
    return isinstance(obj, torch.nn.Module)


def _model_path(model: Any, example_input: Any, exporter: str, tmp: Callable[[], Path]) -> str:
    if isinstance(model, (str, Path)):
        if example_input is not None:
            raise ConfigError("example_input= is only for a torch nn.Module model, not an ONNX path")
        return str(model)
    if _is_module(model):
        path = tmp() / "model.onnx"
        _export(model, example_input, path, exporter)
        return str(path)
    raise ConfigError(f"model must be an ONNX path or a torch nn.Module, got {type(model).__name__}")


def _array(value: Any, where: str) -> Any:
    import numpy as np

    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu().numpy()
    a = np.asarray(value)
    if a.dtype == object or a.dtype.kind not in "biuf":
        raise DataError(f"{where}: dtype {a.dtype}; expected a numeric array")
    return a


def _dataset_arrays(ds: Any, where: str) -> tuple[Any, Any]:
    """A torch Dataset of (x, y) items, x shaped (T, C, H, W) → stacked (x, y) arrays."""
    import numpy as np

    try:
        n = len(ds)
    except TypeError:
        raise DataError(f"{where}: a dataset must have a length") from None
    if n == 0:
        raise DataError(f"{where}: the dataset is empty")
    xs, ys = [], []
    for i in range(n):
        item = ds[i]
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise DataError(f"{where}[{i}]: expected an (x, y) pair")
        xs.append(_array(item[0], f"{where}[{i}].x"))
        ys.append(_array(item[1], f"{where}[{i}].y").reshape(()))
    shapes = {x.shape for x in xs}
    if len(shapes) != 1:
        raise DataError(f"{where}: items differ in shape: {sorted(shapes)}")
    return np.stack(xs), np.stack(ys)


def _is_dataset(obj: Any) -> bool:
    """A map-style dataset: indexable with a length, and not a mapping, list or array."""
    if isinstance(obj, (Mapping, Sequence)) or hasattr(obj, "dtype"):
        return False
    return hasattr(obj, "__getitem__") and hasattr(obj, "__len__")


def _data_arrays(data: Any) -> dict[str, Any]:
    """Arrays for the NPZ keys from a mapping of arrays, a mapping of splits, or a Dataset."""
    if _is_dataset(data):
        x, y = _dataset_arrays(data, "data")
        return {"x": x, "y": y}
    if not isinstance(data, Mapping):
        raise DataError("data must be an NPZ path, a mapping of arrays (x, y, x_val, y_val, …) "
                        f"or a torch Dataset, got {type(data).__name__}")
    keys = set(data)
    array_keys = {k for pair in _SPLIT_KEYS.values() for k in pair}
    if keys <= set(_SPLIT_KEYS) and keys:
        out = {}
        for split, value in data.items():
            kx, ky = _SPLIT_KEYS[split]
            if _is_dataset(value):
                out[kx], out[ky] = _dataset_arrays(value, f"data[{split!r}]")
            elif isinstance(value, (tuple, list)) and len(value) == 2:
                out[kx], out[ky] = (_array(v, f"data[{split!r}]") for v in value)
            else:
                raise DataError(f"data[{split!r}]: expected a torch Dataset or an (x, y) pair")
        return out
    unknown = sorted(keys - array_keys)
    if unknown:
        raise DataError(f"data: unknown key {unknown[0]!r} (keys: x, y, x_val, y_val, x_test, y_test; "
                        "or splits: train, val, test)")
    return {k: _array(v, f"data[{k!r}]") for k, v in data.items()}


def _data_path(data: Any, tmp: Callable[[], Path]) -> str:
    import numpy as np

    if isinstance(data, (str, Path)):
        return str(data)
    arrays = _data_arrays(data)
    if "x" not in arrays or "y" not in arrays:
        raise DataError("data: missing 'x'/'y' (the training split)")
    path = tmp() / "data.npz"
    np.savez(path, **arrays)
    return str(path)


@contextlib.contextmanager
def _inputs() -> Iterator[Callable[[], Path]]:
    """A lazily created temporary folder for exported models and data, removed after."""
    holder: list[tempfile.TemporaryDirectory] = []

    def get() -> Path:
        if not holder:
            holder.append(tempfile.TemporaryDirectory(prefix="hqc-api-"))
        return Path(holder[0].name)

    try:
        yield get
    finally:
        for t in holder:
            t.cleanup()


# ----------------------------------------------------------------------------- API


def compile(
    model: Any,
    data: Any,
    target: str = CompileConfig.target,
    out: str | Path | None = None,
    *,
    example_input: Any = None,
    exporter: str = "torchscript",
    progress: Callable[[str, dict[str, Any]], None] | None = None,
    **options: Any,
) -> CompileReport:
    """Search, lower and report `model` for `target` into the folder `out` (default
    build/<model stem>, or build/model for a module), as `hqc compile` does.

    `options` are the CLI's option names (`hqc.api.compile_options()` lists them with
    their defaults, which are CompileConfig's): epochs, finetune_epochs, lam, seed,
    batch_size, device, plan, search_space, input_layout, split, verify_limit, stop_after.
    """
    known = compile_options()
    for name in options:
        if name not in known:
            raise ConfigError(f"hqc.compile: unknown option {name!r} (known: {', '.join(sorted(known))})")
    from hqc.compile import run_compile

    if out is None and not isinstance(model, (str, Path)):
        out = Path("build") / "model"
    values = {"target": target, "out": str(out or "")}
    for k, v in options.items():  # config-file keys: `lambda` for lam; paths as strings
        values["lambda" if k == "lam" else k] = str(v) if isinstance(v, Path) else v
    cfg = CompileConfig.from_dict(values, where="hqc.compile")  # checked before any export
    with _inputs() as tmp:
        cfg.model = _model_path(model, example_input, exporter, tmp)
        cfg.data = _data_path(data, tmp)
        result = run_compile(cfg, progress)
    if result.stopped_after is not None:
        s = result.summary
        return CompileReport(
            out_dir=result.out_dir,
            stopped_after=result.stopped_after,
            target=s.get("target"),
            float_accuracy=s.get("float_accuracy"),
            fake_quant_accuracy=s.get("fake_quant_accuracy"),
            integer_accuracy=s.get("integer_accuracy"),
            energy_ratio=s.get("energy_ratio"),
        )
    return CompileReport.from_dir(result.out_dir)


def inspect(
    model: Any,
    input_layout: str | None = None,
    *,
    example_input: Any = None,
    exporter: str = "torchscript",
) -> dict[str, Any]:
    """The weight layers and spiking neurons of `model`: the `hqc inspect --json` document
    (schema hqc.inspect/1)."""
    from hqc.inspection import inspect_dict
    from hqc.pipeline import run_frontend

    with _inputs() as tmp:
        return inspect_dict(run_frontend(_model_path(model, example_input, exporter, tmp), input_layout))


def cost(
    model: Any,
    target: str = CompileConfig.target,
    plan: str | Path | Mapping[str, str] | None = None,
    *,
    all: str | None = None,
    data: Any = None,
    input_layout: str | None = None,
    lowering: str | Path | None = None,
    accumulator: str = "paper",
    example_input: Any = None,
    exporter: str = "torchscript",
) -> dict[str, Any]:
    """Energy and storage per layer and group vs fp32 under `plan` (a plan.yaml or
    {layer: choice}) or one choice for `all` layers, with the full accounting: the
    `hqc cost --json` document. `data` (as for `compile`) measures firing rates for the
    spike-aware estimate; `lowering` (a folder of `hqc lower`/`compile` with this plan)
    and `accumulator` ("paper" or "proven") are `--lowering` and `--accumulator`."""
    from hqc.targets import load_target
    from hqc.targets.full import cost_of_model

    if (plan is None) == (all is None):
        raise ConfigError("give exactly one of plan= (a plan.yaml or {layer: choice}) or all= (a choice)")
    tgt = load_target(target)
    with _inputs() as tmp:
        model_path = _model_path(model, example_input, exporter, tmp)
        data_path = None if data is None else _data_path(data, tmp)
        run = cost_of_model(model_path, tgt, plan=plan, all_choice=all, data=data_path, input_layout=input_layout,
                            lowering_dir=lowering, accumulator=accumulator)
    return run.document()


def lower(
    model: Any,
    plan: str | Path | Mapping[str, str],
    out: str | Path | None = None,
    *,
    data: Any = None,
    input_layout: str | None = None,
    resolution_bits: int | None = None,
    logit_bits: int | None = None,
    example_input: Any = None,
    exporter: str = "torchscript",
) -> Any:
    """Lower `model` with `plan` into `out` (model.int.onnx, kernels/, lowered.onnx,
    lowering.json), as `hqc lower`; returns the LoweringResult (`out_dir`, `doc`: the
    lowering.json document). `data` checks the inputs are integers and sets their range."""
    from hqc.lowerdir import lower_model

    with _inputs() as tmp:
        model_path = _model_path(model, example_input, exporter, tmp)
        if out is None and not isinstance(model, (str, Path)):
            out = Path("build") / "model"
        return lower_model(
            model_path, plan, out,
            data=None if data is None else _data_path(data, tmp),
            input_layout=input_layout, resolution_bits=resolution_bits, logit_bits=logit_bits,
        )


def verify(
    directory: str | Path,
    data: Any,
    split: str = CompileConfig.split,
    limit: int | None = None,
    *,
    c: bool = True,
    float_model: bool = True,
) -> Any:
    """Check that the numpy reference, onnxruntime and (c) the compiled C kernels of a
    lowering folder give identical integer logits on `data`, as `hqc verify`; returns the
    VerifyResult (`identical`, `agree`, `accuracy_int`, `accuracy_float`, `.to_dict()`).
    A disagreement is a result (`identical` False), not an error."""
    from hqc.verification import verify_dir

    backends = ("onnxruntime", "c") if c else ("onnxruntime",)
    with _inputs() as tmp:
        return verify_dir(directory, _data_path(data, tmp), split, limit, backends, float_model)
