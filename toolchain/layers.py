"""The weight-layer record produced by the annotate-layers analysis.

Every cost, search and lowering step consumes `LayerInfo`; it is the contract between
the frontend and the rest of the compiler.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

LayerKind = Literal["conv1d", "conv2d", "linear"]
Group = Literal["tokenizer", "attention", "mlp", "head", "other"]
InputKind = Literal["spikes", "integers", "real"]

GROUPS: tuple[str, ...] = ("tokenizer", "attention", "mlp", "head", "other")


@dataclass(frozen=True)
class LayerInfo:
    """One weight layer (Conv/Gemm/MatMul with a constant weight) of the model.

    name:          stable layer name (the torch module name when recoverable, else the
                   weight initializer name); plan.yaml keys use it.
    kind:          conv1d | conv2d | linear.
    group:         tokenizer | attention | mlp | head | other.
    weight_shape:  shape of the weight in the PyTorch convention: conv (C_out, C_in/groups,
                   k...), linear (d_out, d_in).
    params:        number of weight elements (bias excluded; biases stay int32/fp32).
    macs:          multiply-accumulates per inference of one sample, all T time steps
                   included (the paper's N_mult).
    input_kind:    spikes (0/1), integers (small integer sums of spikes) or real values.
    nodes:         IR node ids that use this weight (several when the exporter unrolled
                   a layer per time step, as snnTorch exports do).
    weight:        IR constant name holding the weight.
    bias:          IR constant name of the bias, or None.
    """

    name: str
    kind: LayerKind
    group: Group
    weight_shape: tuple[int, ...]
    params: int
    macs: int
    input_kind: InputKind
    nodes: tuple[str, ...] = field(default_factory=tuple)
    weight: str = ""
    bias: str | None = None

    @property
    def d_in(self) -> int:
        """Fan-in of one output (C_in/groups · k^2 for conv, d_in for linear)."""
        n = 1
        for d in self.weight_shape[1:]:
            n *= d
        return n

    def to_dict(self) -> dict:
        d = asdict(self)
        d["weight_shape"] = list(self.weight_shape)
        d["nodes"] = list(self.nodes)
        return d
