"""report.md: the report document rendered as markdown (and the text pieces the HTML
shares: summary lines, full-accounting rows, the storage line).

    report dict (validated hqc.report/1) --render_markdown--> markdown text
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
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


def model_title(report: Mapping[str, Any]) -> str:
    """The model's file name without directories."""
    path = str(report["model"]["path"])
    return re.split(r"[\\/]", path)[-1] or path


# ------------------------------------------------------------------------- markdown

_EIGHTHS = " ▏▎▍▌▋▊▉█"
_SPARK = "▁▂▃▄▅▆▇█"
_MD_SPECIAL = re.compile(r"([\\`*\[\]<>|~&$])")
_UNDERSCORES = re.compile(r"_+")


def _md_text(text: Any) -> str:
    """Inline markdown text: control characters replaced, markup characters escaped.

    `_` is escaped only next to a non-alphanumeric character: inside a word it cannot
    start or end emphasis, and `block.0.mlp.fc1_linear` stays readable in a terminal.
    """
    s = "".join(c if c.isprintable() else "\N{REPLACEMENT CHARACTER}" for c in str(text))
    s = _MD_SPECIAL.sub(r"\\\1", s)

    def underscores(m: re.Match[str]) -> str:
        before = s[m.start() - 1] if m.start() > 0 else " "
        after = s[m.end()] if m.end() < len(s) else " "
        inside = before.isalnum() and after.isalnum()
        return m.group(0) if inside else "\\_" * len(m.group(0))

    return _UNDERSCORES.sub(underscores, s)


def _plain(text: Any, width: int | None = None) -> str:
    """Text for a code block: printable characters only, cut to `width`."""
    s = "".join(c if c.isprintable() else "\N{REPLACEMENT CHARACTER}" for c in str(text))
    s = s.replace("`", "'")
    if width is not None and len(s) > width:
        s = s[: width - 1] + "…"
    return s


def text_bar(frac: float, width: int) -> str:
    """A unicode bar of `frac` (0..1) of `width` cells, in eighths of a cell."""
    frac = min(max(frac, 0.0), 1.0)
    eighths = round(frac * width * 8)
    full, rest = divmod(eighths, 8)
    bar = "█" * full + (_EIGHTHS[rest] if rest else "")
    return bar.ljust(width)


def sparkline(values: Sequence[float], lo: float = 0.0, hi: float = 1.0) -> str:
    """▁▂▃… for values in [lo, hi]."""
    span = (hi - lo) or 1.0
    out = []
    for v in values:
        k = round((min(max(v, lo), hi) - lo) / span * (len(_SPARK) - 1))
        out.append(_SPARK[k])
    return "".join(out)


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> list[str]:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    widths = [max(w, 3) for w in widths]

    def line(cells: Sequence[str]) -> str:
        out = [c.rjust(widths[i]) if i in right else c.ljust(widths[i])
               for i, c in enumerate(cells)]
        return "| " + " | ".join(out) + " |"

    sep = ["-" * (w - 1) + ":" if i in right else "-" * w for i, w in enumerate(widths)]
    return [line(header), "| " + " | ".join(sep) + " |", *[line(r) for r in rows]]


def _verify_lines(report: Mapping[str, Any]) -> list[str]:
    v = report["verify"]
    if v is None:
        return ["Not run."]
    parts = [f"{_md_text(k)} {n}/{v['samples']}" for k, n in sorted(v["agreement"].items())]
    return [f"Compared with the {_md_text(v['reference'])} on {v['samples']} samples "
            f"({_md_text(v['criterion'])}): " + ", ".join(parts) + "."]


def summary_lines(report: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(label, value) pairs of the summary, shared by markdown and HTML."""
    t, b, r = report["total"], report["baseline_fp32"], report["ratios"]
    acc = report["accuracy"]
    out = []
    if acc is not None:
        out.append(("accuracy",
                    f"{format_accuracy(acc['float'])} float → {format_accuracy(acc['fake_quant'])} "
                    f"fake-quant → {format_accuracy(acc['integer'])} deployed integer "
                    f"({acc['split']}, {acc['samples']} samples)"))
    else:
        out.append(("accuracy", "not measured"))
    out.append(("energy, paper model",
                f"{format_energy(t['energy_total_pj'])} per inference vs "
                f"{format_energy(b['energy_total_pj'])} fp32 = "
                f"{format_ratio(r['energy_total_pj'])}"))
    if report["spike_aware_available"]:
        out.append(("energy, spike-aware estimate",
                    f"{format_energy(t['spike_energy_total_pj'])} vs "
                    f"{format_energy(b['spike_energy_total_pj'])} fp32 = "
                    f"{format_ratio(r['spike_energy_total_pj'])}, from measured firing rates"))
    else:
        out.append(("energy, spike-aware estimate", "unavailable (no firing rates measured)"))
    full = report.get("full")
    if full is not None:
        out.append(("energy, full accounting",
                    f"{format_energy(full['energy_total_pj'])} vs "
                    f"{format_energy(full['fp32_energy_total_pj'])} fp32 = "
                    f"{format_ratio(full['ratios']['energy_total_pj'])} (weight layers + attention "
                    f"MatMuls, LIF updates, residual adds; {full['accumulator']} accumulators)"))
    out.append(("weight storage",
                f"{format_bits(t['storage_bits'])} vs {format_bits(b['storage_bits'])} fp32 = "
                f"{format_ratio(r['storage_bits'])}"))
    if full is not None and full["storage"] is not None:
        st = full["storage"]
        out.append(("storage as deployed",
                    f"{format_bytes(st['total_bytes'])} of C constants (weights "
                    f"{format_bytes(st['bytes_by_category']['weights'])}; weights only at their "
                    f"code width {format_bytes(st['weights_only_bytes'])})"))
    if report.get("memory") is not None:
        out.append(("C model memory", memory_text(report["memory"])))
    avg = t["average_bits"]
    out.append(("average weight bits",
                "n/a" if avg is None else f"{avg:.3g} (params-weighted; fp32 = 32)"))
    s = report["search"]
    if s["source"] == "search":
        lam = "n/a" if s["lambda"] is None else f"{s['lambda']:g}"
        secs = "" if s["seconds"] is None else f", {format_seconds(s['seconds'])}"
        seed = "" if s["seed"] is None else f", seed {s['seed']}"
        out.append(("plan", f"searched: λ {lam}, {s['epochs']} search epochs + "
                            f"{s['finetune_epochs']} fine-tune epochs{seed}{secs}"))
    else:
        src = f" ({s['plan_file']})" if s["plan_file"] else ""
        secs = "" if s["seconds"] is None else f", {format_seconds(s['seconds'])}"
        out.append(("plan", f"given by the user{src}; {s['finetune_epochs']} fine-tune "
                            f"epochs{secs}"))
    tg = report["target"]
    out.append(("target", f"{tg['name']} ({tg['technology']})"))
    return out


def full_rows(full: Mapping[str, Any]) -> list[list[str]]:
    """Rows (part, sites, count, energy, fp32 energy) of the full accounting, shared by
    markdown and HTML; the last row is the total."""
    rows = [["weight layers (paper model)" if full["accumulator"] == "paper"
             else "weight layers (proven accumulators)", "", "",
             format_energy(full["weights_energy_pj"]), format_energy(full["fp32_weights_energy_pj"])]]
    for kind, k in full["by_kind"].items():
        rows.append([kind.replace("_", " "), str(k["sites"]), format_count(k["count"]),
                     format_energy(k["energy_pj"]), format_energy(k["fp32_energy_pj"])])
    rows.append(["total", "", "", format_energy(full["energy_total_pj"]),
                 format_energy(full["fp32_energy_total_pj"])])
    return rows


def storage_text(full: Mapping[str, Any]) -> str:
    """One line on the deployed storage (or why it is unavailable)."""
    st = full["storage"]
    if st is None:
        return f"unavailable ({full['storage_unavailable']})"
    parts = ", ".join(f"{c.replace('_', ' ')} {format_bytes(n)}"
                      for c, n in st["bytes_by_category"].items() if n)
    return (f"{format_bytes(st['total_bytes'])} in {st['arrays']} C constant arrays ({parts}); "
            f"the weights alone at their code width: {format_bytes(st['weights_only_bytes'])}")


def memory_text(mem: Mapping[str, Any]) -> str:
    """One line on the RAM and flash the C model needs (lowering.json `memory`)."""
    def b(key: str) -> str:
        return "not measured" if mem.get(key) is None else format_bytes(mem[key])

    return (f"arena {b('arena_bytes')} (peak-live lower bound {b('peak_live_bytes')}), constants "
            f"{b('constant_bytes')}, stack ≈ {b('stack_bytes_estimate')}; measured: static RAM of the "
            f"test binary {b('static_ram_bytes')}, flash of hqc_model.o {b('flash_bytes')}")


def _full_lines(report: Mapping[str, Any]) -> list[str]:
    full = report.get("full")
    if full is None:
        return []
    L = ["## Full accounting", "",
         "Beside the paper model (the headline), the operations it leaves out, priced from "
         "the same table, per inference of one sample; the fp32 baseline prices the same "
         "operations in fp32. Accumulators: "
         + ("the paper's 32 bits." if full["accumulator"] == "paper"
            else "the lowering's proven bounds."), ""]
    rows = full_rows(full)
    rows[-1] = [f"**{rows[-1][0]}**", *rows[-1][1:]]
    L += _md_table(["part", "sites", "count", "energy plan", "energy fp32"], rows, {1, 2, 3, 4})
    L.append("")
    L.append(f"Ratio plan / fp32: {format_ratio(full['ratios']['energy_total_pj'])}"
             + ("" if full["spike_energy_total_pj"] is None else
                f"; spike-aware (weight layers spike-aware, other operations dense): "
                f"{format_energy(full['spike_energy_total_pj'])} vs "
                f"{format_energy(full['fp32_spike_energy_total_pj'])} fp32 = "
                f"{format_ratio(full['ratios']['spike_energy_total_pj'])}") + ".")
    if full["firing_rates_source"]:
        L.append(f"Firing rates measured on the {_md_text(full['firing_rates_source'])}.")
    L += ["", f"Storage as deployed: {_md_text(storage_text(full))}.", ""]
    return L


def render_markdown(report: Mapping[str, Any]) -> str:
    """report.md: summary, plan and group tables, text charts, target and sources."""
    L: list[str] = []
    rows = report["layers"]
    spike = report["spike_aware_available"]
    m = report["model"]
    L.append(f"# hqc report: {_md_text(model_title(report))}")
    L.append("")
    meta = (f"Model `{_plain(m['path'])}` ({m['onnx_nodes']} ONNX nodes → {m['ir_nodes']} IR "
            f"nodes, input {'×'.join(map(str, m['input_shape']))}"
            + (f", T = {m['time_steps']}" if m["time_steps"] is not None else "") + "). "
            f"Schema {report['schema']}, {_md_text(report['generator'])}"
            + (f", {_md_text(report['created'])}" if report["created"] else "") + ".")
    L += [meta, ""]

    L += ["## Summary", ""]
    for k, v in summary_lines(report):
        L.append(f"- **{k}**: {_md_text(v)}")
    L += ["", "Two energy figures, per inference of one sample: the **paper model** (the "
          "search's hardware loss and the main figure) and the **spike-aware estimate** "
          "(binary-spike inputs cost an add only where a spike is present, from measured "
          "firing rates). See *How to read* below.", ""]

    # ---- plan table
    L += ["## Plan", ""]
    header = ["layer", "group", "quantizer", "p", "energy (paper)", "% of total",
              "spike-aware", "storage", "fp32 energy", "firing rate"]
    body = []
    for r in rows:
        body.append([
            _md_text(r["name"]), r["group"], r["choice"],
            "—" if r["probability"] is None else f"{r['probability']:.3f}",
            format_energy(r["energy_total_pj"]), format_pct(r["energy_share"]),
            format_energy(r["spike_energy_total_pj"]), format_bits(r["storage_bits"]),
            format_energy(r["fp32"]["energy_total_pj"]),
            "—" if r["firing_rate"] is None else f"{r['firing_rate']:.3f}",
        ])
    t, b, ratios = report["total"], report["baseline_fp32"], report["ratios"]
    body.append(["**total**", "", "", "", format_energy(t["energy_total_pj"]), "100.0 %",
                 format_energy(t["spike_energy_total_pj"]), format_bits(t["storage_bits"]),
                 format_energy(b["energy_total_pj"]), ""])
    L += _md_table(header, body, {3, 4, 5, 6, 7, 8, 9})
    L += ["", "p: the selection probability softmax(α) of the chosen quantizer at the end of "
          "the search (— for a user plan). Firing rate: fraction of the layer's input "
          "positions holding a spike.", ""]

    # ---- groups
    L += ["## Groups", ""]
    header = ["group", "layers", "params", "MACs", "energy fp32", "energy plan", "ratio",
              "spike-aware plan", "storage fp32", "storage plan", "avg bits"]
    body = []
    for g in report["groups"]:
        body.append([
            g["group"], str(g["layers"]), format_count(g["params"]), format_count(g["macs"]),
            format_energy(g["fp32"]["energy_total_pj"]), format_energy(g["energy_total_pj"]),
            format_ratio(g["ratios"]["energy_total_pj"]),
            format_energy(g["spike_energy_total_pj"]),
            format_bits(g["fp32"]["storage_bits"]), format_bits(g["storage_bits"]),
            "n/a" if g["average_bits"] is None else f"{g['average_bits']:.3g}",
        ])
    body.append(["**total**", str(t["layers"]), format_count(t["params"]),
                 format_count(t["macs"]), format_energy(b["energy_total_pj"]),
                 format_energy(t["energy_total_pj"]), format_ratio(ratios["energy_total_pj"]),
                 format_energy(t["spike_energy_total_pj"]), format_bits(b["storage_bits"]),
                 format_bits(t["storage_bits"]),
                 "n/a" if t["average_bits"] is None else f"{t['average_bits']:.3g}"])
    L += _md_table(header, body, set(range(1, 11)))
    L.append("")
    L += _full_lines(report)

    # ---- where the energy goes
    L += ["## Where the energy goes", ""]
    L += ["Share of the plan's energy per inference, paper model"
          + (" (spike-aware estimate in the second column)" if spike else "") + ":", ""]
    width = 30
    name_w = min(max(len(_plain(r["name"])) for r in rows), 32)
    L.append("```text")
    for g in report["groups"]:
        line = (f"{_plain(g['group']).ljust(name_w)}  {text_bar(g['energy_share'] or 0, width)} "
                f"{format_pct(g['energy_share']).rjust(7)}")
        if spike:
            line += f"   {text_bar(g['spike_energy_share'] or 0, 15)} {format_pct(g['spike_energy_share']).rjust(7)}"
        L.append(line.rstrip())
    L.append("")
    for r in rows:
        line = (f"{_plain(r['name'], 32).ljust(name_w)}  {text_bar(r['energy_share'] or 0, width)} "
                f"{format_pct(r['energy_share']).rjust(7)}")
        if spike:
            line += f"   {text_bar(r['spike_energy_share'] or 0, 15)} {format_pct(r['spike_energy_share']).rjust(7)}"
        L.append(line.rstrip())
    L.append("```")
    L.append("")
    L += ["fp32 vs plan per group, paper model (bars relative to the largest fp32 group; "
          "░ fp32, █ plan):", ""]
    L.append("```text")
    gmax = max(g["fp32"]["energy_total_pj"] for g in report["groups"]) or 1.0
    for g in report["groups"]:
        f32 = g["fp32"]["energy_total_pj"]
        L.append(f"{_plain(g['group']).ljust(10)} fp32 {text_bar(f32 / gmax, 40).replace('█', '░')} "
                 f"{format_energy(f32)}")
        L.append(f"{''.ljust(10)} plan {text_bar(g['energy_total_pj'] / gmax, 40)} "
                 f"{format_energy(g['energy_total_pj'])}")
    L.append("```")
    L.append("")

    # ---- search evolution
    L += ["## Search evolution", ""]
    if any(r["history"] for r in rows):
        L += ["Selection probability of the finally chosen quantizer over the search epochs "
              "(▁ = 0, █ = 1), its first and last value, and the candidate that led after "
              "the first epoch:", ""]
        L.append("```text")
        for r in rows:
            h = r["history"]
            if not h:
                L.append(f"{_plain(r['name'], 32).ljust(name_w)}  {r['choice']:<5}  (no history)")
                continue
            k = r["candidates"].index(r["choice"])
            series = [row[k] for row in h]
            first = r["candidates"][max(range(len(h[0])), key=lambda i: h[0][i])]
            L.append(f"{_plain(r['name'], 32).ljust(name_w)}  {r['choice']:<5}  "
                     f"{sparkline(series)}  {series[0]:.2f} → {series[-1]:.2f}"
                     f"  (epoch 1: {first})")
        L.append("```")
    else:
        L.append("No search history: the plan was given by the user.")
    L.append("")

    # ---- histograms
    L += ["## Weight histograms", ""]
    if report["histograms"]:
        L += ["Counts per bin (same bins before and after quantization; height ∝ "
              "log(1 + count)):", ""]
        L.append("```text")
        for h in report["histograms"]:
            top = math.log1p(max(max(h["before"]), max(h["after"]), 1))
            b_line = sparkline([math.log1p(c) for c in h["before"]], 0.0, top)
            a_line = sparkline([math.log1p(c) for c in h["after"]], 0.0, top)
            L.append(f"{_plain(h['layer'], 40)} ({h['role']}), {h['choice']}, weights in "
                     f"[{h['edges'][0]:.3g}, {h['edges'][-1]:.3g}]")
            label = "imported fp32" if h.get("before_weights") == "imported" else "latent fp32"
            L.append(f"  {label:<15} {b_line}")
            L.append(f"  after {h['choice']:<9} {a_line}  "
                     f"{h['stats_after']['distinct_values']} distinct values, relative RMSE "
                     + ("n/a" if h["relative_rmse"] is None else f"{h['relative_rmse']:.3f}"))
        L.append("```")
    else:
        L.append("No weights were given to the report.")
    L.append("")

    # ---- verify, target, files
    L += ["## Verification", ""]
    L += _verify_lines(report)
    L.append("")
    tg = report["target"]
    L += ["## Target and sources", ""]
    L.append(f"**{_md_text(tg['name'])}**: {_md_text(tg['technology'])}. "
             f"{_md_text(tg['description'])}".rstrip())
    L.append("")
    L.append(f"Accumulator: int{tg['accumulator_bits']} add. Memory: "
             + "; ".join(f"{mm['level']} {mm['energy_pj']:g} pJ per {mm['bits']}-bit access "
                         f"({mm['energy_pj_per_bit']:g} pJ/bit) [{_md_text(mm['source'])}]"
                         for mm in tg["memory"]) + ".")
    L.append("")
    body = [[e["key"], f"{e['energy_pj']:g}", _md_text(e["source"])] for e in tg["table"]]
    L += _md_table(["operation", "pJ", "source"], body, {1})
    L.append("")
    if tg["derived"]:
        L.append("Derived (not listed in the table) and used: "
                 + ", ".join(_md_text(d) for d in tg["derived"]) + ".")
        L.append("")
    for key, cite in sorted(tg["sources"].items()):
        L.append(f"- **{_md_text(key)}**: {_md_text(cite)}")
    L.append("")
    L += ["## How to read", ""]
    L.append(f"- **Paper model**: {_md_text(report['estimates']['paper'])}.")
    L.append(f"- **Spike-aware estimate**: {_md_text(report['estimates']['spike_aware'])}.")
    L.append("- Energies are per inference of one sample, all T time steps included; "
             "storage counts weights only (biases excluded).")
    L.append("")
    L += ["## Files", ""]
    for role, name in sorted(report["outputs"].items()):
        L.append(f"- {_md_text(role)}: `{_plain(name)}`")
    L.append("")
    return "\n".join(L)
