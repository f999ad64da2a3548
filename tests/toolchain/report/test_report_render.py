"""Screenshot check (slow): report.html renders in headless Chromium to a non-trivial PNG.

Needs Chromium from Debian's packages (`apt-get install -y chromium`); without it the test
fails and says so (it is not skipped). Run with `pytest -m slow tests/toolchain/report/test_report_render.py`.
"""

from __future__ import annotations

import importlib.util
import shutil

import pytest

from tests.support import REPO as ROOT


def _render_module():
    spec = importlib.util.spec_from_file_location("render_report",
                                                  ROOT / "benchmarks" / "render_report.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_report_html_renders_in_chromium(tmp_path):
    rr = _render_module()
    if not any(shutil.which(n) for n in rr.CHROMIUM_NAMES):
        pytest.fail("chromium is not installed: run `apt-get update && apt-get install -y "
                    "chromium` (as root) to run the report screenshot check")
    from hqc.report import build_report, write_report

    files = write_report(tmp_path, build_report(**rr.synthetic_inputs(blocks=2, epochs=12)))
    png = rr.screenshot(files["html"], tmp_path / "report.png", 1280, 3000)
    facts = rr.png_facts(png)
    assert (facts["width"], facts["height"]) == (1280, 3000)
    # A blank (single-colour) page filters to a handful of byte values; text and charts
    # use nearly all 256.
    assert facts["distinct_byte_values"] >= 128, facts
    assert facts["bytes"] > 50_000, facts
