"""`hqc compile` options as one dataclass that round-trips through a YAML file.

`--config hqc.yaml` sets any option; options given on the command line win over the
file. `CompileConfig.to_yaml()` writes every option, so a run's `config.yaml` in the
output folder reproduces it: load → dump → load is the identity.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from hqc.errors import ConfigError
from hqc.yamlio import read_yaml

CONFIG_SCHEMA = "hqc.config/1"
_DEVICE = re.compile(r"cpu|cuda(:(0|[1-9][0-9]*))?")

STAGES: tuple[str, ...] = (
    "import",
    "canonicalize",
    "recognize-neurons",
    "annotate-layers",
    "insert-quant-choices",
    "search",
    "finetune",
    "lower-int",
    "verify",
    "emit",
)


# The one set of defaults of `hqc compile`, `hqc search` and `hqc.search.SearchConfig`.
#: λ when none is given (tuned on examples/ndigits, see docs/search.md).
DEFAULT_LAMBDA = 0.03
DEFAULT_EPOCHS = 6
DEFAULT_FINETUNE_EPOCHS = 2
DEFAULT_BATCH_SIZE = 32
DEFAULT_SEED = 0
DEFAULT_DEVICE = "cpu"
DEFAULT_TARGET = "cmos45"


@dataclass
class CompileConfig:
    model: str = ""
    data: str = ""
    target: str = DEFAULT_TARGET
    out: str = ""
    plan: str | None = None
    search_space: str | None = None
    input_layout: str | None = None
    lambda_: float | None = None  # None: DEFAULT_LAMBDA
    epochs: int = DEFAULT_EPOCHS
    finetune_epochs: int = DEFAULT_FINETUNE_EPOCHS
    batch_size: int = DEFAULT_BATCH_SIZE
    seed: int = DEFAULT_SEED
    device: str = DEFAULT_DEVICE
    stop_after: str | None = None
    verify_limit: int | None = None
    split: str = "val"

    def validate(self, where: str = "options") -> None:
        if self.lambda_ is not None and self.lambda_ < 0:
            raise ConfigError(f"{where}: lambda must be ≥ 0, got {self.lambda_}")
        for name in ("epochs", "finetune_epochs"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{where}: {name} must be ≥ 0, got {getattr(self, name)}")
        if self.batch_size <= 0:
            raise ConfigError(f"{where}: batch_size must be > 0, got {self.batch_size}")
        check_device(self.device, where)
        if self.stop_after is not None and self.stop_after not in STAGES:
            raise ConfigError(f"{where}: stop_after {self.stop_after!r} is not a stage ({', '.join(STAGES)})")
        if self.split not in ("train", "val", "test"):
            raise ConfigError(f"{where}: split must be train, val or test, got {self.split!r}")
        if self.verify_limit is not None and self.verify_limit <= 0:
            raise ConfigError(f"{where}: verify_limit must be > 0")

    def require_inputs(self) -> None:
        """ConfigError unless a model and a data file are given."""
        if not self.model:
            raise ConfigError("no model given")
        if not self.data:
            raise ConfigError("no data given (--data D.npz)")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["lambda"] = d.pop("lambda_")
        return {"schema": CONFIG_SCHEMA, **d}

    def to_yaml(self, versions: dict[str, str] | None = None) -> str:
        """Every option as YAML; with `versions` (see `environment_versions`) a `versions`
        record too, which loading accepts and ignores: it documents the run."""
        d = self.to_dict()
        if versions is not None:
            d["versions"] = dict(versions)
        return yaml.safe_dump(d, sort_keys=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "config") -> CompileConfig:
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: expected a mapping of options")
        data = dict(data)
        schema = data.pop("schema", CONFIG_SCHEMA)
        if schema != CONFIG_SCHEMA:
            raise ConfigError(f"{where}:schema: expected {CONFIG_SCHEMA!r}, got {schema!r}")
        if "lambda" in data:
            data["lambda_"] = data.pop("lambda")
        if not isinstance(data.pop("versions", {}), dict):
            raise ConfigError(f"{where}:versions: expected a mapping of package versions")
        known = {f.name: f for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key not in known:
                shown = "lambda" if key == "lambda_" else key
                raise ConfigError(f"{where}:{shown}: unknown option (known: {', '.join(sorted(_public(k) for k in known))})")
            kwargs[key] = _coerce(key, value, known[key].type, where)
        cfg = cls(**kwargs)
        cfg.validate(where)
        return cfg

    @classmethod
    def from_file(cls, path: str | Path) -> CompileConfig:
        return cls.from_dict(read_yaml(path, ConfigError, "config") or {}, str(path))


def environment_versions() -> dict[str, str]:
    """Versions of hqc, python and the packages a run's figures depend on (config.yaml)."""
    import importlib
    import platform

    from hqc import __version__

    out = {"hqc": __version__, "python": platform.python_version()}
    for name in ("torch", "onnx", "onnxruntime", "numpy"):
        out[name] = str(importlib.import_module(name).__version__)
    return out


def check_device(device: str, where: str | None = None) -> None:
    """ConfigError unless `device` has the form cpu, cuda or cuda:N (N = 0, 1, ...)."""
    if not isinstance(device, str) or _DEVICE.fullmatch(device) is None:
        prefix = f"{where}: " if where else ""
        raise ConfigError(f"{prefix}device must be cpu, cuda or cuda:N (N = 0, 1, ...), got {device!r}")


def require_device(device: str) -> None:
    """ConfigError when `device` names a CUDA device that torch does not see here (at use:
    this imports torch)."""
    check_device(device)
    if not device.startswith("cuda"):
        return
    import torch

    if not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but torch has no CUDA device here "
                          f"(torch {torch.__version__}, CUDA build: {torch.version.cuda or 'no'}); use --device cpu")
    n = torch.cuda.device_count()
    if ":" in device and int(device.split(":")[1]) >= n:
        raise ConfigError(f"device {device!r} requested but torch sees {n} CUDA device(s): cuda:0..cuda:{n - 1}")


def _public(name: str) -> str:
    return "lambda" if name == "lambda_" else name


def _coerce(key: str, value: Any, typ: Any, where: str) -> Any:
    t = str(typ)
    label = f"{where}:{_public(key)}"
    if value is None:
        if "None" in t:
            return None
        raise ConfigError(f"{label}: must not be empty")
    if t.startswith("int"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{label}: expected an integer, got {value!r}")
        return value
    if t.startswith("float"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{label}: expected a number, got {value!r}")
        return float(value)
    if t.startswith("str"):
        if not isinstance(value, str):
            raise ConfigError(f"{label}: expected a string, got {value!r}")
        return value
    return value
