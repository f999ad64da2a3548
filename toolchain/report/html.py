"""report.html: one self-contained page (inline CSS and SVG, no script, no URL).

    report dict (validated hqc.report/1) --render_html--> HTML text

Sections: summary, energy and storage per group (fp32 vs plan) and where the energy
goes, energy and storage per layer (log scale), search evolution (small multiples),
weight histograms, the plan and group tables, target and sources, how to read. All
text from the report is escaped (layer names can hold anything).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hqc.fmt import (
    format_accuracy,
    format_bits,
    format_bytes,
    format_count,
    format_energy,
    format_pct,
    format_ratio,
    format_seconds,
)
from hqc.report.markdown import full_rows, memory_text, model_title, storage_text
from hqc.report.svg import (
    GROUP_COLOURS,
    EvolutionPanel,
    Series,
    candidate_colour,
    esc,
    evolution_grid,
    hbar_chart,
    histogram_grid,
    stacked_share_chart,
)

FP32_COLOUR = "#aab3bf"
PLAN_COLOUR = "#1f77b4"
SPIKE_COLOUR = "#e8710a"

_CSS = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #f3f4f6; color: #1f2328;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
    "Noto Sans", "DejaVu Sans", sans-serif;
  font-size: 15px; line-height: 1.5; }
main { max-width: 1240px; margin: 0 auto; padding: 24px 24px 48px; }
header h1 { font-size: 26px; margin: 0 0 4px; font-weight: 650; overflow-wrap: anywhere; }
header p { margin: 0; color: #57606a; overflow-wrap: anywhere; }
section { background: #fff; border: 1px solid #d8dee4; border-radius: 8px;
  padding: 16px 20px 20px; margin-top: 18px; }
h2 { font-size: 19px; margin: 0 0 4px; font-weight: 650; }
h3 { font-size: 15px; margin: 18px 0 4px; font-weight: 650; }
p.note { color: #57606a; margin: 2px 0 10px; font-size: 13.5px; }
.cards { display: grid; grid-template-columns: repeat(3, 1fr); gap: 12px; margin-top: 10px; }
.card { border: 1px solid #d8dee4; border-radius: 6px; padding: 10px 14px; background: #fbfcfd; }
.card .k { font-size: 12.5px; color: #57606a; text-transform: uppercase; letter-spacing: .03em; }
.card .v { font-size: 24px; font-weight: 650; font-variant-numeric: tabular-nums; }
.card .v.small { font-size: 19px; line-height: 1.75; white-space: nowrap; }
.card .s { font-size: 13px; color: #57606a; overflow-wrap: anywhere; }
.card.spike { border-color: #f3c39a; background: #fffaf5; }
.tag { display: inline-block; font-size: 11px; padding: 0 6px; border-radius: 9px;
  background: #fdebd9; color: #9a4a00; vertical-align: middle; }
svg.chart { display: block; max-width: 100%; height: auto; margin-top: 6px; }
.pair { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }
table { border-collapse: collapse; width: 100%; font-size: 13px; margin-top: 8px; }
th, td { padding: 3px 6px; border-bottom: 1px solid #e5e8eb; text-align: left;
  vertical-align: top; }
th { font-weight: 600; background: #f6f8fa; position: sticky; top: 0; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.total td { font-weight: 650; border-top: 2px solid #d8dee4; }
td { white-space: nowrap; }
td.name code { white-space: pre; }
td.wrap { white-space: normal; }
.scroll { overflow-x: auto; }
.chip { display: inline-block; min-width: 42px; text-align: center; border-radius: 4px;
  color: #fff; font-size: 12px; font-weight: 600; padding: 0 5px; }
.dot { display: inline-block; width: 9px; height: 9px; border-radius: 2px; margin-right: 5px; }
.sbar { display: inline-block; width: 36px; height: 8px; background: #edf2f7;
  border-radius: 2px; margin-right: 6px; vertical-align: middle; overflow: hidden; }
.sbar span { display: block; height: 100%; background: #1f77b4; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 8px 0; }
dt { font-weight: 600; } dd { margin: 0; overflow-wrap: anywhere; }
ul.src li { margin-bottom: 4px; overflow-wrap: anywhere; }
code { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, "DejaVu Sans Mono",
  monospace; font-size: 12.5px; }
footer { color: #57606a; font-size: 12.5px; margin-top: 18px; text-align: center; }
@media (max-width: 900px) { .cards { grid-template-columns: 1fr 1fr; }
  .pair { grid-template-columns: 1fr; } }
@media print { body { background: #fff; } section { break-inside: avoid; } }
""".strip()


def _card(key: str, value: str, sub: str, cls: str = "", vcls: str = "v") -> str:
    c = f"card {cls}".strip()
    return (f'<div class="{c}"><div class="k">{key}</div><div class="{vcls}">{esc(value)}</div>'
            f'<div class="s">{sub}</div></div>')


def _less(ratio: float | None) -> str:
    if ratio is None:
        return "n/a"
    if ratio > 0 and ratio < 1:
        return f"{1 / ratio:.3g}× less"
    return f"{ratio:.3g}×"


def _summary(r: Mapping[str, Any]) -> str:
    t, b, ratios, acc, s = r["total"], r["baseline_fp32"], r["ratios"], r["accuracy"], r["search"]
    cards = []
    if acc is not None:
        cards.append(_card(
            "accuracy",
            f"{format_accuracy(acc['float'])} → {format_accuracy(acc['fake_quant'])} → "
            f"{format_accuracy(acc['integer'])}",
            f"float → fake-quant → deployed integer · {esc(acc['split'])}, "
            f"{acc['samples']} samples", vcls="v small"))
    else:
        cards.append(_card("accuracy", "n/a", "not measured"))
    cards.append(_card(
        "energy · paper model", _less(ratios["energy_total_pj"]),
        f"{esc(format_energy(t['energy_total_pj']))} vs "
        f"{esc(format_energy(b['energy_total_pj']))} fp32 per inference"))
    if r["spike_aware_available"]:
        cards.append(_card(
            'energy · spike-aware <span class="tag">estimate</span>',
            _less(ratios["spike_energy_total_pj"]),
            f"{esc(format_energy(t['spike_energy_total_pj']))} vs "
            f"{esc(format_energy(b['spike_energy_total_pj']))} fp32, from measured firing rates",
            "spike"))
    else:
        cards.append(_card('energy · spike-aware <span class="tag">estimate</span>', "n/a",
                           "unavailable: no firing rates were measured", "spike"))
    cards.append(_card(
        "weight storage", _less(ratios["storage_bits"]),
        f"{esc(format_bits(t['storage_bits']))} vs {esc(format_bits(b['storage_bits']))} fp32"))
    avg = t["average_bits"]
    cards.append(_card("average weight bits", "n/a" if avg is None else f"{avg:.3g}",
                       "params-weighted; fp32 = 32"))
    if s["source"] == "search":
        lam = "n/a" if s["lambda"] is None else f"{s['lambda']:g}"
        detail = (f"{s['epochs']} search + {s['finetune_epochs']} fine-tune epochs"
                  + ("" if s["seed"] is None else f", seed {s['seed']}")
                  + ("" if s["seconds"] is None else f", {format_seconds(s['seconds'])}"))
        cards.append(_card("plan · searched", f"λ = {lam}", esc(detail)))
    else:
        detail = (f"{s['finetune_epochs']} fine-tune epochs"
                  + ("" if s["seconds"] is None else f", {format_seconds(s['seconds'])}")
                  + ("" if not s["plan_file"] else f" · {s['plan_file']}"))
        cards.append(_card("plan", "given by the user", esc(detail)))
    note = ("Energies are per inference of one sample (all T time steps). The <b>paper "
            "model</b> is the search's hardware loss and the main figure; the <b>spike-aware "
            "estimate</b> prices additions only where input spikes are present (see "
            "<a href=\"#how\">how to read</a>).")
    return (f'<section id="summary"><h2>Summary</h2><p class="note">{note}</p>'
            f'<div class="cards">{"".join(cards)}</div></section>')


def _group_charts(r: Mapping[str, Any]) -> str:
    groups = r["groups"]
    names = [g["group"] for g in groups]
    colours = [GROUP_COLOURS.get(n, "#7f7f7f") for n in names]
    series = [Series("fp32 (paper model)", FP32_COLOUR,
                     [g["fp32"]["energy_total_pj"] for g in groups]),
              Series("plan (paper model)", PLAN_COLOUR, [g["energy_total_pj"] for g in groups])]
    if r["spike_aware_available"]:
        series.append(Series("plan (spike-aware estimate)", SPIKE_COLOUR,
                             [g["spike_energy_total_pj"] for g in groups]))
    energy = hbar_chart("energy-per-group", "Energy per group: fp32 vs plan", names, series,
                        fmt=format_energy, axis_label="energy per inference (log scale)",
                        width=567, bar_h=14, label_w=100, show_values=True,
                        category_colours=colours)
    storage = hbar_chart(
        "storage-per-group", "Weight storage per group: fp32 vs plan", names,
        [Series("fp32", FP32_COLOUR, [g["fp32"]["storage_bits"] / 8 for g in groups]),
         Series("plan", PLAN_COLOUR, [g["storage_bits"] / 8 for g in groups])],
        fmt=format_bytes, axis_label="weight storage (log scale)", width=567, bar_h=14,
        label_w=100, show_values=True, category_colours=colours)
    rows = [("plan, paper model", [g["energy_total_pj"] for g in groups])]
    if r["spike_aware_available"]:
        rows.append(("plan, spike-aware estimate", [g["spike_energy_total_pj"] for g in groups]))
    rows.append(("fp32, paper model", [g["fp32"]["energy_total_pj"] for g in groups]))
    share = stacked_share_chart("energy-share", "Where the energy goes, by group", rows,
                                names, colours, fmt=format_energy, width=1150, label_w=200)
    t = r["total"]
    cm = stacked_share_chart(
        "energy-split", "Compute vs weight memory", [
            ("plan, paper model", [t["energy_compute_pj"], t["energy_memory_pj"]]),
            ("fp32, paper model", [r["baseline_fp32"]["energy_compute_pj"],
                                   r["baseline_fp32"]["energy_memory_pj"]]),
        ], ["compute (MACs)", "weight memory (DRAM)"], ["#5b8def", "#b07cc6"],
        fmt=format_energy, width=1150, label_w=200)
    return (
        '<section id="groups-charts"><h2>Energy and storage per group</h2>'
        '<p class="note">Tokenizer, attention, MLP and head, before (fp32) and after '
        "quantization. Bars on a log scale, values at the bar ends.</p>"
        f'<div class="pair"><div>{energy}</div><div>{storage}</div></div>'
        '<h3>Where the energy goes</h3><p class="note">Share of each group in the total '
        "energy per inference (hover a segment for its value).</p>"
        f"{share}<h3>Compute vs weight memory</h3><p class=\"note\">Paper model: MAC "
        "energy vs reading every weight from DRAM once per inference.</p>"
        f"{cm}</section>"
    )


def _layer_charts(r: Mapping[str, Any]) -> str:
    rows = r["layers"]
    names = [x["name"] for x in rows]
    colours = [GROUP_COLOURS.get(x["group"], "#7f7f7f") for x in rows]
    series = [Series("fp32 (paper model)", FP32_COLOUR, [x["fp32"]["energy_total_pj"] for x in rows]),
              Series("plan (paper model)", PLAN_COLOUR, [x["energy_total_pj"] for x in rows])]
    if r["spike_aware_available"]:
        series.append(Series("plan (spike-aware estimate)", SPIKE_COLOUR,
                             [x["spike_energy_total_pj"] for x in rows]))
    energy = hbar_chart("energy-per-layer", "Energy per layer: fp32 vs plan", names, series,
                        fmt=format_energy, axis_label="energy per inference (log scale)",
                        category_colours=colours)
    storage = hbar_chart(
        "storage-per-layer", "Weight storage per layer: fp32 vs plan", names,
        [Series("fp32", FP32_COLOUR, [x["fp32"]["storage_bits"] / 8 for x in rows]),
         Series("plan", PLAN_COLOUR, [x["storage_bits"] / 8 for x in rows])],
        fmt=format_bytes, axis_label="weight storage (log scale)", category_colours=colours)
    key = " ".join(f'<span class="dot" style="background:{c}"></span>{esc(g)}'
                   for g, c in GROUP_COLOURS.items() if any(x["group"] == g for x in rows))
    return (
        '<section id="layers-charts"><h2>Energy per layer</h2>'
        f'<p class="note">Log scale. The square before a name is its group: {key}.</p>'
        f"{energy}<h3>Weight storage per layer</h3>"
        '<p class="note">Log scale; fp32 = 32 bits per weight.</p>'
        f"{storage}</section>"
    )


def _evolution(r: Mapping[str, Any]) -> str:
    panels = [EvolutionPanel(x["name"], x["candidates"], x["history"], x["choice"])
              for x in r["layers"] if x["history"]]
    if not panels:
        body = ('<p class="note">No search history: the plan was given by the user, so there '
                "are no selection probabilities to show.</p>")
    else:
        body = ('<p class="note">Selection probability softmax(α) of every candidate quantizer, '
                "per layer, at the end of each search epoch. The title names the final "
                "choice (argmax α).</p>"
                + evolution_grid("evolution", "Selection probabilities over the search", panels))
    return f'<section id="evolution"><h2>Search evolution</h2>{body}</section>'


def _histograms(r: Mapping[str, Any]) -> str:
    hs = r["histograms"]
    if not hs:
        body = '<p class="note">No weights were given to the report.</p>'
    else:
        stats = "".join(
            f"<li><code>{esc(h['layer'])}</code> → {esc(h['choice'])}: "
            f"{h['stats_after']['distinct_values']} distinct values after quantization, "
            "relative RMSE "
            + ("n/a" if h["relative_rmse"] is None else f"{h['relative_rmse']:.3f}") + "</li>"
            for h in hs)
        body = ('<p class="note">Latent float weights and the same weights after the layer\'s '
                "chosen quantizer (per-channel scales), on the same bins.</p>"
                + histogram_grid("histograms", "Weight histograms before and after quantization",
                                 hs)
                + f'<ul class="src">{stats}</ul>')
    return f'<section id="histograms"><h2>Weight histograms</h2>{body}</section>'


def _chip(choice: str, order: list[str]) -> str:
    return (f'<span class="chip" style="background:{candidate_colour(choice, order)}">'
            f"{esc(choice)}</span>")


def _share_cell(frac: float | None) -> str:
    if frac is None:
        return '<td class="n">n/a</td>'
    return (f'<td class="n"><span class="sbar"><span style="width:{100 * frac:.1f}%"></span>'
            f"</span>{esc(format_pct(frac))}</td>")


def _num(x: float | None) -> str:
    return "—" if x is None else f"{x:.3f}"


def _plan_table(r: Mapping[str, Any]) -> str:
    rows = r["layers"]
    order = sorted({x["choice"] for x in rows})
    head = ("<tr><th class=\"n\">#</th><th>layer</th><th>group</th>"
            "<th>shape</th><th class=\"n\">params</th><th class=\"n\">MACs</th>"
            "<th>quant.</th><th class=\"n\">p</th><th class=\"n\">energy</th>"
            "<th class=\"n\">% of total</th><th class=\"n\">spike-aware</th>"
            "<th class=\"n\">fp32 energy</th><th class=\"n\">storage</th>"
            "<th class=\"n\">rate</th></tr>")
    body = []
    for i, x in enumerate(rows):
        g = x["group"]
        body.append(
            f'<tr><td class="n">{i}</td><td class="name"><code>{esc(x["name"])}</code></td>'
            f'<td><span class="dot" style="background:{GROUP_COLOURS.get(g, "#7f7f7f")}">'
            f"</span>{esc(g)}</td>"
            f"<td>{esc('×'.join(map(str, x['weight_shape'])))}</td>"
            f'<td class="n">{esc(format_count(x["params"]))}</td>'
            f'<td class="n">{esc(format_count(x["macs"]))}</td>'
            f"<td>{_chip(x['choice'], order)}</td>"
            f'<td class="n">{_num(x["probability"])}</td>'
            f'<td class="n">{esc(format_energy(x["energy_total_pj"]))}</td>'
            f"{_share_cell(x['energy_share'])}"
            f'<td class="n">{esc(format_energy(x["spike_energy_total_pj"]))}</td>'
            f'<td class="n">{esc(format_energy(x["fp32"]["energy_total_pj"]))}</td>'
            f'<td class="n">{esc(format_bits(x["storage_bits"]))}</td>'
            f'<td class="n">{_num(x["firing_rate"])}</td>'
            "</tr>")
    t, b = r["total"], r["baseline_fp32"]
    body.append(
        f'<tr class="total"><td></td><td>total</td><td></td><td></td>'
        f'<td class="n">{esc(format_count(t["params"]))}</td>'
        f'<td class="n">{esc(format_count(t["macs"]))}</td><td></td><td></td>'
        f'<td class="n">{esc(format_energy(t["energy_total_pj"]))}</td><td class="n">100.0 %</td>'
        f'<td class="n">{esc(format_energy(t["spike_energy_total_pj"]))}</td>'
        f'<td class="n">{esc(format_energy(b["energy_total_pj"]))}</td>'
        f'<td class="n">{esc(format_bits(t["storage_bits"]))}</td><td></td></tr>')
    return ('<section id="plan"><h2>Plan</h2><p class="note">Shape: weight shape (PyTorch '
            "layout). p: selection probability of the chosen quantizer at the end of the "
            "search (— for a user plan). Energy: paper model, per inference; spike-aware: the "
            "estimate from measured firing rates. Rate: firing rate, the fraction of the "
            "layer's input positions holding a spike.</p>"
            f'<div class="scroll"><table><thead>{head}</thead><tbody>{"".join(body)}</tbody>'
            "</table></div></section>")


def _group_table(r: Mapping[str, Any]) -> str:
    head = ("<tr><th>group</th><th class=\"n\">layers</th><th class=\"n\">params</th>"
            "<th class=\"n\">MACs</th><th class=\"n\">energy fp32</th>"
            "<th class=\"n\">energy plan</th><th class=\"n\">ratio</th>"
            "<th class=\"n\">spike-aware plan</th><th class=\"n\">storage fp32</th>"
            "<th class=\"n\">storage plan</th><th class=\"n\">avg bits</th></tr>")

    def row(name: str, x: Mapping[str, Any], base: Mapping[str, Any], ratio: float | None,
            cls: str = "", colour: str | None = None) -> str:
        dot = f'<span class="dot" style="background:{colour}"></span>' if colour else ""
        avg = x["average_bits"]
        return (f'<tr class="{cls}"><td>{dot}{esc(name)}</td><td class="n">{x["layers"]}</td>'
                f'<td class="n">{esc(format_count(x["params"]))}</td>'
                f'<td class="n">{esc(format_count(x["macs"]))}</td>'
                f'<td class="n">{esc(format_energy(base["energy_total_pj"]))}</td>'
                f'<td class="n">{esc(format_energy(x["energy_total_pj"]))}</td>'
                f'<td class="n">{esc(format_ratio(ratio))}</td>'
                f'<td class="n">{esc(format_energy(x["spike_energy_total_pj"]))}</td>'
                f'<td class="n">{esc(format_bits(base["storage_bits"]))}</td>'
                f'<td class="n">{esc(format_bits(x["storage_bits"]))}</td>'
                f'<td class="n">{"n/a" if avg is None else format(avg, ".3g")}</td></tr>')

    body = [row(g["group"], g, g["fp32"], g["ratios"]["energy_total_pj"],
                colour=GROUP_COLOURS.get(g["group"], "#7f7f7f")) for g in r["groups"]]
    body.append(row("total", r["total"], r["baseline_fp32"], r["ratios"]["energy_total_pj"],
                    "total"))
    return ('<section id="group-table"><h2>Groups</h2><p class="note">Ratio: plan / fp32, '
            "paper model (below 1 is a saving).</p>"
            f'<div class="scroll"><table><thead>{head}</thead><tbody>{"".join(body)}</tbody>'
            "</table></div></section>")


def _full(r: Mapping[str, Any]) -> str:
    """The full accounting beside the paper model (absent in older reports)."""
    full = r.get("full")
    if full is None:
        return ""
    rows = full_rows(full)
    def tr(row: list[str], cls: str) -> str:
        cells = [f"<td>{esc(row[0])}</td>"] + [f'<td class="n">{esc(c)}</td>' for c in row[1:]]
        return f'<tr class="{cls}">{"".join(cells)}</tr>'

    body = "".join(tr(row, "total" if i == len(rows) - 1 else "") for i, row in enumerate(rows))
    acc = "the paper's 32 bits" if full["accumulator"] == "paper" else "the lowering's proven bounds"
    spike = ("" if full["spike_energy_total_pj"] is None else
             f"; spike-aware {esc(format_energy(full['spike_energy_total_pj']))} vs "
             f"{esc(format_energy(full['fp32_spike_energy_total_pj']))} fp32 = "
             f"{esc(format_ratio(full['ratios']['spike_energy_total_pj']))}")
    rates = ("" if not full["firing_rates_source"] else
             f" Firing rates measured on the {esc(full['firing_rates_source'])}.")
    return (
        '<section id="full"><h2>Full accounting</h2><p class="note">Beside the paper model '
        "(the headline): the operations it leaves out, priced from the same table, per "
        f"inference of one sample; accumulators: {acc}.</p>"
        '<div class="scroll"><table><thead><tr><th>part</th><th class="n">sites</th>'
        '<th class="n">count</th><th class="n">energy plan</th><th class="n">energy fp32</th>'
        f"</tr></thead><tbody>{body}</tbody></table></div>"
        f"<p>Ratio plan / fp32: {esc(format_ratio(full['ratios']['energy_total_pj']))}{spike}.{rates}</p>"
        f"<p>Storage as deployed: {esc(storage_text(full))}.</p>"
        + (f"<p>C model memory: {esc(memory_text(r['memory']))}.</p>" if r.get("memory") is not None else "")
        + "</section>"
    )


def _target(r: Mapping[str, Any]) -> str:
    tg = r["target"]
    rows = "".join(
        f"<tr><td><code>{esc(e['key'])}</code></td><td class=\"n\">{e['energy_pj']:g}</td>"
        f"<td>{esc(e['source'])}</td><td class=\"wrap\">{esc(e['note'] or '')}</td></tr>"
        for e in tg["table"])
    rows += "".join(
        f"<tr><td><code>memory.{esc(m['level'])}</code> ({m['bits']}-bit access)</td>"
        f"<td class=\"n\">{m['energy_pj']:g}</td><td>{esc(m['source'])}</td>"
        f"<td class=\"wrap\">{m['energy_pj_per_bit']:g} pJ/bit{'; ' + esc(m['note']) if m['note'] else ''}"
        "</td></tr>" for m in tg["memory"])
    derived = (", ".join(f"<code>{esc(d)}</code>" for d in tg["derived"])
               if tg["derived"] else "none")
    derive = ", ".join(f"{esc(k)}: {esc(v)}" for k, v in sorted(tg["derive"].items()))
    sources = "".join(f"<li><b>{esc(k)}</b>: {esc(v)}</li>"
                      for k, v in sorted(tg["sources"].items()))
    return (
        f'<section id="target"><h2>Target: {esc(tg["name"])}</h2>'
        f'<p class="note">{esc(tg["technology"])}. {esc(tg["description"])}</p>'
        f"<dl><dt>accumulator</dt><dd>int{tg['accumulator_bits']} add</dd>"
        f"<dt>derived numbers used</dt><dd>{derived}</dd>"
        f"<dt>derivation rules</dt><dd>{derive}</dd></dl>"
        '<div class="scroll"><table><thead><tr><th>table entry</th><th class="n">pJ</th><th>source</th>'
        f"<th>note</th></tr></thead><tbody>{rows}</tbody></table></div>"
        f'<h3>Sources</h3><ul class="src">{sources}</ul></section>'
    )


def _notes(r: Mapping[str, Any]) -> str:
    v = r["verify"]
    if v is None:
        verify = "<p>Not run.</p>"
    else:
        items = "".join(f"<li>{esc(k)}: {n} / {v['samples']} samples agree</li>"
                        for k, n in sorted(v["agreement"].items()))
        verify = (f"<p>Compared with the {esc(v['reference'])} ({esc(v['criterion'])}):</p>"
                  f"<ul>{items}</ul>")
    files = "".join(f"<dt>{esc(k)}</dt><dd><code>{esc(f)}</code></dd>"
                    for k, f in sorted(r["outputs"].items()))
    return (
        '<section id="how"><h2>How to read</h2>'
        f"<dl><dt>paper model</dt><dd>{esc(r['estimates']['paper'])}</dd>"
        f"<dt>spike-aware estimate</dt><dd>{esc(r['estimates']['spike_aware'])}</dd>"
        "<dt>units</dt><dd>energy per inference of one sample, all T time steps; storage "
        "counts weights only (biases excluded)</dd></dl>"
        f"<h3>Verification</h3>{verify}<h3>Files</h3><dl>{files}</dl></section>"
    )


def render_html(report: Mapping[str, Any]) -> str:
    """The whole page; depends only on the report (no clock, no environment)."""
    m = report["model"]
    title = model_title(report)
    meta = (f"<code>{esc(m['path'])}</code> · {m['onnx_nodes']} ONNX nodes → {m['ir_nodes']} "
            f"IR nodes · input {esc('×'.join(map(str, m['input_shape'])))}"
            + ("" if m["time_steps"] is None else f" · T = {m['time_steps']}")
            + f" · target {esc(report['target']['name'])} ({esc(report['target']['technology'])})")
    created = f" · {esc(report['created'])}" if report["created"] else ""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>hqc report: {esc(title)}</title>",
        f"<style>\n{_CSS}\n</style></head><body><main>",
        f"<header><h1>hqc report: {esc(title)}</h1><p>{meta}</p></header>",
        _summary(report),
        _group_charts(report),
        _layer_charts(report),
        _evolution(report),
        _histograms(report),
        _plan_table(report),
        _group_table(report),
        _full(report),
        _target(report),
        _notes(report),
        f"<footer>{esc(report['generator'])} · schema {esc(report['schema'])}{created}</footer>",
        "</main></body></html>",
        "",
    ]
    return "\n".join(parts)
