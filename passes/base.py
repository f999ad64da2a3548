"""The pass contract and the pass manager.

A pass: `name` (kebab-case), `run(graph, ctx) -> PassResult(graph, modified, stats)`.
Output depends only on the graph, `ctx.options`, `ctx.target` and `ctx.seed`; randomness
comes only from `ctx.rng` (a generator seeded from `ctx.seed`, fresh at every access);
passes keep no state between runs; running a pass twice equals running it once. The
manager checks the IR with `verify` after every pass and re-raises failures as
"pass X failed after [a, b, c]: <reason>".

An analysis (`register_analysis`, e.g. annotate-layers) reads a graph and never changes
it; `analysis(graph, name)` computes it once per graph and caches it until a pass run by
`run_passes` modifies that graph.
"""

from __future__ import annotations

import logging
import time
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from hqc.errors import HqcError, PassError
from hqc.ir import Graph, verify

log = logging.getLogger(__name__)


@dataclass
class Context:
    """What a pass may read besides the graph: options, target, seed, a seeded rng."""

    options: dict[str, Any] = field(default_factory=dict)
    target: Any = None
    seed: int = 0

    @property
    def rng(self) -> np.random.Generator:
        """A generator seeded from `seed`, fresh at every access (the same stream each time)."""
        return np.random.default_rng(self.seed)


@dataclass
class PassResult:
    graph: Graph
    modified: bool
    stats: dict[str, Any] = field(default_factory=dict)


class Pass(ABC):
    """A graph rewrite; subclasses set `name` and implement `run`."""

    name: ClassVar[str] = ""

    @abstractmethod
    def run(self, graph: Graph, ctx: Context) -> PassResult:
        """Rewrite `graph` (pre/postconditions in the pass module's docstring)."""


PASSES: dict[str, type[Pass]] = {}


def register(cls: type[Pass]) -> type[Pass]:
    if not cls.name or cls.name in PASSES:
        raise ValueError(f"pass name {cls.name!r} empty or registered twice")
    PASSES[cls.name] = cls
    return cls


ANALYSES: dict[str, Callable[[Graph], Any]] = {}
_CACHE: weakref.WeakKeyDictionary[Graph, dict[str, Any]] = weakref.WeakKeyDictionary()


def register_analysis(name: str) -> Callable[[Callable[[Graph], Any]], Callable[[Graph], Any]]:
    """Register `fn(graph) -> result` as the analysis `name` (see `analysis`)."""

    def deco(fn: Callable[[Graph], Any]) -> Callable[[Graph], Any]:
        if not name or name in ANALYSES:
            raise ValueError(f"analysis name {name!r} empty or registered twice")
        ANALYSES[name] = fn
        return fn

    return deco


def analysis(graph: Graph, name: str) -> Any:
    """The analysis `name` of `graph`, computed on first use and cached for this graph
    object until a pass run through `run_passes` modifies it."""
    cache = _CACHE.setdefault(graph, {})
    if name not in cache:
        if name not in ANALYSES:
            raise PassError(f"unknown analysis {name!r} (known: {', '.join(sorted(ANALYSES))})")
        cache[name] = ANALYSES[name](graph)
    return cache[name]


def invalidate(graph: Graph) -> None:
    """Drop the cached analyses of `graph` (after a change made outside `run_passes`)."""
    _CACHE.pop(graph, None)


def run_passes(
    graph: Graph, names: Iterable[str], ctx: Context | None = None
) -> tuple[Graph, list[dict[str, Any]]]:
    """Run passes in order; verify after each; returns the graph and per-pass records."""
    ctx = ctx or Context()
    done: list[str] = []
    records: list[dict[str, Any]] = []
    for name in names:
        if name not in PASSES:
            raise PassError(f"unknown pass {name!r} (known: {', '.join(sorted(PASSES))})")
        t0 = time.perf_counter()
        try:
            result = PASSES[name]().run(graph, ctx)
        except HqcError as exc:
            raise type(exc)(f"pass {name} failed after {done}: {exc}") from exc
        except Exception as exc:
            raise PassError(f"pass {name} failed after {done}: {type(exc).__name__}: {exc}") from exc
        problems = verify(result.graph)
        if problems:
            raise PassError(f"pass {name} left an invalid IR after {done}: {'; '.join(problems[:3])}")
        if result.modified or result.graph is not graph:
            invalidate(graph)
            invalidate(result.graph)
        graph = result.graph
        done.append(name)
        seconds = time.perf_counter() - t0
        records.append({"pass": name, "modified": result.modified, "seconds": seconds, **result.stats})
        log.info("pass %s: modified=%s %.3fs %s", name, result.modified, seconds, result.stats)
    return graph, records
