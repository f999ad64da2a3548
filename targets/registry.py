"""Find cost tables: built-in by name, a user's file by path, or a package's entry point.

    spec --is a path?--> load_table(path)
         --built-in?--> <package>/targets/<spec>.yaml
         --entry point?--> group `hqc.targets`, name == spec

A spec is a path when it contains a path separator or ends in .yaml/.yml. Built-in
names win over an entry point of the same name (a warning is logged). An entry point's
value is either `package.module:file.yaml` (a YAML resource inside that package) or
`package.module:attr` where attr is a callable returning (or is itself) a path, a
mapping of table data, or an importlib.resources Traversable. The table's `name` must
equal the built-in or entry-point name it was found by.
"""

from __future__ import annotations

import importlib
import importlib.resources
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any, Literal

from hqc.errors import TargetError
from hqc.targets.schema import Target, load_table, loads_table, parse_table

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "hqc.targets"
_YAML_SUFFIXES = (".yaml", ".yml")

Origin = Literal["builtin", "entry point"]


@dataclass(frozen=True)
class TargetInfo:
    """A discoverable table: its name, where it comes from and its location."""

    name: str
    origin: Origin
    location: str
    shadowed: bool = False


def is_path_spec(spec: str) -> bool:
    """True when `spec` names a file rather than a registered table."""
    return (
        "/" in spec
        or os.sep in spec
        or (os.altsep is not None and os.altsep in spec)
        or spec.lower().endswith(_YAML_SUFFIXES)
    )


def _builtin_files() -> dict[str, Any]:
    root = importlib.resources.files("hqc.targets")
    found = {}
    for entry in root.iterdir():
        if entry.is_file() and entry.name.endswith(".yaml"):
            found[entry.name[: -len(".yaml")]] = entry
    return dict(sorted(found.items()))


def _entry_points() -> list[EntryPoint]:
    return sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: (ep.name, ep.value))


def _dist_name(ep: EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return dist.metadata["Name"] if dist is not None else "?"


def list_targets() -> list[TargetInfo]:
    """All tables found by name: built-ins first, then entry points, each sorted by name."""
    builtins = _builtin_files()
    infos = [TargetInfo(name, "builtin", str(res)) for name, res in builtins.items()]
    for ep in _entry_points():
        infos.append(TargetInfo(ep.name, "entry point", f"{ep.value} ({_dist_name(ep)})",
                                shadowed=ep.name in builtins))
    return infos


def load_target(spec: str) -> Target:
    """The cost table named by `spec`: a path, a built-in name or an entry-point name."""
    spec = str(spec)
    if is_path_spec(spec):
        return load_table(spec)
    builtins = _builtin_files()
    eps = [ep for ep in _entry_points() if ep.name == spec]
    if spec in builtins:
        if eps:
            log.warning("target %r: built-in table shadows entry point(s) %s", spec,
                        ", ".join(f"{ep.value} ({_dist_name(ep)})" for ep in eps))
        res = builtins[spec]
        return _check_name(loads_table(res.read_text(encoding="utf-8"), origin=str(res)), spec)
    if len(eps) > 1:
        providers = ", ".join(f"{ep.value} ({_dist_name(ep)})" for ep in eps)
        raise TargetError(f"target {spec!r} is provided by several packages: {providers}")
    if eps:
        return _check_name(_load_entry_point(eps[0]), spec)
    known = ", ".join(info.name for info in list_targets() if not info.shadowed) or "none"
    raise TargetError(
        f"unknown target {spec!r}: known targets are {known} "
        "(or give a path to a .yaml table)"
    )


def _check_name(target: Target, spec: str) -> Target:
    if target.name != spec:
        raise TargetError(
            f"{target.origin}:name: table is named {target.name!r} but was found as {spec!r}"
        )
    return target


def _load_entry_point(ep: EntryPoint) -> Target:
    where = f"entry point {ep.name!r} = {ep.value!r} ({_dist_name(ep)})"
    module_name, _, attr = ep.value.partition(":")
    module_name, attr = module_name.strip(), attr.strip()
    if not module_name or not attr:
        raise TargetError(f"{where}: expected 'package.module:file.yaml' or 'package.module:callable'")
    if attr.lower().endswith(_YAML_SUFFIXES):
        try:
            res = importlib.resources.files(module_name).joinpath(attr)
            text = res.read_text(encoding="utf-8")
        except (ImportError, OSError, TypeError) as e:
            raise TargetError(f"{where}: cannot read the YAML resource ({e})") from None
        return loads_table(text, origin=f"{module_name}:{attr}")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as e:
        raise TargetError(f"{where}: cannot load ({e})") from None
    if callable(obj):
        obj = obj()
    if isinstance(obj, (str, os.PathLike)):
        return load_table(Path(obj))
    if isinstance(obj, Mapping):
        return parse_table(obj, origin=ep.value)
    if hasattr(obj, "read_text") and hasattr(obj, "name"):
        return loads_table(obj.read_text(encoding="utf-8"), origin=f"{ep.value} -> {obj.name}")
    raise TargetError(
        f"{where}: expected a path, a mapping or a resource, got {type(obj).__name__}"
    )
