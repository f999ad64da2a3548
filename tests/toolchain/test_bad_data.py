"""Bad data files: `load_data` refuses each with one line naming the file and the key;
nothing is ever unpickled."""

from __future__ import annotations

import io
import re
import zipfile

import numpy as np
import pytest

from hqc.data import load_data
from hqc.errors import DataError

SHAPE = (4, 2, 8, 8)


def _good(n=6):
    rng = np.random.default_rng(0)
    return {"x": (rng.random((n, *SHAPE)) < 0.3).astype(np.float32), "y": rng.integers(0, 10, n)}


def _save(tmp_path, arrays, name="d.npz"):
    p = tmp_path / name
    np.savez(p, **arrays)
    return p


def _pickled(tmp_path):
    p = tmp_path / "d.npz"
    arrays = _good()
    obj = np.empty(6, dtype=object)
    obj[:] = [{"evil": i} for i in range(6)]
    np.savez(p, x=arrays["x"], y=obj)
    return p


CASES = {
    "object array (pickle)": (_pickled, r"cannot be read without pickle"),
    "string dtype": (lambda t: _save(t, {**_good(), "y": np.array(list("abcdef"))}), r"'y' has dtype <U1; expected a numeric array"),
    "wrong rank": (lambda t: _save(t, {**_good(), "x": np.zeros((6, 2, 8, 8), np.float32)}), r"'x' samples have shape \[2, 8, 8\]; the model expects \[4, 2, 8, 8\]"),
    "NaN": (lambda t: _save(t, {**_good(), "x": np.full((6, *SHAPE), np.nan, np.float32)}), r"'x' contains NaN or Inf"),
    "label out of range": (lambda t: _save(t, {**_good(), "y": np.array([0, 1, 2, 3, 4, 12])}), r"'y' has label 12, outside 0\.\.9"),
    "negative label": (lambda t: _save(t, {**_good(), "y": np.array([0, 1, 2, 3, 4, -1])}), r"'y' has label -1"),
    "fractional label": (lambda t: _save(t, {**_good(), "y": np.array([0, 1.5, 2, 3, 4, 5])}), r"'y' must hold integer class labels"),
    "mismatched N": (lambda t: _save(t, {**_good(), "y": np.arange(5)}), r"'x' has 6 samples but 'y' has 5"),
    "empty split": (lambda t: _save(t, {"x": np.zeros((0, *SHAPE), np.float32), "y": np.zeros(0, np.int64)}), r"split 'train' \('x'\) is empty"),
    "missing y": (lambda t: _save(t, {"x": _good()["x"]}), r"missing key 'y'"),
    "val without labels": (lambda t: _save(t, {**_good(), "x_val": _good()["x"]}), r"'x_val' and 'y_val' must come together"),
    "labels of rank 2": (lambda t: _save(t, {**_good(), "y": np.zeros((6, 1), np.int64)}), r"'y' has shape \[6, 1\]; expected \(N,\)"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_npz_is_one_clear_line(tmp_path, case):
    make, pattern = CASES[case]
    p = make(tmp_path)
    with pytest.raises(DataError) as info:
        load_data(p, SHAPE, num_classes=10)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(str(p))
    assert re.search(pattern, msg), msg


def test_not_a_zip(tmp_path):
    p = tmp_path / "d.npz"
    p.write_bytes(b"PK\x03\x04 broken")
    with pytest.raises(DataError, match="not a readable NPZ file"):
        load_data(p)


def test_single_npy_is_refused(tmp_path):
    p = tmp_path / "d.npz"
    buf = io.BytesIO()
    np.save(buf, np.zeros(3))
    p.write_bytes(buf.getvalue())
    with pytest.raises(DataError, match="not an NPZ archive"):
        load_data(p)


def test_truncated_member(tmp_path):
    p = _save(tmp_path, _good())
    with zipfile.ZipFile(p) as z:
        data = {n: z.read(n) for n in z.namelist()}
    with zipfile.ZipFile(p, "w") as z:
        for n, b in data.items():
            z.writestr(n, b[: len(b) // 2])
    with pytest.raises(DataError, match=r"cannot be read"):
        load_data(p)


def test_good_file_loads_with_fingerprint(tmp_path):
    p = _save(tmp_path, {**_good(), "x_val": _good(4)["x"], "y_val": _good(4)["y"]})
    ds = load_data(p, SHAPE, num_classes=10)
    assert len(ds.train) == 6 and len(ds.split("val")) == 4
    assert len(ds.fingerprint) == 16 and ds.train.x.dtype == np.float32 and ds.train.y.dtype == np.int64
