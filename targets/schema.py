"""Cost-table schema 1: strict YAML loader and dumper for hardware energy tables.

    YAML text --yaml.safe_load--> dict --parse_table--> Target --dump_table--> YAML text

A table declares its energy unit, the energy of int add/mult/shift and float add/mult
per listed bit width (optionally a compare; without one a compare costs an add of the
same width), the DRAM (and optionally SRAM) access energy, a citation for every number,
and how a width it does not list is derived. The full format is in
docs/targets.md. Every violation raises `TargetError("<file>:<key.path>: <what was
expected>")` on one line; nothing is coerced or defaulted silently.

Postcondition: `parse_table(yaml.safe_load(dump_table(t)), ...) == t` for every valid t.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from hqc.errors import TargetError
from hqc.yamlio import parse_yaml, read_yaml

SCHEMA_VERSION = 1

#: Energy units a table may declare, with their size in pJ.
PJ_PER_UNIT: dict[str, float] = {"fJ": 1e-3, "pJ": 1.0, "nJ": 1e3, "uJ": 1e6}

#: Required operations per number format; a table must list at least one width for each.
REQUIRED_OPS: dict[str, tuple[str, ...]] = {
    "int": ("add", "mult", "shift"),
    "float": ("add", "mult"),
}

#: Optional operations per number format. Without an entry, `Target.op_energy` prices a
#: b-bit compare as a b-bit add (a comparator is a subtractor whose sign is the result),
#: from the table's own cited add numbers.
OPTIONAL_OPS: dict[str, tuple[str, ...]] = {"int": ("compare",), "float": ("compare",)}

#: Operations without entries and the listed operation they are priced as.
FALLBACK_OPS: dict[str, str] = {"compare": "add"}

#: Rules for a width the table does not list (see `Target.op_energy`).
DERIVE_RULES: tuple[str, ...] = ("linear", "quadratic", "none")
_DERIVE_EXPONENT = {"linear": 1, "quadratic": 2}
DERIVE_OPS: tuple[str, ...] = ("add", "mult", "shift")
#: Optional derive rules; a missing one takes the rule of its FALLBACK_OPS operation.
OPTIONAL_DERIVE_OPS: tuple[str, ...] = ("compare",)

MEMORY_LEVELS: tuple[str, ...] = ("dram", "sram")

NumberFormat = Literal["int", "float"]

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_TOP_KEYS = ("schema", "name", "technology", "description", "units", "sources", "ops",
             "memory", "derive")
_TOP_REQUIRED = ("schema", "name", "technology", "units", "sources", "ops", "memory",
                 "derive")
_OP_KEYS = ("value", "source", "note")
_MEM_KEYS = ("value", "bits", "source", "capacity_bytes", "note")


@dataclass(frozen=True)
class OpEntry:
    """One table number: energy of an operation in the table's unit, with its citation key."""

    value: float
    source: str
    note: str | None = None


@dataclass(frozen=True)
class MemoryEntry:
    """Energy `value` (table unit) of one access of `bits` bits to a memory level."""

    value: float
    bits: int
    source: str
    capacity_bytes: int | None = None
    note: str | None = None


@dataclass(frozen=True)
class OpEnergy:
    """Energy of one operation at one width, in pJ; `anchor_bits` set when derived,
    `priced_as` when the table lists no such operation (a compare priced as an add)."""

    energy_pj: float
    number_format: str
    op: str
    bits: int
    anchor_bits: int | None = None
    rule: str | None = None
    priced_as: str | None = None

    @property
    def derived(self) -> bool:
        return self.anchor_bits is not None or self.priced_as is not None

    @property
    def key(self) -> str:
        """'int.mult.2', the key path of this number in a table."""
        return f"{self.number_format}.{self.op}.{self.bits}"

    def describe(self) -> str:
        if not self.derived:
            return self.key
        if self.priced_as is not None:
            via = f"{self.number_format}.{self.priced_as}.{self.bits}"
            if self.anchor_bits is not None:
                via += f", {self.rule} from {self.anchor_bits} bits"
            return f"{self.key} (as {via})"
        return f"{self.key} ({self.rule} from {self.anchor_bits} bits)"


@dataclass(frozen=True)
class Target:
    """A validated cost table (schema 1). Values are kept in the declared `energy_unit`."""

    name: str
    technology: str
    description: str
    energy_unit: str
    sources: dict[str, str]
    ops: dict[str, dict[str, dict[int, OpEntry]]]
    memory: dict[str, MemoryEntry]
    derive: dict[str, str]
    origin: str = field(default="<memory>", compare=False)

    @property
    def pj_per_unit(self) -> float:
        return PJ_PER_UNIT[self.energy_unit]

    def op_energy(self, number_format: NumberFormat, op: str, bits: int) -> OpEnergy:
        """Energy in pJ of one `op` on `bits`-bit operands, listed or derived.

        A width the table does not list is derived from the anchor: the listed width
        nearest to `bits` (on a tie, the larger one), scaled by (bits / anchor) for a
        `linear` rule and (bits / anchor)^2 for `quadratic`; with `none` it is an error.
        An optional operation the table does not list (compare) is priced as its
        FALLBACK_OPS operation at the same width (`priced_as` says so).
        """
        if op in FALLBACK_OPS and op not in self.ops.get(number_format, {}):
            via = self.op_energy(number_format, FALLBACK_OPS[op], bits)  # type: ignore[arg-type]
            return OpEnergy(via.energy_pj, number_format, op, bits, via.anchor_bits, via.rule,
                            priced_as=FALLBACK_OPS[op])
        try:
            widths = self.ops[number_format][op]
        except KeyError:
            raise TargetError(
                f"{self.origin}:ops.{number_format}.{op}: the table has no such operation"
            ) from None
        if bits in widths:
            return OpEnergy(widths[bits].value * self.pj_per_unit, number_format, op, bits)
        rule = self.derive.get(op) or self.derive[FALLBACK_OPS[op]]
        if rule == "none":
            listed = ", ".join(str(w) for w in sorted(widths))
            raise TargetError(
                f"{self.origin}:ops.{number_format}.{op}: no {bits}-bit entry and "
                f"derive.{op} is none (listed widths: {listed})"
            )
        anchor = min(widths, key=lambda w: (abs(w - bits), -w))
        scale = (bits / anchor) ** _DERIVE_EXPONENT[rule]
        energy_pj = widths[anchor].value * self.pj_per_unit * scale
        return OpEnergy(energy_pj, number_format, op, bits, anchor_bits=anchor, rule=rule)

    def memory_energy_pj_per_bit(self, level: str = "dram") -> float:
        """Energy in pJ to read one bit from a memory level (access energy / access bits)."""
        if level not in self.memory:
            raise TargetError(f"{self.origin}:memory.{level}: the table has no such level")
        entry = self.memory[level]
        return entry.value * self.pj_per_unit / entry.bits

    def to_dict(self) -> dict[str, Any]:
        """The table as plain YAML-ready data (the inverse of `parse_table`)."""
        ops: dict[str, Any] = {}
        for fmt, by_op in self.ops.items():
            ops[fmt] = {}
            for op, by_bits in by_op.items():
                ops[fmt][op] = {b: _entry_dict(e) for b, e in sorted(by_bits.items())}
        memory: dict[str, Any] = {}
        for level, m in self.memory.items():
            d: dict[str, Any] = {"value": m.value, "bits": m.bits, "source": m.source}
            if m.capacity_bytes is not None:
                d["capacity_bytes"] = m.capacity_bytes
            if m.note is not None:
                d["note"] = m.note
            memory[level] = d
        return {
            "schema": SCHEMA_VERSION,
            "name": self.name,
            "technology": self.technology,
            "description": self.description,
            "units": {"energy": self.energy_unit},
            "sources": dict(self.sources),
            "ops": ops,
            "memory": memory,
            "derive": dict(self.derive),
        }


def _entry_dict(e: OpEntry) -> dict[str, Any]:
    d: dict[str, Any] = {"value": e.value, "source": e.source}
    if e.note is not None:
        d["note"] = e.note
    return d


# --------------------------------------------------------------------------- loading


def load_table(path: str | Path) -> Target:
    """Read and validate a cost table file; errors name `path:key.path` (reading and YAML
    errors: hqc.yamlio.read_yaml, the ladder every YAML file hqc reads goes through)."""
    return parse_table(read_yaml(path, TargetError, "cost table"), origin=str(path))


def loads_table(text: str, origin: str = "<string>") -> Target:
    """Validate a cost table given as YAML text; `origin` names it in error messages."""
    return parse_table(parse_yaml(text, origin, TargetError), origin=origin)


def dump_table(target: Target) -> str:
    """The table as YAML text; `loads_table(dump_table(t)) == t`."""
    return yaml.safe_dump(target.to_dict(), sort_keys=False, allow_unicode=True,
                          default_flow_style=False, width=100)


def parse_table(data: Any, origin: str = "<memory>") -> Target:
    """Validate already-loaded table data (a mapping) and build a `Target`."""
    v = _Validator(origin)
    top = v.mapping(data, "")
    # The version first: a table of another version may legitimately have other keys.
    if "schema" not in top:
        v.fail("schema", "missing required key")
    schema = top["schema"]
    if type(schema) is not int or schema != SCHEMA_VERSION:
        v.fail("schema", f"unsupported schema version {_show(schema)}; expected {SCHEMA_VERSION}")
    v.keys(top, "", allowed=_TOP_KEYS, required=_TOP_REQUIRED)
    name = v.string(top["name"], "name")
    if not _NAME_RE.match(name):
        v.fail("name", f"expected letters, digits, '_', '-' or '.', got {_show(name)}")
    technology = v.string(top["technology"], "technology")
    description = v.string(top.get("description", ""), "description", allow_empty=True)

    units = v.mapping(top["units"], "units")
    v.keys(units, "units", allowed=("energy",), required=("energy",))
    unit = units["energy"]
    if unit not in PJ_PER_UNIT:
        v.fail("units.energy", f"expected one of {', '.join(PJ_PER_UNIT)}, got {_show(unit)}")

    sources_raw = v.mapping(top["sources"], "sources")
    if not sources_raw:
        v.fail("sources", "expected at least one citation (key: citation text)")
    sources: dict[str, str] = {}
    for key, text in sources_raw.items():
        if not isinstance(key, str) or not key:
            v.fail(f"sources.{key}", "expected a citation key (a non-empty string)")
        sources[key] = v.string(text, f"sources.{key}")

    ops_raw = v.mapping(top["ops"], "ops")
    v.keys(ops_raw, "ops", allowed=tuple(REQUIRED_OPS), required=tuple(REQUIRED_OPS))
    ops: dict[str, dict[str, dict[int, OpEntry]]] = {}
    for fmt, op_names in REQUIRED_OPS.items():
        by_op = v.mapping(ops_raw[fmt], f"ops.{fmt}")
        v.keys(by_op, f"ops.{fmt}", allowed=op_names + OPTIONAL_OPS[fmt], required=op_names)
        ops[fmt] = {}
        for op in op_names + tuple(o for o in OPTIONAL_OPS[fmt] if o in by_op):
            path = f"ops.{fmt}.{op}"
            by_bits = v.mapping(by_op[op], path)
            if not by_bits:
                v.fail(path, "expected at least one bit width (e.g. 8: {value: ..., source: ...})")
            entries: dict[int, OpEntry] = {}
            for bits in sorted(by_bits, key=_sort_key):
                epath = f"{path}.{bits}"
                if type(bits) is not int or bits < 1:
                    v.fail(epath, f"expected a positive integer bit width as key, got {_show(bits)}")
                e = v.mapping(by_bits[bits], epath)
                v.keys(e, epath, allowed=_OP_KEYS, required=("value", "source"))
                entries[bits] = OpEntry(
                    value=v.number(e["value"], f"{epath}.value"),
                    source=v.source(e["source"], f"{epath}.source", sources),
                    note=v.optional_string(e, "note", epath),
                )
            ops[fmt][op] = entries

    memory_raw = v.mapping(top["memory"], "memory")
    v.keys(memory_raw, "memory", allowed=MEMORY_LEVELS, required=("dram",))
    memory: dict[str, MemoryEntry] = {}
    for level in MEMORY_LEVELS:
        if level not in memory_raw:
            continue
        path = f"memory.{level}"
        m = v.mapping(memory_raw[level], path)
        v.keys(m, path, allowed=_MEM_KEYS, required=("value", "bits", "source"))
        capacity = m.get("capacity_bytes")
        if capacity is not None:
            capacity = v.positive_int(capacity, f"{path}.capacity_bytes")
        memory[level] = MemoryEntry(
            value=v.number(m["value"], f"{path}.value"),
            bits=v.positive_int(m["bits"], f"{path}.bits"),
            source=v.source(m["source"], f"{path}.source", sources),
            capacity_bytes=capacity,
            note=v.optional_string(m, "note", path),
        )

    derive_raw = v.mapping(top["derive"], "derive")
    v.keys(derive_raw, "derive", allowed=DERIVE_OPS + OPTIONAL_DERIVE_OPS, required=DERIVE_OPS)
    derive: dict[str, str] = {}
    for op in DERIVE_OPS + tuple(o for o in OPTIONAL_DERIVE_OPS if o in derive_raw):
        rule = derive_raw[op]
        if rule not in DERIVE_RULES:
            v.fail(f"derive.{op}", f"expected one of {', '.join(DERIVE_RULES)}, got {_show(rule)}")
        derive[op] = rule

    return Target(name=name, technology=technology, description=description, energy_unit=unit,
                  sources=sources, ops=ops, memory=memory, derive=derive, origin=origin)


def _sort_key(k: Any) -> tuple[int, Any]:
    return (0, k) if type(k) is int else (1, str(k))


def _one_line(s: str) -> str:
    return " ".join(str(s).split())


def _show(value: Any) -> str:
    s = _one_line(repr(value))
    return s if len(s) <= 60 else s[:57] + "..."


class _Validator:
    """Checks one table; every failure is a one-line `TargetError` naming origin:key.path."""

    def __init__(self, origin: str) -> None:
        self.origin = origin

    def fail(self, path: str, expected: str) -> None:
        raise TargetError(f"{self.origin}:{path or '<top>'}: {expected}")

    def mapping(self, value: Any, path: str) -> Mapping[Any, Any]:
        if not isinstance(value, Mapping):
            what = "the file is empty" if value is None and not path else f"got {_show(value)}"
            self.fail(path, f"expected a mapping, {what}")
        return value

    def keys(self, m: Mapping[Any, Any], path: str, allowed: tuple[str, ...],
             required: tuple[str, ...]) -> None:
        prefix = f"{path}." if path else ""
        for key in m:
            if key not in allowed:
                self.fail(f"{prefix}{key}", f"unknown key (expected one of {', '.join(allowed)})")
        for key in required:
            if key not in m:
                self.fail(f"{prefix}{key}", "missing required key")

    def string(self, value: Any, path: str, allow_empty: bool = False) -> str:
        if not isinstance(value, str) or (not allow_empty and not value.strip()):
            self.fail(path, f"expected a non-empty string, got {_show(value)}")
        return value

    def optional_string(self, m: Mapping[Any, Any], key: str, path: str) -> str | None:
        if key not in m:
            return None
        return self.string(m[key], f"{path}.{key}")

    def number(self, value: Any, path: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(path, f"expected a number >= 0, got {_show(value)}")
        if not math.isfinite(value) or value < 0:
            self.fail(path, f"expected a finite number >= 0, got {_show(value)}")
        return float(value)

    def positive_int(self, value: Any, path: str) -> int:
        if type(value) is not int or value < 1:
            self.fail(path, f"expected a positive integer, got {_show(value)}")
        return value

    def source(self, value: Any, path: str, sources: Mapping[str, str]) -> str:
        if not isinstance(value, str) or not value:
            self.fail(path, f"expected a citation key from sources, got {_show(value)}")
        if value not in sources:
            known = ", ".join(sources)
            self.fail(path, f"unknown source {value!r} (keys defined in sources: {known})")
        return value
