"""hqc.fmt: the one way quantities are written (commands and report), value by value."""

from __future__ import annotations

import pytest

from hqc.fmt import (
    format_accuracy,
    format_bits,
    format_bytes,
    format_count,
    format_energy,
    format_int,
    format_pct,
    format_ratio,
    format_seconds,
    table,
)


@pytest.mark.parametrize(("fn", "value", "text"), [
    (format_energy, None, "n/a"),
    (format_energy, 0.0, "0 pJ"),
    (format_energy, 72.06, "72.1 pJ"),
    (format_energy, 999.4, "999 pJ"),
    (format_energy, 1000.0, "1 nJ"),
    (format_energy, 25_650.0, "25.6 nJ"),
    (format_energy, 15_101_234.0, "15.1 µJ"),  # SI micro sign, not "u"
    (format_energy, 460e6, "460 µJ"),
    (format_energy, 2.5e9, "2.5 mJ"),
    (format_energy, 3e12, "3 J"),
    (format_bits, None, "n/a"),
    (format_bits, 8 * 160, "160 B"),
    (format_bits, 8 * 40_036, "40 kB"),  # decimal: 1 kB = 1000 B, not KiB
    (format_bits, 8 * 641_000, "641 kB"),
    (format_bytes, 999, "999 B"),
    (format_bytes, 1000, "1 kB"),
    (format_bytes, 55_308, "55.3 kB"),
    (format_bytes, 6_090_000, "6.09 MB"),
    (format_bytes, 2.5e9, "2.5 GB"),
    (format_count, 640, "640"),
    (format_count, 61_200, "61.2k"),
    (format_count, 77_700_000, "77.7M"),
    (format_count, 1.5e9, "1.5G"),
    (format_int, 4_194_304, "4,194,304"),
    (format_int, 19, "19"),
    (format_ratio, None, "n/a"),
    (format_ratio, 0.0, "0×"),
    (format_ratio, 0.0329, "0.0329× (30.4× less)"),
    (format_ratio, 1.0, "1×"),
    (format_ratio, 1.25, "1.25×"),
    (format_pct, 0.123, "12.3 %"),
    (format_pct, None, "n/a"),
    (format_accuracy, 0.9276, "92.76 %"),
    (format_seconds, 42.14, "42.1 s"),
    (format_seconds, 725, "12 min 5 s"),
    (format_seconds, 5400, "1 h 30 min"),
])
def test_value_to_text(fn, value, text):
    assert fn(value) == text


def test_table_aligns_and_rules_the_header():
    assert table([["layer", "bytes"], ["a", "7"], ["long_name", "1,024"]], right={1}) == [
        "layer      bytes",
        "---------  -----",
        "a              7",
        "long_name  1,024",
    ]
