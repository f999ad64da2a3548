"""hqc: heterogeneous quantization compiler for spiking vision transformers.

The Python API (docs/api.md): `hqc.compile`, `hqc.inspect`, `hqc.cost`, `hqc.lower`,
`hqc.verify`, `hqc.load_report`, `hqc.CompileReport`, `hqc.HqcError`. They live in
`hqc.api`, imported on first use, so `import hqc` stays light.
"""

import sys
import types

__version__ = "0.1.0"

_API = ("compile", "inspect", "cost", "lower", "verify", "load_report", "CompileReport", "HqcError")
__all__ = ["__version__", *_API]


def __getattr__(name: str) -> object:
    if name in _API:
        from hqc import api

        return getattr(api, name)
    raise AttributeError(f"module 'hqc' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))


class _Package(types.ModuleType):
    """Keeps `hqc.compile` the API function: importing the pipeline module `hqc.compile`
    would otherwise bind that name on the package to the module (`from hqc.compile import
    run_compile` still works: it goes through sys.modules)."""

    def __setattr__(self, name: str, value: object) -> None:
        if name in _API and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
