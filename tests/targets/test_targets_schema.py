"""Cost-table schema: the cmos45 numbers, derivation, every validation error, round trip."""

from __future__ import annotations

import copy
import re

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from hqc.errors import TargetError
from hqc.targets import dump_table, load_table, load_target, loads_table, parse_table
from tests.support import REPO

CMOS45 = load_target("cmos45")
CMOS45_DATA = yaml.safe_load(dump_table(CMOS45))


def test_cmos45_numbers_and_sources():
    ops = CMOS45.ops
    listed = {(fmt, op, b): e.value for fmt in ops for op in ops[fmt]
              for b, e in ops[fmt][op].items()}
    assert listed == {
        ("int", "add", 8): 0.03, ("int", "add", 16): 0.05, ("int", "add", 32): 0.1,
        ("int", "mult", 8): 0.2, ("int", "mult", 32): 3.1, ("int", "shift", 8): 0.024,
        ("float", "add", 16): 0.4, ("float", "add", 32): 0.9,
        ("float", "mult", 16): 1.1, ("float", "mult", 32): 3.7,
    }
    assert CMOS45.energy_unit == "pJ"
    assert (CMOS45.memory["dram"].value, CMOS45.memory["dram"].bits) == (640.0, 32)
    assert (CMOS45.memory["sram"].value, CMOS45.memory["sram"].bits) == (5.0, 32)
    assert CMOS45.memory["sram"].capacity_bytes == 8192
    assert CMOS45.memory_energy_pj_per_bit("dram") == 20.0
    assert "Horowitz" in CMOS45.sources["horowitz2014"]
    assert "ISSCC" in CMOS45.sources["horowitz2014"]
    assert "ShiftAddViT" in CMOS45.sources["you2023shiftaddvit"]
    assert CMOS45.ops["int"]["shift"][8].source == "you2023shiftaddvit"
    assert CMOS45.derive == {"add": "linear", "mult": "quadratic", "shift": "linear"}


def test_listed_width_is_not_derived():
    e = CMOS45.op_energy("int", "add", 16)
    assert (e.energy_pj, e.derived) == (0.05, False)


def test_derivation_anchor_is_nearest_width_ties_to_larger():
    # int add lists 8, 16, 32. 12 is equidistant from 8 and 16: the larger (16) anchors.
    e = CMOS45.op_energy("int", "add", 12)
    assert (e.anchor_bits, e.rule, e.derived) == (16, "linear", True)
    assert e.energy_pj == pytest.approx(0.05 * 12 / 16, rel=1e-12)
    # 11 is nearest to 8.
    assert CMOS45.op_energy("int", "add", 11).anchor_bits == 8
    # int mult lists 8, 32: 20 is a tie -> 32; quadratic.
    e = CMOS45.op_energy("int", "mult", 20)
    assert e.anchor_bits == 32
    assert e.energy_pj == pytest.approx(3.1 * (20 / 32) ** 2, rel=1e-12)
    assert e.describe() == "int.mult.20 (quadratic from 32 bits)"


def test_derive_none_refuses_unlisted_widths():
    data = copy.deepcopy(CMOS45_DATA)
    data["derive"]["mult"] = "none"
    t = parse_table(data, origin="t.yaml")
    assert t.op_energy("int", "mult", 8).energy_pj == 0.2
    with pytest.raises(TargetError, match=re.escape(
            "t.yaml:ops.int.mult: no 4-bit entry and derive.mult is none (listed widths: 8, 32)")):
        t.op_energy("int", "mult", 4)


def test_energy_unit_is_converted_to_pj():
    data = copy.deepcopy(CMOS45_DATA)
    data["units"]["energy"] = "fJ"
    data["ops"]["int"]["add"][32]["value"] = 100
    t = parse_table(data)
    assert t.op_energy("int", "add", 32).energy_pj == pytest.approx(0.1, rel=1e-12)
    assert t.memory_energy_pj_per_bit() == pytest.approx(0.02, rel=1e-12)


def test_example_table_is_valid_and_marked_illustrative():
    path = REPO / "examples" / "targets" / "mychip.yaml"
    t = load_table(path)
    assert t.name == "mychip"
    assert "ILLUSTRATIVE" in t.description
    assert "ILLUSTRATIVE" in path.read_text()


# ------------------------------------------------------------------------ errors


def _set(path: str, value):
    def mutate(d):
        *parents, last = path.split(".")
        for p in parents:
            d = d[int(p) if p.isdigit() else p]
        d[int(last) if last.isdigit() else last] = value
    return mutate


def _del(path: str):
    def mutate(d):
        *parents, last = path.split(".")
        for p in parents:
            d = d[int(p) if p.isdigit() else p]
        del d[int(last) if last.isdigit() else last]
    return mutate


SCHEMA_ERRORS = [
    (_set("schema", 2), "schema: unsupported schema version 2; expected 1"),
    (_del("schema"), "schema: missing required key"),
    (_set("colour", "red"), "colour: unknown key (expected one of schema, name, "),
    (_set("ops.int.div", {8: {"value": 1, "source": "horowitz2014"}}),
     "ops.int.div: unknown key (expected one of add, mult, shift, compare)"),
    (_set("ops.float.shift", {8: {"value": 1, "source": "horowitz2014"}}),
     "ops.float.shift: unknown key (expected one of add, mult, compare)"),
    (_set("ops.int.add.8.unit", "pJ"),
     "ops.int.add.8.unit: unknown key (expected one of value, source, note)"),
    (_del("units"), "units: missing required key"),
    (_del("units.energy"), "units.energy: missing required key"),
    (_set("units.energy", "joules"), "units.energy: expected one of fJ, pJ, nJ, uJ, got 'joules'"),
    (_set("ops.int.add.8.value", "abc"),
     "ops.int.add.8.value: expected a number >= 0, got 'abc'"),
    (_set("ops.int.add.8.value", True), "ops.int.add.8.value: expected a number >= 0, got True"),
    (_set("ops.float.mult.32.value", -3.7),
     "ops.float.mult.32.value: expected a finite number >= 0, got -3.7"),
    (_set("ops.int.mult.8.value", float("nan")),
     "ops.int.mult.8.value: expected a finite number >= 0, got nan"),
    (_set("ops.int.mult.8.value", float("inf")),
     "ops.int.mult.8.value: expected a finite number >= 0, got inf"),
    (_set("memory.dram.value", "640 pJ"),
     "memory.dram.value: expected a number >= 0, got '640 pJ'"),
    (_del("ops.int.shift"), "ops.int.shift: missing required key"),
    (_del("ops.float"), "ops.float: missing required key"),
    (_set("ops.int.shift", {}),
     "ops.int.shift: expected at least one bit width (e.g. 8: {value: ..., source: ...})"),
    (_set("ops.int.add.eight", {"value": 1, "source": "horowitz2014"}),
     "ops.int.add.eight: expected a positive integer bit width as key, got 'eight'"),
    (_set("ops.int.add.0", {"value": 1, "source": "horowitz2014"}),
     "ops.int.add.0: expected a positive integer bit width as key, got 0"),
    (_del("ops.int.add.8.source"), "ops.int.add.8.source: missing required key"),
    (_set("ops.int.add.8.source", "nobody"),
     "ops.int.add.8.source: unknown source 'nobody' (keys defined in sources: horowitz2014, "
     "you2023shiftaddvit)"),
    (_del("sources"), "sources: missing required key"),
    (_set("sources", {}), "sources: expected at least one citation (key: citation text)"),
    (_set("sources.horowitz2014", ""), "sources.horowitz2014: expected a non-empty string"),
    (_del("memory.dram"), "memory.dram: missing required key"),
    (_del("memory.dram.source"), "memory.dram.source: missing required key"),
    (_set("memory.dram.bits", 0), "memory.dram.bits: expected a positive integer, got 0"),
    (_set("memory.hbm", {"value": 1, "bits": 8, "source": "horowitz2014"}),
     "memory.hbm: unknown key (expected one of dram, sram)"),
    (_set("derive.mult", "cubic"),
     "derive.mult: expected one of linear, quadratic, none, got 'cubic'"),
    (_del("derive.shift"), "derive.shift: missing required key"),
    (_set("name", "my chip"), "name: expected letters, digits, '_', '-' or '.', got 'my chip'"),
    (_set("ops.int", [1, 2]), "ops.int: expected a mapping, got [1, 2]"),
]


@pytest.mark.parametrize("mutate,message", SCHEMA_ERRORS, ids=[m for _, m in SCHEMA_ERRORS])
def test_schema_error_names_file_key_and_expectation(tmp_path, mutate, message):
    data = copy.deepcopy(CMOS45_DATA)
    mutate(data)
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(TargetError) as info:
        load_table(path)
    text = str(info.value)
    assert text.startswith(f"{path}:{message}"), text
    assert "\n" not in text


@pytest.mark.parametrize("content,message", [
    ("", "<top>: expected a mapping, the file is empty"),
    ("- 1\n- 2\n", "<top>: expected a mapping, got [1, 2]"),
    ("schema: 1\nname: [unclosed\n", ": not valid YAML at line 3, column 1: expected ',' or ']', but got '<stream end>'"),
    # The version is checked before the keys: a newer table reports its version.
    ("schema: 2\nfuture_key: 1\n", ":schema: unsupported schema version 2; expected 1"),
])
def test_file_level_errors(tmp_path, content, message):
    path = tmp_path / "t.yaml"
    path.write_text(content)
    with pytest.raises(TargetError, match=re.escape(f"{path}{message}"
                                                    if message.startswith(":")
                                                    else f"{path}:{message}")):
        load_table(path)


def test_missing_file(tmp_path):
    with pytest.raises(TargetError, match=r"nope\.yaml: no such cost table file"):
        load_table(tmp_path / "nope.yaml")


@pytest.mark.parametrize("make,message", [
    (lambda p: p.mkdir(), "is a folder, not a cost table file"),
    (lambda p: p.write_bytes(b"schema: 1\nname: \xff\n"), "not UTF-8 text"),
])
def test_unreadable_file_is_the_yaml_loaders_message(tmp_path, make, message):
    path = tmp_path / "t.yaml"
    make(path)
    with pytest.raises(TargetError) as e:
        load_table(path)
    assert str(e.value) == f"{path}: {message}"


def test_loads_table_names_its_origin():
    with pytest.raises(TargetError) as e:
        loads_table("a: [\n", origin="pkg:table")
    assert str(e.value).startswith("pkg:table: not valid YAML at line 2, column 1: ")


# ------------------------------------------------------------------------ round trip


def test_cmos45_round_trip():
    text = dump_table(CMOS45)
    again = loads_table(text)
    assert again == CMOS45
    assert dump_table(again) == text


_value = st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False)
_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")),
                min_size=1, max_size=30).filter(lambda s: s.strip())
_key = st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True)


@st.composite
def tables(draw):
    source_keys = draw(st.lists(_key, min_size=1, max_size=3, unique=True))
    sources = {k: draw(_text) for k in source_keys}

    def entry():
        e = {"value": draw(_value), "source": draw(st.sampled_from(source_keys))}
        if draw(st.booleans()):
            e["note"] = draw(_text)
        return e

    def widths():
        return {b: entry() for b in draw(st.lists(st.integers(1, 64), min_size=1, max_size=4,
                                                  unique=True))}

    memory = {"dram": {"value": draw(_value), "bits": draw(st.integers(1, 512)),
                       "source": source_keys[0]}}
    if draw(st.booleans()):
        memory["sram"] = {"value": draw(_value), "bits": draw(st.integers(1, 64)),
                          "capacity_bytes": draw(st.integers(1, 2**30)),
                          "source": source_keys[-1], "note": draw(_text)}
    return {
        "schema": 1,
        "name": draw(st.from_regex(r"[a-z0-9][a-z0-9_.-]{0,12}", fullmatch=True)),
        "technology": draw(_text),
        "description": draw(st.one_of(st.just(""), _text)),
        "units": {"energy": draw(st.sampled_from(["fJ", "pJ", "nJ", "uJ"]))},
        "sources": sources,
        "ops": {"int": {"add": widths(), "mult": widths(), "shift": widths()},
                "float": {"add": widths(), "mult": widths()}},
        "memory": memory,
        "derive": {op: draw(st.sampled_from(["linear", "quadratic", "none"]))
                   for op in ("add", "mult", "shift")},
    }


@settings(max_examples=150, deadline=None)
@given(tables())
def test_load_dump_load_is_identity(data):
    first = parse_table(data)
    text = dump_table(first)
    second = loads_table(text)
    assert second == first
    assert dump_table(second) == text
