"""Inline SVG charts for report.html, generated as text (no plotting library).

    (categories, series, scale) --hbar_chart--> "<svg ...>...</svg>"

Why text SVG: it renders offline in any browser, needs no dependency, and is byte-stable
(every coordinate is formatted with a fixed number of decimals), so two reports of the
same inputs are identical and a changed plan shows as a readable diff. Every chart has a
legend and axis labels with units; every piece of text is escaped with `esc`. Charts are
inline in an HTML5 document, so no `xmlns` (and no URL at all) is written.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

FONT_PX = 12
CHAR_PX = 0.6 * FONT_PX  # average advance of a sans-serif character, for layout only
INK = "#1f2328"
MUTED = "#57606a"
GRID = "#d8dee4"
BAND = "#f6f8fa"

#: Colours of the quantizer candidates (others get PALETTE colours in order).
CANDIDATE_COLOURS: dict[str, str] = {
    "fp32": "#4d4d4d", "uni8": "#08306b", "uni6": "#08519c", "uni5": "#2171b5",
    "uni4": "#1f77b4", "uni3": "#4292c6", "uni2": "#6baed6",
    "pot5": "#67000d", "pot4": "#c0392b", "pot3": "#e4572e", "pot2": "#f28e2b",
}
GROUP_COLOURS: dict[str, str] = {
    "tokenizer": "#8e6bbf", "attention": "#1f77b4", "mlp": "#2ca02c", "head": "#e8710a",
    "other": "#7f7f7f",
}
PALETTE = ("#17becf", "#bcbd22", "#e377c2", "#8c564b", "#9467bd", "#7f7f7f", "#d62728")


def esc(text: object) -> str:
    """HTML/SVG text or attribute value: escaped, control characters replaced."""
    s = "".join(c if c.isprintable() or c == " " else "\N{REPLACEMENT CHARACTER}"
                for c in str(text))
    return html.escape(s, quote=True)


def fit(text: str, px: float, font_px: float = FONT_PX) -> str:
    """`text` cut (with …) to about `px` pixels wide."""
    n = max(int(px / (0.6 * font_px)), 2)
    return text if len(text) <= n else text[: n - 1] + "…"


def candidate_colour(name: str, order: Sequence[str] = ()) -> str:
    """Fixed colour of a quantizer; unknown names get palette colours by their index."""
    if name in CANDIDATE_COLOURS:
        return CANDIDATE_COLOURS[name]
    extra = [n for n in order if n not in CANDIDATE_COLOURS]
    i = extra.index(name) if name in extra else 0
    return PALETTE[i % len(PALETTE)]


def _f(x: float) -> str:
    return f"{x:.1f}"


def _text(x: float, y: float, s: str, *, anchor: str = "start", size: float = FONT_PX,
          fill: str = INK, weight: str | None = None, extra: str = "") -> str:
    w = f' font-weight="{weight}"' if weight else ""
    return (f'<text x="{_f(x)}" y="{_f(y)}" text-anchor="{anchor}" font-size="{size:g}" '
            f'fill="{fill}"{w}{extra}>{esc(s)}</text>')


def _open(chart: str, width: float, height: float, label: str) -> str:
    return (f'<svg class="chart" data-chart="{esc(chart)}" width="{_f(width)}" '
            f'height="{_f(height)}" viewBox="0 0 {_f(width)} {_f(height)}" role="img" '
            f'aria-label="{esc(label)}" font-family="inherit">'
            f"<title>{esc(label)}</title>")


@dataclass(frozen=True)
class LegendItem:
    """One legend entry: a filled box, or a line (thick when `bold`)."""

    label: str
    colour: str
    kind: str = "box"
    bold: bool = False
    opacity: float = 1.0


def legend(items: Sequence[LegendItem], x: float, y: float, max_width: float) -> tuple[str, float]:
    """Legend entries laid out left to right, wrapping; returns (svg, height used)."""
    parts, cx, cy, line_h = ['<g class="legend">'], x, y, 18.0
    for it in items:
        w = 18 + len(it.label) * CHAR_PX + 18
        if cx > x and cx + w > x + max_width:
            cx, cy = x, cy + line_h
        if it.kind == "line":
            sw = 3.5 if it.bold else 2
            parts.append(f'<line x1="{_f(cx)}" y1="{_f(cy + 7)}" x2="{_f(cx + 14)}" '
                         f'y2="{_f(cy + 7)}" stroke="{it.colour}" stroke-width="{sw:g}"/>')
        else:
            parts.append(f'<rect x="{_f(cx)}" y="{_f(cy + 1)}" width="12" height="12" '
                         f'fill="{it.colour}" fill-opacity="{it.opacity:g}"/>')
        parts.append(_text(cx + 18, cy + 11, it.label))
        cx += w
    parts.append("</g>")
    return "".join(parts), cy - y + line_h


# ------------------------------------------------------------------------- scales


class _Scale:
    def __init__(self, lo: float, hi: float, px0: float, px1: float, log: bool):
        self.lo, self.hi, self.px0, self.px1, self.log = lo, hi, px0, px1, log

    def __call__(self, v: float) -> float:
        if self.log:
            v = max(v, 10**self.lo)
            t = (math.log10(v) - self.lo) / (self.hi - self.lo)
        else:
            t = (v - self.lo) / (self.hi - self.lo)
        return self.px0 + t * (self.px1 - self.px0)

    def ticks(self) -> list[float]:
        if self.log:
            exps = list(range(math.ceil(self.lo), math.floor(self.hi) + 1))
            step = max(1, math.ceil(len(exps) / 8))
            return [10.0**e for e in exps[::step]]
        return nice_ticks(self.lo, self.hi)


def nice_ticks(lo: float, hi: float, n: int = 6) -> list[float]:
    """Round tick values (1, 2, 5 × 10^k steps) covering [lo, hi]."""
    span = hi - lo
    if span <= 0:
        return [lo]
    raw = span / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    start = math.ceil(lo / step - 1e-9) * step
    out, v = [], start
    while v <= hi + step * 1e-9:
        out.append(0.0 if abs(v) < step * 1e-9 else v)
        v += step
    return out


def value_scale(values: Sequence[float], px0: float, px1: float, log: bool) -> _Scale:
    """A log10 scale spanning whole decades around the positive values, or 0..max."""
    pos = [v for v in values if v is not None and v > 0]
    if log and pos:
        # The low end on a whole decade (the bars' baseline), the high end just past the
        # largest value, so no empty decade is drawn.
        lo = math.floor(math.log10(min(pos)))
        hi = math.log10(max(pos))
        hi = max(hi + 0.04 * (hi - lo), lo + 1)
        return _Scale(lo, hi, px0, px1, True)
    top = max(pos) if pos else 1.0
    ticks = nice_ticks(0.0, top)
    return _Scale(0.0, max(ticks[-1], top), px0, px1, False)


# ------------------------------------------------------------------------- charts


@dataclass(frozen=True)
class Series:
    """One bar series: a legend name, a colour and one value per category (None: no bar)."""

    name: str
    colour: str
    values: Sequence[float | None]


def hbar_chart(chart: str, title: str, categories: Sequence[str], series: Sequence[Series], *,
               fmt: Callable[[float], str], axis_label: str, log: bool = True,
               width: float = 1150, bar_h: float = 7, label_w: float = 230,
               show_values: bool = False,
               category_colours: Sequence[str] | None = None) -> str:
    """Horizontal grouped bars, one band per category, one bar per series."""
    n = len(series)
    gap = max(6.0, bar_h)
    band = n * bar_h + gap
    right = 92.0 if show_values else 24.0
    x0, x1 = label_w, width - right
    leg, leg_h = legend([LegendItem(s.name, s.colour) for s in series], x0, 6, x1 - x0)
    tall = len(categories) > 10  # repeat the tick labels above the bars
    top = 6 + leg_h + (22 if tall else 8)
    height = top + band * len(categories) + 46
    sc = value_scale([v for s in series for v in s.values if v is not None], x0, x1, log)
    out = [_open(chart, width, height, title), leg]
    bottom = top + band * len(categories)
    for i, _cat in enumerate(categories):
        if i % 2 == 1:
            out.append(f'<rect x="0" y="{_f(top + i * band)}" width="{_f(width)}" '
                       f'height="{_f(band)}" fill="{BAND}"/>')
    for t in sc.ticks():
        x = sc(t)
        out.append(f'<line x1="{_f(x)}" y1="{_f(top)}" x2="{_f(x)}" y2="{_f(bottom)}" '
                   f'stroke="{GRID}" stroke-width="1"/>')
        out.append(_text(x, bottom + 15, fmt(t), anchor="middle", size=11, fill=MUTED))
        if tall:
            out.append(_text(x, top - 3, fmt(t), anchor="middle", size=10, fill=MUTED))
    out.append(_text((x0 + x1) / 2, bottom + 36, axis_label, anchor="middle", fill=MUTED))
    for i, cat in enumerate(categories):
        y = top + i * band + gap / 2
        cy = y + n * bar_h / 2 + 4
        colour = category_colours[i] if category_colours else None
        lx = label_w - 8
        if colour:
            out.append(f'<rect x="{_f(lx - 8)}" y="{_f(cy - 9)}" width="8" height="8" '
                       f'rx="1.5" fill="{colour}"/>')
            lx -= 14
        out.append(f'<text x="{_f(lx)}" y="{_f(cy)}" text-anchor="end" font-size="{FONT_PX}" '
                   f'fill="{INK}"><title>{esc(cat)}</title>{esc(fit(cat, lx - 6))}</text>')
        for k, s in enumerate(series):
            v = s.values[i]
            if v is None:
                continue
            by = y + k * bar_h
            w = max(sc(v) - x0, 1.0) if v > 0 else 0.0
            out.append(f'<rect x="{_f(x0)}" y="{_f(by)}" width="{_f(w)}" '
                       f'height="{_f(bar_h - 1)}" fill="{s.colour}">'
                       f"<title>{esc(cat)} · {esc(s.name)}: {esc(fmt(v))}</title></rect>")
            if show_values:
                out.append(_text(x0 + w + 4, by + bar_h - 2, fmt(v), size=11, fill=MUTED))
    out.append(f'<line x1="{_f(x0)}" y1="{_f(top)}" x2="{_f(x0)}" y2="{_f(bottom)}" '
               f'stroke="{MUTED}" stroke-width="1"/>')
    out.append("</svg>")
    return "".join(out)


def stacked_share_chart(chart: str, title: str, rows: Sequence[tuple[str, Sequence[float]]],
                        segments: Sequence[str], colours: Sequence[str], *,
                        fmt: Callable[[float], str], width: float = 1150,
                        label_w: float = 230) -> str:
    """100 % stacked horizontal bars: each row split into `segments` by share of its total."""
    x0, x1 = label_w, width - 24
    leg, leg_h = legend([LegendItem(s, c) for s, c in zip(segments, colours, strict=True)],
                        x0, 6, x1 - x0)
    top, bar_h, gap = 6 + leg_h + 8, 26.0, 12.0
    bottom = top + len(rows) * (bar_h + gap) - gap
    height = bottom + 46
    out = [_open(chart, width, height, title), leg]
    for i, (label, values) in enumerate(rows):
        y = top + i * (bar_h + gap)
        total = sum(v for v in values if v > 0)
        out.append(f'<text x="{_f(label_w - 8)}" y="{_f(y + bar_h / 2 + 4)}" '
                   f'text-anchor="end" font-size="{FONT_PX}" fill="{INK}">'
                   f"{esc(fit(label, label_w - 12))}</text>")
        x = x0
        for seg, colour, v in zip(segments, colours, values, strict=True):
            if v <= 0 or total <= 0:
                continue
            w = (x1 - x0) * v / total
            pct = 100 * v / total
            out.append(f'<rect x="{_f(x)}" y="{_f(y)}" width="{_f(w)}" height="{_f(bar_h)}" '
                       f'fill="{colour}" stroke="#ffffff" stroke-width="1">'
                       f"<title>{esc(label)} · {esc(seg)}: {esc(fmt(v))} ({pct:.1f} %)</title>"
                       "</rect>")
            tag = f"{seg} {pct:.0f} %"
            if w >= len(tag) * 6.6 + 8:
                out.append(_text(x + w / 2, y + bar_h / 2 + 4, tag, anchor="middle", size=11,
                                 fill="#ffffff", weight="600"))
            elif w >= 34:
                out.append(_text(x + w / 2, y + bar_h / 2 + 4, f"{pct:.0f} %", anchor="middle",
                                 size=11, fill="#ffffff", weight="600"))
            x += w
    for t in (0, 25, 50, 75, 100):
        x = x0 + (x1 - x0) * t / 100
        out.append(f'<line x1="{_f(x)}" y1="{_f(bottom + 2)}" x2="{_f(x)}" y2="{_f(bottom + 6)}" '
                   f'stroke="{MUTED}"/>')
        out.append(_text(x, bottom + 18, f"{t} %", anchor="middle", size=11, fill=MUTED))
    out.append(_text((x0 + x1) / 2, bottom + 38, "share of the row's total energy per inference",
                     anchor="middle", fill=MUTED))
    out.append("</svg>")
    return "".join(out)


@dataclass(frozen=True)
class EvolutionPanel:
    """One layer's selection probabilities: history[epoch][candidate]."""

    name: str
    candidates: Sequence[str]
    history: Sequence[Sequence[float]]
    choice: str


def evolution_grid(chart: str, title: str, panels: Sequence[EvolutionPanel], *,
                   width: float = 1150, cols: int = 4) -> str:
    """Small multiples, one per layer: probability (0..1) of each candidate per epoch."""
    order: list[str] = []
    for p in panels:
        for c in p.candidates:
            if c not in order:
                order.append(c)
    items = [LegendItem(c, candidate_colour(c, order), "line") for c in order]
    items.append(LegendItem("chosen quantizer (thick line, name in the title)", MUTED, "line",
                            bold=True))
    leg, leg_h = legend(items, 8, 6, width - 16)
    top = 6 + leg_h + 10
    gap_x, pw, ph = 14.0, 0.0, 150.0
    pw = (width - gap_x * (cols - 1) - 8) / cols
    rows = math.ceil(len(panels) / cols)
    height = top + rows * (ph + 12) + 4
    out = [_open(chart, width, height, title), leg]
    for i, p in enumerate(panels):
        r, c = divmod(i, cols)
        px, py = 4 + c * (pw + gap_x), top + r * (ph + 12)
        # plot area inside the panel
        ax0, ax1, ay0, ay1 = px + 40, px + pw - 8, py + 24, py + ph - 32
        label = f"{p.name} → {p.choice}"
        out.append(f'<g class="panel"><rect x="{_f(px)}" y="{_f(py)}" width="{_f(pw)}" '
                   f'height="{_f(ph)}" fill="#ffffff" stroke="{GRID}" rx="3"/>')
        out.append(f'<text x="{_f(px + 8)}" y="{_f(py + 15)}" font-size="{FONT_PX}" '
                   f'font-weight="600" fill="{INK}"><title>{esc(label)}</title>'
                   f"{esc(fit(label, pw - 16))}</text>")
        for t in (0.0, 0.5, 1.0):
            y = ay1 - t * (ay1 - ay0)
            out.append(f'<line x1="{_f(ax0)}" y1="{_f(y)}" x2="{_f(ax1)}" y2="{_f(y)}" '
                       f'stroke="{GRID}"/>')
            out.append(_text(ax0 - 4, y + 4, f"{t:g}", anchor="end", size=10, fill=MUTED))
        out.append(f'<text transform="translate({_f(px + 11)},{_f((ay0 + ay1) / 2)}) rotate(-90)" '
                   f'text-anchor="middle" font-size="10" fill="{MUTED}">probability</text>')
        n = len(p.history)
        xs = [ax0 + (ax1 - ax0) * (e / (n - 1) if n > 1 else 0.5) for e in range(n)]
        for e_lab in sorted({0, n - 1}):
            out.append(_text(xs[e_lab], ay1 + 13, str(e_lab + 1), anchor="middle", size=10,
                             fill=MUTED))
        out.append(_text((ax0 + ax1) / 2, ay1 + 25, "search epoch", anchor="middle", size=10,
                         fill=MUTED))
        # the chosen candidate last, so its line is on top
        ks = sorted(range(len(p.candidates)), key=lambda k: p.candidates[k] == p.choice)
        for k in ks:
            cand = p.candidates[k]
            colour = candidate_colour(cand, order)
            chosen = cand == p.choice
            ys = [ay1 - row[k] * (ay1 - ay0) for row in p.history]
            tip = (f"{p.name} · {cand}: " + ", ".join(f"{row[k]:.3f}" for row in p.history[-3:])
                   + (" (last epochs)" if n > 3 else ""))
            if n > 1:
                pts = " ".join(f"{_f(x)},{_f(y)}" for x, y in zip(xs, ys, strict=True))
                out.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" '
                           f'stroke-width="{3 if chosen else 1.5:g}" stroke-linejoin="round">'
                           f"<title>{esc(tip)}</title></polyline>")
            if n <= 12:
                for x, y in zip(xs, ys, strict=True):
                    out.append(f'<circle cx="{_f(x)}" cy="{_f(y)}" r="{3 if chosen else 2:g}" '
                               f'fill="{colour}"/>')
        out.append("</g>")
    out.append("</svg>")
    return "".join(out)


def histogram_grid(chart: str, title: str, hists: Sequence[Mapping], *, width: float = 1150,
                   cols: int = 2) -> str:
    """Weight histograms before (grey) and after (the quantizer's colour) quantization.

    Each entry: layer, role, choice, edges, before, after (report.json `histograms`).
    Counts are drawn on a log(1 + count) scale so that sparse tails stay visible next to
    the quantization levels.
    """
    choices = sorted({h["choice"] for h in hists})
    items = [LegendItem(f"after {c} (bars)", candidate_colour(c, choices), opacity=0.8)
             for c in choices]
    imported = all(h.get("before_weights") == "imported" for h in hists)
    items.append(LegendItem(f"{'imported' if imported else 'latent'} fp32 weights, before quantization "
                            "(outline)", INK, "line"))
    leg, leg_h = legend(items, 8, 6, width - 16)
    top = 6 + leg_h + 10
    gap_x, ph = 16.0, 230.0
    pw = (width - gap_x * (cols - 1) - 8) / cols
    rows = math.ceil(len(hists) / cols)
    height = top + rows * (ph + 12) + 4
    out = [_open(chart, width, height, title), leg]
    for i, h in enumerate(hists):
        r, c = divmod(i, cols)
        px, py = 4 + c * (pw + gap_x), top + r * (ph + 12)
        ax0, ax1, ay0, ay1 = px + 52, px + pw - 12, py + 28, py + ph - 38
        label = f"{h['layer']} ({h['role']}) → {h['choice']}"
        out.append(f'<g class="panel"><rect x="{_f(px)}" y="{_f(py)}" width="{_f(pw)}" '
                   f'height="{_f(ph)}" fill="#ffffff" stroke="{GRID}" rx="3"/>')
        out.append(f'<text x="{_f(px + 8)}" y="{_f(py + 17)}" font-size="{FONT_PX}" '
                   f'font-weight="600" fill="{INK}"><title>{esc(label)}</title>'
                   f"{esc(fit(label, pw - 16))}</text>")
        edges, before, after = h["edges"], h["before"], h["after"]
        top_count = max(max(before), max(after), 1)
        ymax = math.log1p(top_count)

        def yv(cnt: float, ymax: float = ymax, ay0: float = ay0, ay1: float = ay1) -> float:
            return ay1 - (math.log1p(cnt) / ymax) * (ay1 - ay0)

        xlo, xhi = edges[0], edges[-1]

        def xv(v: float, xlo: float = xlo, xhi: float = xhi, ax0: float = ax0,
               ax1: float = ax1) -> float:
            return ax0 + (v - xlo) / ((xhi - xlo) or 1.0) * (ax1 - ax0)

        t = 1
        while t <= top_count:
            y = yv(t)
            out.append(f'<line x1="{_f(ax0)}" y1="{_f(y)}" x2="{_f(ax1)}" y2="{_f(y)}" '
                       f'stroke="{GRID}"/>')
            out.append(_text(ax0 - 4, y + 4, _count_label(t), anchor="end", size=10, fill=MUTED))
            t *= 10
        colour = candidate_colour(h["choice"], choices)
        for b, cnt in enumerate(after):
            if cnt <= 0:
                continue
            xa, xb = xv(edges[b]), xv(edges[b + 1])
            y = yv(cnt)
            out.append(f'<rect x="{_f(xa)}" y="{_f(y)}" width="{_f(max(xb - xa - 0.5, 0.5))}" '
                       f'height="{_f(ay1 - y)}" fill="{colour}" fill-opacity="0.8">'
                       f"<title>[{edges[b]:.4g}, {edges[b + 1]:.4g}): {cnt} after, "
                       f"{before[b]} before</title></rect>")
        # before: a step outline on top, so it stays visible where the bars cover it
        pts = [f"{_f(xv(edges[0]))},{_f(ay1)}"]
        for b, cnt in enumerate(before):
            y = yv(cnt)
            pts.append(f"{_f(xv(edges[b]))},{_f(y)}")
            pts.append(f"{_f(xv(edges[b + 1]))},{_f(y)}")
        pts.append(f"{_f(xv(edges[-1]))},{_f(ay1)}")
        out.append(f'<polyline points="{" ".join(pts)}" fill="none" stroke="{INK}" '
                   f'stroke-width="1.2" stroke-linejoin="miter"/>')
        out.append(f'<line x1="{_f(ax0)}" y1="{_f(ay1)}" x2="{_f(ax1)}" y2="{_f(ay1)}" '
                   f'stroke="{MUTED}"/>')
        for tv in nice_ticks(xlo, xhi, 6):
            x = xv(tv)
            out.append(f'<line x1="{_f(x)}" y1="{_f(ay1)}" x2="{_f(x)}" y2="{_f(ay1 + 4)}" '
                       f'stroke="{MUTED}"/>')
            out.append(_text(x, ay1 + 15, f"{tv:.3g}", anchor="middle", size=10, fill=MUTED))
        out.append(_text((ax0 + ax1) / 2, ay1 + 30, "weight value (float)", anchor="middle",
                         size=11, fill=MUTED))
        out.append(f'<text transform="translate({_f(px + 12)},{_f((ay0 + ay1) / 2)}) rotate(-90)" '
                   f'text-anchor="middle" font-size="11" fill="{MUTED}">count (log scale)</text>')
        out.append("</g>")
    out.append("</svg>")
    return "".join(out)


def _count_label(n: int) -> str:
    for unit, scale in (("M", 10**6), ("k", 10**3)):
        if n >= scale:
            return f"{n // scale}{unit}"
    return str(n)
