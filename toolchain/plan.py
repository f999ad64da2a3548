"""plan.yaml: the search result, a file a later run can apply without searching.

Schema `hqc.plan/1`:

    schema: hqc.plan/1
    model: path of the model searched        target: cost table name
    lambda: 0.3   seed: 0   epochs: 10       data: {path: …, fingerprint: …}
    layers:
      <layer name>:
        choice: uni4                         # fp32 | uni<b> | pot<b>
        probability: 0.93                    # final softmax(α) of the choice
        candidates: [fp32, uni4, uni2, pot4, pot2]
        history: [[…per-candidate probabilities…], …]   # one row per epoch

A hand-written plan needs only `layers: {name: {choice: …}}` (or `name: uni4`); every
other key is optional. Reading is strict about layer names and quantizer names.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from hqc.choices import QuantChoice, parse_choice
from hqc.errors import PlanError
from hqc.layers import LayerInfo
from hqc.yamlio import read_yaml

PLAN_SCHEMA = "hqc.plan/1"


def load_plan_yaml(path: str | Path) -> dict[str, Any]:
    """The raw plan document (validated to be a mapping with a `layers` mapping)."""
    data = read_yaml(path, PlanError, "plan")
    if not isinstance(data, dict) or not isinstance(data.get("layers"), dict):
        raise PlanError(f"{path}:layers: expected a mapping layer name -> {{choice: ...}}")
    return data


def read_plan(path: str | Path, layers: Sequence[LayerInfo]) -> dict[str, QuantChoice]:
    """Choices from a plan file: `layers: {name: {choice: uni4, ...}}` (or `name: uni4`).

    Keys other than `layers` and `choice` are ignored (the search writes more). Every
    model layer must have a choice; unknown layers or quantizers are a PlanError naming
    `file:key.path`.
    """
    data = load_plan_yaml(path)
    names = [layer.name for layer in layers]
    known = set(names)
    plan: dict[str, QuantChoice] = {}
    for name, entry in data["layers"].items():
        if name not in known:
            listed = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
            raise PlanError(f"{path}:layers.{name}: no layer of that name in the model "
                            f"(layers: {listed})")
        if isinstance(entry, dict):
            if "choice" not in entry:
                raise PlanError(f"{path}:layers.{name}.choice: missing required key")
            value, key = entry["choice"], f"layers.{name}.choice"
        else:
            value, key = entry, f"layers.{name}"
        try:
            plan[name] = parse_choice(value)
        except PlanError as e:
            raise PlanError(f"{path}:{key}: {e}") from None
    missing = [n for n in names if n not in plan]
    if missing:
        raise PlanError(f"{path}:layers: no choice for layers: {', '.join(missing)}")
    return plan


def write_plan(path: str | Path, doc: dict[str, Any]) -> None:
    """Write a plan document (adds the schema key); atomic (temp file + rename)."""
    from hqc.outdir import write_text_atomic

    body = {"schema": PLAN_SCHEMA, **{k: v for k, v in doc.items() if k != "schema"}}
    write_text_atomic(path, yaml.safe_dump(body, sort_keys=False, default_flow_style=None, allow_unicode=True))
