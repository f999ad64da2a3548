"""Hardware targets: cost tables (YAML, schema 1), their discovery, and the cost model.

See docs/targets.md for the table format, the entry-point group and the modelling rules.
"""

from hqc.targets.cost import (
    ACCUMULATOR_BITS,
    CostTotals,
    LayerCost,
    ModelCost,
    expected_energy_terms,
    fp32_energy_pj,
    layer_cost,
    mac_energy_pj,
    model_cost,
    resolve_plan,
    storage_bits,
)
from hqc.targets.registry import (
    ENTRY_POINT_GROUP,
    TargetInfo,
    is_path_spec,
    list_targets,
    load_target,
)
from hqc.targets.schema import (
    SCHEMA_VERSION,
    MemoryEntry,
    OpEnergy,
    OpEntry,
    Target,
    dump_table,
    load_table,
    loads_table,
    parse_table,
)

__all__ = [
    "ACCUMULATOR_BITS",
    "ENTRY_POINT_GROUP",
    "SCHEMA_VERSION",
    "CostTotals",
    "LayerCost",
    "MemoryEntry",
    "ModelCost",
    "OpEnergy",
    "OpEntry",
    "Target",
    "TargetInfo",
    "dump_table",
    "expected_energy_terms",
    "fp32_energy_pj",
    "is_path_spec",
    "layer_cost",
    "list_targets",
    "load_table",
    "load_target",
    "loads_table",
    "mac_energy_pj",
    "model_cost",
    "parse_table",
    "resolve_plan",
    "storage_bits",
]
