"""`hqc report DIR [--format md|html|json]`: re-render a compile report to stdout.

    DIR/report.json --load_report (validated)--> report --render--> stdout

The output is byte-identical to the file `hqc compile` wrote (report.md, report.html,
or report.json for --format json). A missing, unreadable or invalid report.json is one
line on stderr naming the file and key, exit code 2 (the main group turns the
`ReportError` into that line).
"""

from __future__ import annotations

import sys

import click


@click.command("report")
@click.argument("directory", metavar="DIR", type=click.Path(path_type=str))
@click.option("--format", "fmt", type=click.Choice(["md", "html", "json"]), default="md",
              show_default=True, help="md: report.md, html: report.html, json: canonical report.json.")
def report(directory: str, fmt: str) -> None:
    """Print the report of a compile output folder DIR (or a report.json file)."""
    from hqc.report import load_report, render

    text = render(load_report(directory), fmt)
    # UTF-8 bytes, not click.echo: the output must equal the file whatever the locale.
    sys.stdout.flush()
    out = getattr(sys.stdout, "buffer", None)
    if out is None:  # a text-only stdout (an embedding application): no bytes to write
        click.echo(text, nl=False)
        return
    out.write(text.encode("utf-8"))
    out.flush()
