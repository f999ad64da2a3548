"""Bad YAML files of every kind hqc reads (cost table, plan, config): alias bombs,
non-UTF-8, wrong shapes — one line naming the file and the problem, exit 2."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from hqc.cli import main
from hqc.config import CompileConfig
from hqc.errors import ConfigError, PlanError, TargetError
from hqc.plan import load_plan_yaml
from hqc.targets import load_table

BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)
)
NOT_UTF8 = b"name: \xff\xfe\xfd\n"


@pytest.mark.parametrize(
    ("loader", "error"),
    [(load_table, TargetError), (load_plan_yaml, PlanError), (CompileConfig.from_file, ConfigError)],
)
def test_alias_bomb_is_refused(tmp_path, loader, error):
    p = tmp_path / "bomb.yaml"
    p.write_text(BOMB)
    with pytest.raises(error, match=r"bomb\.yaml: YAML anchors and aliases are not allowed \(line 1\)"):
        loader(p)


@pytest.mark.parametrize(
    ("loader", "error"),
    [(load_table, TargetError), (load_plan_yaml, PlanError), (CompileConfig.from_file, ConfigError)],
)
def test_non_utf8_is_refused(tmp_path, loader, error):
    p = tmp_path / "bin.yaml"
    p.write_bytes(NOT_UTF8)
    with pytest.raises(error, match=r"bin\.yaml: .*(UTF-8|utf-8|decode)"):
        loader(p)


def test_validate_cli_on_bomb(tmp_path):
    p = tmp_path / "bomb.yaml"
    p.write_text(BOMB)
    res = CliRunner().invoke(main, ["targets", "validate", str(p)])
    assert res.exit_code == 2
    lines = [ln for ln in (res.stderr + res.stdout).splitlines() if ln.strip()]
    assert len(lines) == 1 and re.search(r"anchors and aliases are not allowed", lines[0])
