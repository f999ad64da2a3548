"""Small data: the search's stratified hold-out keeps one sample per class aside where a
class has two or more, so 20 samples of 10 classes work; 1 sample per class is one clear
error that names the minimum."""

from __future__ import annotations

import re

import numpy as np
import pytest
from click.testing import CliRunner

import hqc.search.driver as search_driver
from hqc.cli import main
from hqc.search import SearchConfig, holdout_split, run_search
from tests.support.data import TINY
from tests.support.zoo import example_spikformer

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize(("per_class", "held_per_class"), [(1, 0), (2, 1), (3, 1), (5, 1), (8, 2), (10, 2), (100, 20)])
def test_holdout_per_class_is_round_fraction_at_least_one_at_most_n_minus_one(per_class, held_per_class):
    y = np.repeat(np.arange(10), per_class)
    keep, held = holdout_split(y, 0.2, seed=0)
    assert np.bincount(y[held], minlength=10).tolist() == [held_per_class] * 10
    assert np.bincount(y[keep], minlength=10).tolist() == [per_class - held_per_class] * 10
    assert np.array_equal(np.sort(np.concatenate([keep, held])), np.arange(y.size))


def test_holdout_mixed_classes_and_determinism():
    y = np.array([0, 1, 1, 2, 2, 2])
    keep, held = holdout_split(y, 0.2, seed=3)
    assert sorted(y[held].tolist()) == [1, 2]  # class 0 (1 sample) stays in training
    again = holdout_split(y, 0.2, seed=3)
    assert np.array_equal(keep, again[0]) and np.array_equal(held, again[1])


@pytest.fixture(scope="module")
def tiny(zoo_build):
    return zoo_build(example_spikformer, TINY).onnx_path


def _two_per_class(path, per_class):
    y = np.repeat(np.arange(10), per_class)
    rng = np.random.default_rng(1)
    x = (rng.random((y.size, 2, 2, 16, 16)) < 0.2).astype(np.uint8)
    np.savez(path, x=x, y=y)  # no val split: the search evaluates on its hold-out
    return path


def test_twenty_samples_of_ten_classes_search(tiny, tmp_path, monkeypatch):
    data = _two_per_class(tmp_path / "d.npz", 2)
    seen = []

    def spy(y, fraction, seed):
        out = holdout_split(y, fraction, seed)
        seen.append((np.bincount(y[out[0]], minlength=10).tolist(), np.bincount(y[out[1]], minlength=10).tolist()))
        return out

    monkeypatch.setattr(search_driver, "holdout_split", spy)
    res = run_search(tiny, data, out_dir=tmp_path / "o",
                     config=SearchConfig(epochs=1, finetune_epochs=0, batch_size=10))
    assert seen == [([1] * 10, [1] * 10)]
    assert res.document["accuracy"]["split"] == "holdout"
    # accuracy on the 10 held-out samples: a multiple of 1/10
    assert round(res.fake_quant_accuracy * 10, 6) == round(res.fake_quant_accuracy * 10)


def test_one_sample_per_class_is_one_line_naming_the_minimum(tiny, tmp_path):
    data = _two_per_class(tmp_path / "d.npz", 1)
    res = CliRunner().invoke(main, ["search", str(tiny), "--data", str(data), "-o", str(tmp_path / "o"),
                                    "--no-progress"])
    assert res.exit_code == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1
    assert re.fullmatch(r"error: .*d\.npz: the training split has 10 samples of 10 classes, one per class; "
                        r"the search holds out samples for its architecture step and needs at least 2 samples "
                        r"of a class \(2 per class to hold out one of each\); give more data or --plan to skip it",
                        lines[0]), lines[0]
    assert not (tmp_path / "o").exists()

