"""How hqc writes quantities for people: one formatter per kind, used by every command
(`hqc cost`, `hqc inspect`, `hqc lower`, `hqc verify`, `hqc targets show`) and by the
report (markdown and HTML), so the same quantity reads the same everywhere.

    energy   pJ → '12.3 µJ'        (pJ, nJ, µJ, mJ, J; SI prefixes, "µ" the micro sign)
    storage  bits/bytes → '36.9 kB' (decimal SI units: B, kB, MB, GB — 1 kB = 1000 B)
    count    n → '1.23M' (compact) or '1,234,567' (format_int, thousands separators)
    ratio    plan/fp32 → '0.036× (27.8× less)'
    percent  fraction → '12.3 %'
    time     seconds → '42.1 s', '12 min 5 s', '1 h 30 min'

Three significant digits throughout; None is 'n/a'. The JSON documents keep raw numbers
(pJ, bytes) and never go through here.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence


def format_energy(energy_pj: float | None) -> str:
    """'12.3 µJ' for an energy in pJ (pJ, nJ, µJ, mJ, J); 'n/a' for None."""
    if energy_pj is None:
        return "n/a"
    for unit, scale in (("J", 1e12), ("mJ", 1e9), ("µJ", 1e6), ("nJ", 1e3)):
        if abs(energy_pj) >= scale:
            return f"{energy_pj / scale:.3g} {unit}"
    return f"{energy_pj:.3g} pJ"


def format_bits(bits: float | None) -> str:
    """'36.9 kB' for a storage size given in bits (decimal units: B, kB, MB, GB)."""
    return "n/a" if bits is None else format_bytes(bits / 8)


def format_bytes(size: float) -> str:
    """'36.9 kB' for a size in bytes (decimal units, so log-scale ticks are round)."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(size) >= scale:
            return f"{size / scale:.3g} {unit}"
    return f"{size:.3g} B"


def format_seconds(seconds: float | None) -> str:
    """'42.1 s', '12 min 5 s' or '1 h 30 min'."""
    if seconds is None:
        return "n/a"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {sec} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def format_count(n: float) -> str:
    """'1.23M' for a count (k, M, G; three significant digits)."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.3g}{unit}"
    return f"{n:g}"


def format_int(n: int) -> str:
    """'1,234,567': an exact count with thousands separators."""
    return f"{int(n):,}"


def format_ratio(ratio: float | None) -> str:
    """'0.036× (27.8× less)' for plan / fp32."""
    if ratio is None:
        return "n/a"
    if ratio == 0:
        return "0×"
    if ratio < 1:
        return f"{ratio:.3g}× ({1 / ratio:.3g}× less)"
    return f"{ratio:.3g}×"


def format_pct(frac: float | None, digits: int = 1) -> str:
    """'12.3 %' for a fraction."""
    return "n/a" if frac is None else f"{100 * frac:.{digits}f} %"


def format_accuracy(acc: float | None) -> str:
    """'97.25 %' for an accuracy given as a fraction."""
    return format_pct(acc, 2)


def table(rows: Sequence[Sequence[str]], right: Collection[int] = ()) -> list[str]:
    """Rows of cells → aligned text lines, a dashed rule under the header (rows[0]);
    the columns in `right` right-aligned."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for k, r in enumerate(rows):
        cells = [c.rjust(w) if i in right else c.ljust(w)
                 for i, (c, w) in enumerate(zip(r, widths, strict=True))]
        lines.append("  ".join(cells).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return lines
