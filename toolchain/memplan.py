"""Offsets of the C model's working buffers in one arena, by liveness.

Every buffer the kernels write (an activation tensor, a neuron's membrane, a kernel's
scratch) is live over an interval of steps of the call sequence: from the step that
writes it to the last step that reads it, both included (a step never writes into a
buffer it reads). Two buffers may share bytes when their intervals are disjoint.

`plan` places them greedily by size, as TensorFlow Lite Micro's GreedyMemoryPlanner
does: largest first, each at the lowest aligned offset whose bytes no buffer already
placed with an overlapping interval uses. The arena is the end of the highest buffer.
`peak_live_bytes` is the lower bound no placement can beat: the most bytes live at one
step (each buffer rounded up to the alignment).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Buffer", "MemoryPlan", "check_plan", "plan"]


@dataclass(frozen=True)
class Buffer:
    """One buffer: `size` bytes, live from step `first` to step `last` (inclusive)."""

    name: str
    size: int
    first: int
    last: int

    def overlaps(self, other: Buffer) -> bool:
        """Live at a common step."""
        return self.first <= other.last and other.first <= self.last


@dataclass
class MemoryPlan:
    """Byte offset of every buffer in the arena, the arena's size and the peak-live bound."""

    offsets: dict[str, int]
    arena_bytes: int
    peak_live_bytes: int


def _up(n: int, align: int) -> int:
    return -(-n // align) * align


def plan(buffers: list[Buffer], align: int = 8) -> MemoryPlan:
    """Greedy-by-size placement of `buffers` (names unique, sizes ≥ 0) → MemoryPlan.

    Post: offsets are multiples of `align`; any two buffers live at a common step occupy
    disjoint byte ranges (`check_plan`); peak_live_bytes ≤ arena_bytes."""
    if len({b.name for b in buffers}) != len(buffers):
        raise ValueError("buffer names are not unique")
    placed: list[tuple[int, Buffer]] = []
    offsets: dict[str, int] = {}
    for b in sorted(buffers, key=lambda b: (-_up(b.size, align), b.first, b.name)):
        size = _up(b.size, align)
        taken = sorted((off, off + _up(p.size, align)) for off, p in placed if p.overlaps(b) and p.size)
        off = 0
        for lo, hi in taken:
            if off + size <= lo:
                break
            off = max(off, hi)
        offsets[b.name] = off
        placed.append((off, b))
    arena = max((off + _up(b.size, align) for off, b in placed), default=0)
    steps = sorted({b.first for b in buffers})
    peak = max((sum(_up(b.size, align) for b in buffers if b.first <= s <= b.last) for s in steps), default=0)
    return MemoryPlan(offsets, arena, peak)


def check_plan(buffers: list[Buffer], mp: MemoryPlan, align: int = 8) -> None:
    """Raise ValueError when two buffers live at a common step share a byte, an offset is
    misaligned or a buffer ends past the arena."""
    for b in buffers:
        off = mp.offsets[b.name]
        if off % align or off + b.size > mp.arena_bytes:
            raise ValueError(f"buffer {b.name}: offset {off} misaligned or past the arena")
    for i, a in enumerate(buffers):
        for b in buffers[i + 1:]:
            if a.size and b.size and a.overlaps(b):
                oa, ob = mp.offsets[a.name], mp.offsets[b.name]
                if oa < ob + b.size and ob < oa + a.size:
                    raise ValueError(f"buffers {a.name} and {b.name} are live together and overlap")
