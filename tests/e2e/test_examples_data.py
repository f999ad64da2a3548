"""The example event-data generators: determinism, file format, DVS emulator behaviour."""

from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tests.support import REPO as ROOT

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from examples.data import dvs, eventset, motion  # noqa: E402

pytest.importorskip("scipy")
SMALL = {"T": 2, "size": 16, "limit": 40}
EXPECTED_KEYS = {"x", "y", "x_val", "y_val", "x_test", "y_test", "meta"}


def _ndigits():
    pytest.importorskip("sklearn")
    from examples.data import ndigits

    return ndigits


@pytest.fixture(params=["ndigits", "motion"])
def generator(request):
    return _ndigits() if request.param == "ndigits" else motion


def _write(gen, path: Path, seed: int) -> Path:
    arrays, meta = gen.generate(seed=seed, **SMALL)
    eventset.save_npz(path, arrays, meta)
    return path


def test_same_seed_gives_byte_identical_file(generator, tmp_path):
    a = _write(generator, tmp_path / "a.npz", seed=0).read_bytes()
    b = _write(generator, tmp_path / "b.npz", seed=0).read_bytes()
    assert a == b


def test_different_seeds_differ(generator, tmp_path):
    a = np.load(_write(generator, tmp_path / "a.npz", seed=0), allow_pickle=False)
    b = np.load(_write(generator, tmp_path / "b.npz", seed=1), allow_pickle=False)
    assert not np.array_equal(a["x"], b["x"]) or not np.array_equal(a["y"], b["y"])


def test_npz_layout_and_meta(generator, tmp_path):
    path = _write(generator, tmp_path / "d.npz", seed=3)
    with np.load(path, allow_pickle=False) as f:
        assert set(f.files) == EXPECTED_KEYS
        data = {k: f[k] for k in f.files}
    meta = json.loads(str(data["meta"][()]))
    assert data["meta"].shape == () and data["meta"].dtype.kind == "U"
    assert meta["T"] == SMALL["T"] and meta["resolution"] == [SMALL["size"]] * 2
    assert meta["seed"] == 3 and meta["dtype"] == "uint8"
    n_total = 0
    for xk, yk in eventset.SPLITS:
        x, y = data[xk], data[yk]
        assert x.dtype == np.uint8 and y.dtype == np.int64
        assert x.shape[1:] == (SMALL["T"], 2, SMALL["size"], SMALL["size"])
        assert y.shape == (len(x),)
        assert y.min() >= 0 and y.max() < meta["num_classes"] == len(meta["class_names"])
        n_total += len(y)
    assert n_total == SMALL["limit"] == sum(meta["split"]["sizes"])
    assert data["x"].sum() > 0, "no events at all"


def test_zip_members_have_fixed_timestamps(tmp_path):
    path = tmp_path / "z.npz"
    eventset.save_npz(path, {"x": np.zeros((1, 1, 2, 2, 2), np.uint8)}, {"a": 1})
    with zipfile.ZipFile(path) as zf:
        assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_stratified_split_keeps_class_proportions():
    y = np.repeat(np.arange(4), 50)
    tr, va, te = eventset.stratified_split(y, (0.6, 0.2, 0.2), np.random.default_rng(0))
    assert len(np.intersect1d(tr, va)) == len(np.intersect1d(tr, te)) == 0
    assert len(tr) + len(va) + len(te) == len(y)
    for part, n in ((tr, 30), (va, 10), (te, 10)):
        assert np.array_equal(np.bincount(y[part]), [n] * 4)


def _sensor(contrast: float = 0.2, sigma: float = 0.0, noise: float = 0.0, shape=(3, 3)):
    cfg = dvs.DVSConfig(contrast, contrast, sigma, noise, log_eps=0.0)
    return dvs.make_sensor(cfg, *shape, np.random.default_rng(0))


def test_dvs_step_emits_log_contrast_over_threshold_events():
    # One column brightens by 1.01 in log: floor(1.01 / 0.2) = 5 ON events, none elsewhere.
    video = np.full((1, 2, 3, 3), 0.1)
    video[0, 1, :, 2] = 0.1 * np.exp(1.01)
    counts = dvs.emulate(video, _sensor(), T=1, rng=np.random.default_rng(0))
    assert counts.shape == (1, 1, 2, 3, 3) and counts.dtype == np.uint8
    assert counts[0, 0, 0, :, 2].tolist() == [5, 5, 5]
    assert counts[0, 0, 0, :, :2].sum() == 0 and counts[0, 0, 1].sum() == 0


def test_dvs_darkening_gives_off_events_and_reference_memory():
    # Ramp down by 0.11 log units per step, 2 steps per bin: each bin's change alone
    # (0.22) gives 1 event; the leftover 0.02 is remembered, and 0.66 gives 3 in total.
    levels = 0.5 * np.exp(-0.11 * np.arange(7))
    video = np.broadcast_to(levels[None, :, None, None], (1, 7, 2, 2)).copy()
    counts = dvs.emulate(video, _sensor(shape=(2, 2)), T=3, rng=np.random.default_rng(0))
    assert counts[0, :, 0].sum() == 0
    assert counts[0, :, 1, 0, 0].tolist() == [1, 1, 1]


def test_dvs_threshold_mismatch_is_fixed_by_seed():
    cfg = dvs.DVSConfig(threshold_sigma=0.05)
    a = dvs.make_sensor(cfg, 8, 8, np.random.default_rng(5))
    b = dvs.make_sensor(cfg, 8, 8, np.random.default_rng(5))
    assert np.array_equal(a.theta_on, b.theta_on) and a.theta_on.std() > 0
    assert not np.array_equal(a.theta_on, a.theta_off)


def test_motion_rotation_and_translation_go_the_named_way():
    # A bright spot above the centre: "up" moves it up, "rotate_cw" moves it right.
    period, size = 32, 16
    r, c = np.meshgrid(
        np.arange(period) - period / 2, np.arange(period) - period / 2, indexing="ij"
    )
    spot = np.exp(-((r + 4) ** 2 + c**2) / 2)[None]
    names = motion.CLASS_NAMES

    def peak(label: int, amount: float) -> tuple[np.ndarray, np.ndarray]:
        v = motion.render_videos(
            spot,
            np.array([label]),
            size,
            4,
            np.array([amount]),
            np.ones(1),
            np.zeros(1),
            np.zeros((1, 2)),
        )
        return tuple(np.array(np.unravel_index(v[0, k].argmax(), (size, size))) for k in (0, 4))

    start, end = peak(names.index("move_up"), 3.0)
    assert end[0] < start[0] and end[1] == start[1]
    start, end = peak(names.index("move_right"), 3.0)
    assert end[1] > start[1] and end[0] == start[0]
    start, end = peak(names.index("rotate_cw"), 0.8)
    assert end[1] > start[1]
    start, end = peak(names.index("rotate_ccw"), 0.8)
    assert end[1] < start[1]
