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

from collections.abc import Mapping, Sequence
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
    """Choices from a plan file: `layers: {name: {choice: uni4, ...}}` (or `name: uni4`),
    resolved against the model's layers by `resolve_plan` (errors name `file:key.path`).

    Keys other than `layers` and `choice` are ignored (the search writes more).
    """
    return resolve_plan(load_plan_yaml(path)["layers"], layers, str(path))


def resolve_plan(plan: Any, layers: Sequence[LayerInfo], where: str = "plan") -> dict[str, QuantChoice]:
    """plan × layers → {layer name: QuantChoice} in the model's layer order: the one check
    of a plan against a model (plan files, `{layer: choice}` mappings, the cost model, the
    lowering, the report).

    `plan` maps layer names to a QuantChoice, a quantizer name (`uni4`) or a plan entry
    (`{choice: uni4, ...}`). One PlanError per kind of mistake, each naming `where:key.path`:

        not a mapping        <where>:layers: expected a mapping layer name -> {choice: ...}
        unknown layer        <where>:layers.<name>: no layer of that name in the model (layers: …)
        wrong entry type     <where>:layers.<name>: expected a quantizer name or {choice: ...}, got …
        entry without choice <where>:layers.<name>.choice: missing required key
        unknown quantizer    <where>:layers.<name>[.choice]: unknown quantizer '…': …
        missing layers       <where>:layers: no choice for layers: a, b
    """
    if not isinstance(plan, Mapping):
        raise PlanError(f"{where}:layers: expected a mapping layer name -> {{choice: ...}}")
    names = [layer.name for layer in layers]
    known = set(names)
    choices: dict[str, QuantChoice] = {}
    for name, entry in plan.items():
        if name not in known:
            listed = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
            raise PlanError(f"{where}:layers.{name}: no layer of that name in the model "
                            f"(layers: {listed})")
        key = f"layers.{name}"
        if isinstance(entry, Mapping):
            if "choice" not in entry:
                raise PlanError(f"{where}:{key}.choice: missing required key")
            entry, key = entry["choice"], f"{key}.choice"
        if isinstance(entry, QuantChoice):
            choices[name] = entry
            continue
        if not isinstance(entry, str):
            raise PlanError(f"{where}:{key}: expected a quantizer name (fp32, uni<b>, pot<b>) "
                            f"or {{choice: ...}}, got {type(entry).__name__}")
        try:
            choices[name] = parse_choice(entry)
        except PlanError as e:
            raise PlanError(f"{where}:{key}: {e}") from None
    missing = [n for n in names if n not in choices]
    if missing:
        raise PlanError(f"{where}:layers: no choice for layers: {', '.join(missing)}")
    return {n: choices[n] for n in names}


def write_plan(path: str | Path, doc: dict[str, Any]) -> None:
    """Write a plan document (adds the schema key); atomic (temp file + rename)."""
    from hqc.outdir import write_text_atomic

    body = {"schema": PLAN_SCHEMA, **{k: v for k, v in doc.items() if k != "schema"}}
    write_text_atomic(path, yaml.safe_dump(body, sort_keys=False, default_flow_style=None, allow_unicode=True))
