"""Quantizer choice names: fp32, uni<b> (uniform b-bit), pot<b> (power-of-two b-bit).

The names are the vocabulary of plan.yaml, search-space configs, `hqc cost --all` and the
cost model. Parsing is strict: an unknown name is a `PlanError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from hqc.errors import PlanError

ChoiceKind = Literal["fp32", "uniform", "pot"]

DEFAULT_CHOICES: tuple[str, ...] = ("fp32", "uni4", "uni2", "pot4", "pot2")

_NAME = re.compile(r"^(fp32|uni(\d+)|pot(\d+))$")


@dataclass(frozen=True, order=True)
class QuantChoice:
    """A weight quantizer choice. `bits` is the storage width of one weight code."""

    kind: ChoiceKind
    bits: int

    @property
    def name(self) -> str:
        if self.kind == "fp32":
            return "fp32"
        return ("uni" if self.kind == "uniform" else "pot") + str(self.bits)

    def __str__(self) -> str:
        return self.name


def parse_choice(name: str) -> QuantChoice:
    """'uni4' -> QuantChoice('uniform', 4). Uniform 2..8 bits, power-of-two 2..5 bits."""
    m = _NAME.match(str(name).strip())
    if not m:
        raise PlanError(f"unknown quantizer {name!r}: expected fp32, uni<b> or pot<b>")
    if m.group(1) == "fp32":
        return QuantChoice("fp32", 32)
    if m.group(2) is not None:
        bits = int(m.group(2))
        if not 2 <= bits <= 8:
            raise PlanError(f"unknown quantizer {name!r}: uniform bits must be in 2..8")
        return QuantChoice("uniform", bits)
    bits = int(m.group(3))
    if not 2 <= bits <= 5:
        raise PlanError(f"unknown quantizer {name!r}: power-of-two bits must be in 2..5")
    return QuantChoice("pot", bits)
