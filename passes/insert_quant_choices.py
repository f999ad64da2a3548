"""insert-quant-choices: attach each weight layer's candidate quantizers to its IR nodes.

Rewrite (attributes untouched, metadata only):

    node(Conv|Gemm|MatMul of layer L).meta["hqc.candidates"] := "fp32,uni4,uni2,pot4,pot2"

for every node of every weight layer found by annotate-layers. The candidate set of a
layer comes from the search-space config (`ctx.options["search_space"]`: a YAML path, a
mapping, a `SearchSpace`, or None for the paper's five choices `DEFAULT_CHOICES`).

Search-space config (YAML, every key optional):

    choices: [fp32, uni4, uni2, pot4, pot2]   # the base set of every layer (default: these)
    add: [uni8, pot3]                         # appended to the base set
    layers:                                   # by layer-name pattern (fnmatch), in order;
      sps.proj_conv: [uni4, uni8]             #   a list: exactly these choices
      head: uni4                              #   a string: pin to one choice
      "blocks.*.attn.*":                      #   a mapping: refine the current set
        exclude: [pot2]                       #     drop these
        min_bits: 4                           #     drop choices with fewer bits (fp32 = 32)
        choices: [...]                        #     (optional) start from this set

Rules apply in file order; a later pattern refines the result of an earlier one. An
unknown quantizer, a pattern that matches no layer, an unknown key or an empty candidate
set is a `PlanError` naming `file:key`.

Pre: a graph after the frontend (canonicalize, recognize-neurons). Post: every node of
every weight layer carries "hqc.candidates" (comma-separated choice names in order).
Idempotent: a second run with the same config changes nothing and reports
modified=False. `candidates_of(graph, layers)` reads the sets back.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hqc.choices import DEFAULT_CHOICES, QuantChoice, parse_choice
from hqc.errors import PlanError
from hqc.ir import Graph
from hqc.layers import LayerInfo
from hqc.passes import annotate_layers as _annotate  # noqa: F401  (registers the analysis)
from hqc.passes.base import Context, Pass, PassResult, analysis, register
from hqc.yamlio import read_yaml

log = logging.getLogger(__name__)

META_KEY = "hqc.candidates"
_TOP_KEYS = ("choices", "add", "layers")
_RULE_KEYS = ("choices", "exclude", "min_bits")


@dataclass(frozen=True)
class LayerRule:
    """One `layers:` entry: a pattern and how it changes the matching layers' sets."""

    pattern: str
    key: str  # where it came from, "layers.<pattern>", for messages
    choices: tuple[QuantChoice, ...] | None = None
    exclude: tuple[QuantChoice, ...] = ()
    min_bits: int | None = None


@dataclass(frozen=True)
class SearchSpace:
    """A parsed search-space config; `source` names the file in error messages."""

    base: tuple[QuantChoice, ...] = field(default_factory=lambda: tuple(parse_choice(c) for c in DEFAULT_CHOICES))
    rules: tuple[LayerRule, ...] = ()
    source: str = "<search space>"


def _unique(choices: Sequence[QuantChoice]) -> tuple[QuantChoice, ...]:
    return tuple(dict.fromkeys(choices))


def _choice_list(value: Any, where: str) -> tuple[QuantChoice, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        raise PlanError(f"{where}: expected a quantizer name or a list of them, got {value!r}")
    out = []
    for i, item in enumerate(items):
        try:
            out.append(parse_choice(item))
        except PlanError as e:
            raise PlanError(f"{where}[{i}]: {e}") from None
    return _unique(out)


def parse_search_space(data: Any, source: str = "<search space>") -> SearchSpace:
    """Validate a search-space document (the YAML's mapping) into a `SearchSpace`."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise PlanError(f"{source}: expected a mapping with keys {', '.join(_TOP_KEYS)}")
    for k in data:
        if k not in _TOP_KEYS:
            raise PlanError(f"{source}:{k}: unknown key (expected one of {', '.join(_TOP_KEYS)})")
    base = tuple(parse_choice(c) for c in DEFAULT_CHOICES)
    if "choices" in data:
        base = _choice_list(data["choices"], f"{source}:choices")
    if "add" in data:
        base = _unique(base + _choice_list(data["add"], f"{source}:add"))
    if not base:
        raise PlanError(f"{source}:choices: the candidate set is empty")
    rules = []
    layers = data.get("layers") or {}
    if not isinstance(layers, Mapping):
        raise PlanError(f"{source}:layers: expected a mapping layer-name pattern -> choices")
    for pattern, spec in layers.items():
        key = f"layers.{pattern}"
        where = f"{source}:{key}"
        if isinstance(spec, (str, list)):
            rules.append(LayerRule(str(pattern), key, choices=_choice_list(spec, where)))
            continue
        if not isinstance(spec, Mapping):
            raise PlanError(f"{where}: expected a list of choices, a choice, or a mapping with "
                            f"{', '.join(_RULE_KEYS)}")
        for k in spec:
            if k not in _RULE_KEYS:
                raise PlanError(f"{where}.{k}: unknown key (expected one of {', '.join(_RULE_KEYS)})")
        min_bits = spec.get("min_bits")
        if min_bits is not None and (isinstance(min_bits, bool) or not isinstance(min_bits, int) or min_bits < 1):
            raise PlanError(f"{where}.min_bits: expected a positive integer, got {min_bits!r}")
        rules.append(LayerRule(
            str(pattern), key,
            choices=_choice_list(spec["choices"], f"{where}.choices") if "choices" in spec else None,
            exclude=_choice_list(spec["exclude"], f"{where}.exclude") if "exclude" in spec else (),
            min_bits=min_bits,
        ))
    return SearchSpace(base, tuple(rules), source)


def load_search_space(path: str | Path) -> SearchSpace:
    """Read and validate a search-space YAML file."""
    data = read_yaml(path, PlanError, "search space")
    return parse_search_space(data, str(path))


def as_search_space(spec: SearchSpace | Mapping | str | Path | None) -> SearchSpace:
    """None → the default space; a path → the file; a mapping → parsed in memory."""
    if spec is None:
        return SearchSpace()
    if isinstance(spec, SearchSpace):
        return spec
    if isinstance(spec, Mapping):
        return parse_search_space(spec)
    return load_search_space(spec)


def resolve_candidates(space: SearchSpace, layers: Sequence[LayerInfo]) -> dict[str, tuple[QuantChoice, ...]]:
    """Candidate set of every layer under `space` (rules in order); PlanError on a pattern
    matching no layer or an empty result."""
    out = {layer.name: space.base for layer in layers}
    for rule in space.rules:
        hits = [layer.name for layer in layers if fnmatch.fnmatchcase(layer.name, rule.pattern)]
        if not hits:
            listed = ", ".join(layer.name for layer in layers[:8]) + (", ..." if len(layers) > 8 else "")
            raise PlanError(f"{space.source}:{rule.key}: pattern matches no layer (layers: {listed})")
        for name in hits:
            cands = rule.choices if rule.choices is not None else out[name]
            cands = tuple(c for c in cands if c not in rule.exclude)
            if rule.min_bits is not None:
                cands = tuple(c for c in cands if c.bits >= rule.min_bits)
            if not cands:
                raise PlanError(f"{space.source}:{rule.key}: leaves layer {name!r} with no candidate quantizer")
            out[name] = cands
    return out


def candidates_of(graph: Graph, layers: Sequence[LayerInfo]) -> dict[str, tuple[QuantChoice, ...]]:
    """Read back what the pass attached: {layer name: candidates}. PlanError if a layer has
    none (the pass has not run)."""
    out = {}
    for layer in layers:
        text = graph.node(layer.nodes[0]).meta.get(META_KEY) if layer.nodes else None
        if not text:
            raise PlanError(f"layer {layer.name!r} has no candidate quantizers (run insert-quant-choices)")
        out[layer.name] = tuple(parse_choice(c) for c in text.split(","))
    return out


@register
class InsertQuantChoices(Pass):
    """See the module docstring."""

    name = "insert-quant-choices"

    def run(self, graph: Graph, ctx: Context) -> PassResult:
        space = as_search_space(ctx.options.get("search_space"))
        layers = analysis(graph, "annotate-layers")
        cands = resolve_candidates(space, layers)
        changed = 0
        for layer in layers:
            text = ",".join(c.name for c in cands[layer.name])
            for nid in layer.nodes:
                node = graph.node(nid)
                if node.meta.get(META_KEY) != text:
                    node.meta[META_KEY] = text
                    changed += 1
        sizes = sorted({len(c) for c in cands.values()})
        log.debug("insert-quant-choices: %d layers, set sizes %s", len(layers), sizes)
        return PassResult(graph, changed > 0, {"layers": len(layers), "nodes_changed": changed})
