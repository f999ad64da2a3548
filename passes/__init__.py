"""Passes: one module per pass, each a class with a kebab-case `name` and
`run(graph, ctx) -> PassResult`. The registry maps names to pass classes; the pipeline
is a tuple of names (see `hqc.pipeline`)."""

from __future__ import annotations

from hqc.passes.base import PASSES, Context, Pass, PassResult, register, run_passes

__all__ = ["PASSES", "Context", "Pass", "PassResult", "register", "run_passes"]
