"""Discovery of cost tables: built-in name, path, and the `hqc.targets` entry-point group."""

from __future__ import annotations

import re
import sys
import textwrap
import uuid

import pytest
import yaml

from hqc.errors import TargetError
from hqc.targets import dump_table, is_path_spec, list_targets, load_target

CMOS45_TEXT = dump_table(load_target("cmos45"))


def _table_text(name: str) -> str:
    data = yaml.safe_load(CMOS45_TEXT)
    data["name"] = name
    return yaml.safe_dump(data, sort_keys=False)


@pytest.fixture
def plugin_dist(tmp_path, monkeypatch):
    """Make an installed-looking distribution in tmp_path: a dist-info and a package."""
    created_modules: list[str] = []

    def make(entry_points: dict[str, str], files: dict[str, str], package: str) -> str:
        dist = f"{package.replace('_', '-')}"
        info = tmp_path / f"{package}-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
        lines = ["[hqc.targets]"] + [f"{k} = {v}" for k, v in entry_points.items()]
        (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
        pkg = tmp_path / package
        pkg.mkdir()
        for name, text in files.items():
            (pkg / name).write_text(text)
        created_modules.append(package)
        return dist

    monkeypatch.syspath_prepend(str(tmp_path))
    yield make
    for name in created_modules:
        sys.modules.pop(name, None)


def test_builtin_by_name():
    t = load_target("cmos45")
    assert t.name == "cmos45"
    assert t.origin.endswith("cmos45.yaml")
    infos = {i.name: i for i in list_targets()}
    assert infos["cmos45"].origin == "builtin"


@pytest.mark.parametrize("spec", ["./chip.yaml", "chip.yaml", "chip.yml", "sub/chip"])
def test_user_table_by_path(tmp_path, monkeypatch, spec):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    (tmp_path / spec).write_text(_table_text("userchip"))
    assert is_path_spec(spec)
    t = load_target(spec)
    assert t.name == "userchip"
    assert t.origin == spec


def test_path_error_names_file(tmp_path):
    with pytest.raises(TargetError, match=r"missing\.yaml: no such cost table file"):
        load_target(str(tmp_path / "missing.yaml"))


def test_unknown_name_lists_known_targets():
    with pytest.raises(TargetError, match=re.escape(
            "unknown target 'nope': known targets are cmos45")):
        load_target("nope")


def test_entry_point_yaml_resource_and_callables(plugin_dist):
    package = f"hqcplug_{uuid.uuid4().hex[:8]}"
    plugin_dist(
        {
            "epchip": f"{package}:epchip.yaml",
            "fnpath": f"{package}:table_path",
            "fndict": f"{package}:table_dict",
        },
        {
            "epchip.yaml": _table_text("epchip"),
            "fnpath.yaml": _table_text("fnpath"),
            "__init__.py": textwrap.dedent("""
                from pathlib import Path
                import yaml

                def table_path():
                    return Path(__file__).with_name("fnpath.yaml")

                def table_dict():
                    data = yaml.safe_load(Path(__file__).with_name("epchip.yaml").read_text())
                    data["name"] = "fndict"
                    return data
            """),
        },
        package,
    )
    infos = {i.name: i for i in list_targets()}
    for name in ("epchip", "fnpath", "fndict"):
        assert infos[name].origin == "entry point"
        assert package in infos[name].location
        t = load_target(name)
        assert t.name == name
        assert t.op_energy("int", "mult", 8).energy_pj == 0.2
    assert "epchip" in str(load_target("epchip").origin)


def test_entry_point_errors(plugin_dist):
    package = f"hqcplug_{uuid.uuid4().hex[:8]}"
    plugin_dist(
        {
            "misnamed": f"{package}:other.yaml",
            "broken": f"{package}:broken.yaml",
            "badtype": f"{package}:not_a_table",
            "cmos45": f"{package}:other.yaml",
        },
        {
            "other.yaml": _table_text("other"),
            "broken.yaml": _table_text("broken").replace("schema: 1", "schema: 7"),
            "__init__.py": "def not_a_table():\n    return 42\n",
        },
        package,
    )
    with pytest.raises(TargetError, match=r"other\.yaml:name: table is named 'other' but was "
                                          r"found as 'misnamed'"):
        load_target("misnamed")
    with pytest.raises(TargetError, match=r"broken\.yaml:schema: unsupported schema version 7"):
        load_target("broken")
    with pytest.raises(TargetError, match=r"entry point 'badtype' .*: expected a path, a mapping "
                                          r"or a resource, got int"):
        load_target("badtype")
    # A built-in name wins over an entry point of the same name, which is listed as shadowed.
    assert load_target("cmos45").origin.endswith("cmos45.yaml")
    shadowed = [i for i in list_targets() if i.name == "cmos45" and i.origin == "entry point"]
    assert len(shadowed) == 1 and shadowed[0].shadowed


def test_same_entry_point_name_from_two_packages(plugin_dist):
    a, b = (f"hqcplug_{uuid.uuid4().hex[:8]}" for _ in range(2))
    plugin_dist({"twin": f"{a}:twin.yaml"}, {"twin.yaml": _table_text("twin")}, a)
    plugin_dist({"twin": f"{b}:twin.yaml"}, {"twin.yaml": _table_text("twin")}, b)
    with pytest.raises(TargetError, match=r"target 'twin' is provided by several packages: "):
        load_target("twin")
