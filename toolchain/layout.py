"""Where the model input keeps its batch and time axes."""

from __future__ import annotations

from hqc.errors import ModelError
from hqc.ir import Graph


def detect_layout(graph: Graph, T: int | None = None) -> str:
    """Guess where the model input keeps batch (B) and time (T): 'BT' or 'TB' (or 'B')."""
    shp = graph.shape(graph.inputs[0])
    if shp is None:
        raise ModelError("the model input has no static shape")
    if T is None:
        ts = {graph.shape(n.inputs[0])[n.attrs.get("time_axis", 0)] for n in graph.nodes() if n.op == "LIF"}
        T = ts.pop() if len(ts) == 1 else None
    if len(shp) >= 2 and T is not None:
        if shp[0] == T and shp[1] != T:
            return "TB"
        if shp[1] == T and shp[0] != T:
            return "BT"
        if shp[0] == shp[1] == T:
            raise ModelError(
                f"cannot tell the batch axis from the time axis of input shape {list(shp)}; pass --input-layout BT or TB"
            )
    return "B"
