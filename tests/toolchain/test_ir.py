"""IR: construction, edges of repeated operands, deterministic order, verify."""

from __future__ import annotations

import numpy as np

from hqc.ir import Graph, verify


def _square_graph() -> Graph:
    g = Graph()
    g.inputs = ["x"]
    g.add_node("Mul", ["x", "x"], ["y"], name="sq")
    g.add_node("Add", ["y", "y"], ["z"], name="dbl")
    g.outputs = ["z"]
    return g


def test_mul_x_x_keeps_both_edges():
    g = _square_graph()
    assert g.g.number_of_edges("sq", "dbl") == 2
    assert sorted(k for _, _, k in g.g.in_edges("dbl", keys=True)) == [0, 1]
    assert verify(g) == []


def test_topological_order_is_deterministic_and_sorted_by_name():
    g = Graph()
    g.inputs = ["x"]
    for name in ["c", "a", "b"]:
        g.add_node("Neg", ["x"], [f"o_{name}"], name=name)
    g.add_node("Sum3", ["o_a", "o_b", "o_c"], ["y"], name="z")
    g.outputs = ["y"]
    assert g.topo_order() == ["a", "b", "c", "z"]
    assert g.copy().topo_order() == g.topo_order()


def test_verify_reports_undefined_tensor_and_unproduced_output():
    g = Graph()
    g.inputs = ["x"]
    g.add_node("Add", ["x", "ghost"], ["y"], name="add")
    g.outputs = ["nothing"]
    problems = verify(g)
    assert any("undefined tensor 'ghost'" in p for p in problems)
    assert any("'nothing' is not produced" in p for p in problems)


def test_replace_uses_and_remove_dead():
    g = _square_graph()
    g.add_const("k", np.ones(3, np.float32))
    g.add_node("Neg", ["x"], ["n"], name="neg")
    g.replace_uses("y", "n")
    assert g.node("dbl").inputs == ["n", "n"]
    removed = g.remove_dead()
    assert removed == 1 and "sq" not in g.g and "k" not in g.constants
    assert verify(g) == []


def test_adding_a_producer_later_links_existing_consumers():
    g = Graph()
    g.inputs = ["x"]
    g.add_node("Neg", ["t"], ["y"], name="user")
    g.add_node("Abs", ["x"], ["t"], name="maker")
    g.outputs = ["y"]
    assert list(g.g.predecessors("user")) == ["maker"]
    assert verify(g) == []
