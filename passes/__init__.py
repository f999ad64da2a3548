"""Passes: one module per pass, each a class with a kebab-case `name` and
`run(graph, ctx) -> PassResult`. The registry maps names to pass classes; the pipeline
is a tuple of names (see `hqc.pipeline`). Importing this package registers every pass
and analysis (each module registers itself when imported)."""

from __future__ import annotations

# every pass and analysis module, so that the registries are complete after `import hqc.passes`
from hqc.passes import (  # noqa: E402,I001
    annotate_layers,
    canonicalize,
    insert_quant_choices,
    lower_int,
    recognize_neurons,
)
from hqc.passes.base import (
    ANALYSES,
    PASSES,
    Context,
    Pass,
    PassResult,
    analysis,
    invalidate,
    register,
    register_analysis,
    run_passes,
)

__all__ = [
    "ANALYSES", "PASSES", "Context", "Pass", "PassResult", "analysis", "annotate_layers", "canonicalize",
    "insert_quant_choices", "invalidate", "lower_int", "recognize_neurons", "register", "register_analysis",
    "run_passes",
]
