"""`hqc data from-events`: a thin command over `hqc.events.event_table_to_npz`.

    hqc data from-events EVENTS.npz --sensor-size W H P --time-bins T -o data.npz [--val EVENTS_VAL.npz]
"""

from __future__ import annotations

import json

import click


@click.group("data")
def data() -> None:
    """Make the NPZ files hqc reads."""


@data.command("from-events")
@click.argument("events", type=click.Path(dir_okay=False))
@click.option("--sensor-size", nargs=3, type=int, required=True, metavar="W H P",
              help="Sensor width, height and polarity channels (1 or 2), as tonic's sensor_size.")
@click.option("--time-bins", type=int, required=True, metavar="T", help="Frames per sample (equal time spans).")
@click.option("-o", "--out", required=True, type=click.Path(dir_okay=False), help="The NPZ to write (x, y[, x_val, y_val]).")
@click.option("--val", default=None, type=click.Path(dir_okay=False), help="Event table of the validation split.")
@click.option("--off-first", is_flag=True, help="Channel 0 = OFF events (tonic's ToFrame order); default ON first.")
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON.")
def from_events_cmd(events: str, sensor_size: tuple[int, int, int], time_bins: int, out: str, val: str | None,
                    off_first: bool, as_json: bool) -> None:
    """Bin an event table EVENTS.npz (x, y, t, p, sample per event; label per sample) into
    T frames of event counts per sample: the NPZ hqc compile/search read (docs/cli.md)."""
    from hqc.events import event_table_to_npz

    info = event_table_to_npz(events, out, sensor_size, time_bins, val=val, off_first=off_first)
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    shape = "×".join(map(str, info["x"]))
    click.echo(f"wrote {info['out']}: x {shape} uint8 event counts ({info['events']} events, "
               f"{info['classes']} classes)" + (f", x_val {'×'.join(map(str, info['x_val']))}" if "x_val" in info else ""))
