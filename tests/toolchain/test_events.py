"""hqc.data.from_events and `hqc data from-events`: event arrays in tonic's layout
(structured x, y, t, p) → the NPZ hqc reads, binned into T frames. Every expected frame
count below is worked out by hand from the events made in the test."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from hqc.cli import main
from hqc.data import from_events, load_data, read_event_table, write_npz
from hqc.errors import DataError

# tonic's dtype for a DVS sensor (x, y int16, t int64 µs, p bool)
DT = np.dtype([("x", np.int16), ("y", np.int16), ("t", np.int64), ("p", bool)])


def ev(*rows: tuple[int, int, float, int], dtype: np.dtype = DT) -> np.ndarray:
    return np.array(list(rows), dtype)


# sample 0 spans t = 100..200 (span 100); T = 4 frames of 25 µs each:
#   t=100 → frame 0, t=124 → 0 (24*4//100 = 0), t=125 → 1, t=150 → 2, t=199 → 3, t=200 → 3
S0 = ev((0, 0, 100, 1), (1, 0, 124, 1), (1, 0, 125, 0), (2, 1, 150, 1), (2, 1, 199, 0), (2, 1, 200, 0))
# sample 1: two ON events at one pixel with the same time stamp → both in frame 0
S1 = ev((3, 2, 7, 1), (3, 2, 7, 1))


def expected_s0() -> np.ndarray:
    want = np.zeros((4, 2, 3, 4), np.uint8)  # (T, P, H, W), sensor 4 wide × 3 high
    want[0, 0, 0, 0] = 1  # ON → channel 0
    want[0, 0, 0, 1] = 1
    want[1, 1, 0, 1] = 1  # OFF → channel 1
    want[2, 0, 1, 2] = 1
    want[3, 1, 1, 2] = 2
    return want


def test_frames_are_the_hand_counted_events():
    x, y = from_events([S0, S1], sensor_size=(4, 3, 2), n_time_bins=4, labels=[5, 2])
    assert x.shape == (2, 4, 2, 3, 4) and x.dtype == np.uint8
    assert np.array_equal(x[0], expected_s0())
    want1 = np.zeros((4, 2, 3, 4), np.uint8)
    want1[0, 0, 2, 3] = 2
    assert np.array_equal(x[1], want1)
    assert y.tolist() == [5, 2] and y.dtype == np.int64
    assert int(x.sum()) == len(S0) + len(S1)  # every event counted, the last one too


def test_off_first_swaps_the_channels_and_one_channel_sums_them():
    x, _ = from_events([S0], (4, 3, 2), 4, [0], off_first=True)
    assert np.array_equal(x[0], expected_s0()[:, ::-1])
    x1, _ = from_events([S0], (4, 3, 1), 4, [0])
    assert np.array_equal(x1[0, :, 0], expected_s0().sum(axis=1))


def test_counts_saturate_at_255_and_minus_one_is_off():
    many = np.zeros(300, DT)  # 300 ON events at pixel (0, 0), t = 0
    many["p"] = True
    x, _ = from_events([many], (1, 1, 2), 1, [0])
    assert x[0, 0, 0, 0, 0] == 255
    signed = ev((0, 0, 0, -1), (0, 0, 1, 1), dtype=np.dtype([("x", int), ("y", int), ("t", int), ("p", int)]))
    x, _ = from_events([signed], (1, 1, 2), 2, [0])
    assert x[0, :, :, 0, 0].tolist() == [[0, 1], [1, 0]]  # frame 0: OFF; frame 1: ON


def test_float_times_bin_like_integer_times():
    fdt = np.dtype([("x", np.int16), ("y", np.int16), ("t", np.float64), ("p", bool)])
    x_int, _ = from_events([S0], (4, 3, 2), 4, [0])
    x_float, _ = from_events([S0.astype(fdt)], (4, 3, 2), 4, [0])
    assert np.array_equal(x_int, x_float)


def test_a_sample_without_events_is_all_zeros():
    x, _ = from_events([S1[:0], S1], (4, 3, 2), 3, [0, 1])
    assert not x[0].any() and x[1].sum() == 2


@pytest.mark.parametrize(("events", "sensor", "bins", "labels", "message"), [
    ([ev((4, 0, 0, 1))], (4, 3, 2), 2, [0], r"sample 0: an event lies outside the 4×3 sensor \(x 4\.\.4"),
    ([np.zeros(2, [("x", int), ("y", int), ("t", int)])], (4, 3, 2), 2, [0], r"lack the field\(s\) p"),
    ([S0], (4, 3, 3), 2, [0], r"P \(polarity channels\) must be 1 or 2, got 3"),
    ([S0], (4, 3), 2, [0], r"three positive integers \(W, H, P\)"),
    ([S0], (4, 3, 2), 0, [0], r"time bins must be an integer >= 1, got 0"),
    ([S0], (4, 3, 2), 2, [0, 1], r"1 samples of events but labels of shape \[2\]"),
    ([S0], (4, 3, 2), 2, [-1], r"labels must be integers >= 0"),
    ([ev((0, 0, 0, 2), dtype=np.dtype([("x", int), ("y", int), ("t", int), ("p", int)]))], (4, 3, 2), 2, [0],
     r"polarities 'p' must be bool, 0/1 or -1/1"),
])
def test_bad_events_are_one_data_error(events, sensor, bins, labels, message):
    with pytest.raises(DataError, match=message):
        from_events(events, sensor, bins, labels)


def _table(path, samples, labels):
    """The flat event table `hqc data from-events` reads: one row per event."""
    cat = np.concatenate(samples)
    sample = np.concatenate([np.full(len(s), i) for i, s in enumerate(samples)])
    np.savez(path, x=cat["x"], y=cat["y"], t=cat["t"], p=cat["p"], sample=sample, label=np.asarray(labels))
    return path


def test_event_table_round_trip(tmp_path):
    table = _table(tmp_path / "ev.npz", [S1, S0], [1, 0])
    events, labels = read_event_table(table)
    assert labels.tolist() == [1, 0]
    assert [e.tolist() for e in events] == [S1.tolist(), S0.tolist()]


def test_cli_writes_the_npz_hqc_reads(tmp_path):
    train = _table(tmp_path / "train.npz", [S0, S1, S0], [0, 1, 0])
    val = _table(tmp_path / "val.npz", [S1], [1])
    out = tmp_path / "data.npz"
    res = CliRunner().invoke(main, ["data", "from-events", str(train), "--sensor-size", "4", "3", "2",
                                    "--time-bins", "4", "-o", str(out), "--val", str(val)])
    assert res.exit_code == 0, res.stderr
    assert res.stdout.startswith(f"wrote {out}: x 3×4×2×3×4 uint8 event counts (14 events, 2 classes), x_val 1×4×2×3×4")
    ds = load_data(out, sample_shape=(4, 2, 3, 4))
    x_ref, y_ref = from_events([S0, S1, S0], (4, 3, 2), 4, [0, 1, 0])
    assert np.array_equal(ds.train.x, x_ref.astype(np.float32)) and ds.train.y.tolist() == [0, 1, 0]
    assert np.array_equal(ds.split("val").x[0], from_events([S1], (4, 3, 2), 4, [1])[0][0])


def test_cli_json_reports_what_it_wrote(tmp_path):
    train = _table(tmp_path / "train.npz", [S0, S1], [3, 1])
    out = tmp_path / "d.npz"
    res = CliRunner().invoke(main, ["data", "from-events", str(train), "--sensor-size", "4", "3", "2",
                                    "--time-bins", "2", "-o", str(out), "--json"])
    assert res.exit_code == 0, res.stderr
    import json

    assert json.loads(res.stdout) == {"out": str(out), "x": [2, 2, 2, 3, 4], "events": 8, "classes": 4}


@pytest.mark.parametrize(("make", "message"), [
    (lambda p: np.savez(p, x=np.zeros(2, int)), r"missing key\(s\) y, t, p, sample, label"),
    (lambda p: np.savez(p, x=np.zeros(2, int), y=np.zeros(2, int), t=np.zeros(3, int), p=np.zeros(2, int),
                        sample=np.zeros(2, int), label=np.zeros(1, int)), r"'t' has shape \[3\]"),
    (lambda p: np.savez(p, x=np.zeros(2, int), y=np.zeros(2, int), t=np.zeros(2, int), p=np.zeros(2, int),
                        sample=np.array([0, 1]), label=np.zeros(1, int)), r"'sample' must hold sample indices 0\.\.0"),
    (lambda p: np.savez(p, x=np.array([0, 9]), y=np.zeros(2, int), t=np.zeros(2, int), p=np.zeros(2, int),
                        sample=np.zeros(2, int), label=np.zeros(1, int)), r"ev\.npz: sample 0: an event lies outside"),
    (lambda p: np.savez(p, x=np.array([object()], dtype=object), y=np.zeros(1), t=np.zeros(1), p=np.zeros(1),
                        sample=np.zeros(1, int), label=np.zeros(1, int)), r"object arrays cannot be read without pickle"),
])
def test_cli_bad_table_is_one_line_exit_2_and_no_file(tmp_path, make, message):
    import re

    src = tmp_path / "ev.npz"
    make(src)
    out = tmp_path / "data.npz"
    res = CliRunner().invoke(main, ["data", "from-events", str(src), "--sensor-size", "4", "3", "2",
                                    "--time-bins", "2", "-o", str(out)])
    assert res.exit_code == 2, (res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and re.search(message, lines[0]), lines
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["ev.npz"]


def test_write_npz_refuses_a_non_npz_name(tmp_path):
    with pytest.raises(DataError, match=r"must be an \.npz file"):
        write_npz(tmp_path / "d.txt", np.zeros((1, 1, 1, 1, 1)), np.zeros(1, int))
