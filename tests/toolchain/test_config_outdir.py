"""Compile config round trip and validation; atomic output folders."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hqc.config import CompileConfig
from hqc.errors import ConfigError
from hqc.outdir import OutputError, atomic_dir


@given(
    lam=st.one_of(st.none(), st.floats(min_value=0, max_value=100, allow_nan=False)),
    epochs=st.integers(0, 50),
    seed=st.integers(0, 2**31 - 1),
    plan=st.one_of(st.none(), st.text(min_size=1, max_size=20)),
)
def test_config_load_dump_load_is_identity(lam, epochs, seed, plan):
    cfg = CompileConfig(model="m.onnx", data="d.npz", lambda_=lam, epochs=epochs, seed=seed, plan=plan)
    import yaml

    again = CompileConfig.from_dict(yaml.safe_load(cfg.to_yaml()))
    assert again == cfg
    assert CompileConfig.from_dict(yaml.safe_load(again.to_yaml())).to_yaml() == cfg.to_yaml()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("epochz: 3\n", r"c\.yaml:epochz: unknown option"),
        ("epochs: three\n", r"c\.yaml:epochs: expected an integer"),
        ("lambda: -1\n", r"c\.yaml: lambda must be ≥ 0"),
        ("stop_after: nowhere\n", r"stop_after 'nowhere' is not a stage"),
        ("schema: hqc.config/9\n", r"c\.yaml:schema: expected 'hqc.config/1'"),
        ("epochs: [\n", r"c\.yaml: not valid YAML at line"),
        ("- a\n- b\n", r"c\.yaml: expected a mapping of options"),
    ],
)
def test_config_errors_name_file_and_key(tmp_path, text, message):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=message):
        CompileConfig.from_file(p)


def test_atomic_dir_complete_or_nothing(tmp_path):
    final = tmp_path / "out"
    with atomic_dir(final) as d:
        (d / "a.txt").write_text("1")
    assert (final / "a.txt").read_text() == "1"
    with pytest.raises(RuntimeError), atomic_dir(final) as d:
        (d / "b.txt").write_text("2")
        raise RuntimeError("boom")
    assert sorted(os.listdir(tmp_path)) == ["out"]
    assert not (final / "b.txt").exists() and (final / "a.txt").exists()
    with pytest.raises(KeyboardInterrupt), atomic_dir(tmp_path / "new") as d:
        (d / "c.txt").write_text("3")
        raise KeyboardInterrupt
    assert sorted(os.listdir(tmp_path)) == ["out"]


def test_atomic_dir_replaces_existing(tmp_path):
    final = tmp_path / "out"
    final.mkdir()
    (final / "old.txt").write_text("old")
    with atomic_dir(final) as d:
        (d / "new.txt").write_text("new")
    assert sorted(os.listdir(final)) == ["new.txt"]
    assert sorted(os.listdir(tmp_path)) == ["out"]


def test_unwritable_output_location_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    with pytest.raises(OutputError, match=r"cannot create the output folder"), atomic_dir(blocker / "out"):
        pass
    assert sorted(os.listdir(tmp_path)) == ["file.txt"]
