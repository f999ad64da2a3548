"""The registry of lowering rules: frontend op → function(lowerer, node).

Rules live in the modules of their family (hqc.lowering.tensor, arith, layers, pool, neurons)
and register themselves with `@rule("Op", ...)`; `RULE_MODULES` lists those modules.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hqc.ir import Node
    from hqc.lowering.lowerer import Lowerer

Rule = Callable[["Lowerer", "Node"], Any]
RULES: dict[str, Rule] = {}
RULE_MODULES = (
    "hqc.lowering.tensor",
    "hqc.lowering.arith",
    "hqc.lowering.layers",
    "hqc.lowering.pool",
    "hqc.lowering.neurons",
)


def rule(*ops: str) -> Callable[[Rule], Rule]:
    """Register `fn` as the lowering of the frontend ops `ops` (one rule per op)."""

    def deco(fn: Rule) -> Rule:
        for op in ops:
            if op in RULES:
                raise RuntimeError(f"lowering rule for {op} defined twice")
            RULES[op] = fn
        return fn

    return deco


def rules() -> dict[str, Rule]:
    """Every rule (importing the rule modules registers them)."""
    for m in RULE_MODULES:
        importlib.import_module(m)
    return RULES
