"""The layout of tests/: it mirrors the packages under test (tests/toolchain/… for hqc and
its subpackages, tests/passes for hqc.passes, tests/targets for hqc.targets, tests/e2e for
whole-chain runs over the shipped examples and the model zoo), shared code lives in
tests/support (no tests there), and no module (test, support, benchmark, example) imports a test module."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent
TEST_DIRS = {"", "toolchain", "toolchain/lowering", "toolchain/intops", "toolchain/report",
             "toolchain/search", "toolchain/ckernels", "passes", "targets", "e2e"}


def _test_modules() -> list[Path]:
    return sorted(TESTS.rglob("test_*.py"))


def _imported(tree: ast.AST) -> list[str]:
    """Every dotted module name an import statement names, with `from X import Y` giving
    both X and X.Y (Y may be a module)."""
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            names.append(base)
            names += [f"{base}.{a.name}" if node.module or node.level else a.name for a in node.names]
    return names


def test_no_module_imports_a_test_module():
    """Neither a test module nor the support code, the benchmarks or the examples."""
    repo = TESTS.parent
    paths = sorted(TESTS.rglob("*.py")) + sorted((repo / "benchmarks").rglob("*.py")) + sorted(
        (repo / "examples").rglob("*.py"))
    offenders = []
    for path in paths:
        for name in _imported(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if any(part.startswith("test_") for part in name.split(".")):
                offenders.append(f"{path.relative_to(repo)}: {name}")
    assert offenders == [], "shared code belongs in tests/support or conftest.py:\n" + "\n".join(offenders)


def test_imports_checker_sees_each_form(tmp_path):
    """The checker above on the four ways one module can import another."""
    for src in ("import tests.test_x", "from tests.test_x import A", "from tests import test_x",
                "from .test_x import A"):
        assert any("test_x" in n.split(".") for n in _imported(ast.parse(src))), src
    assert not any(p.startswith("test_") for n in _imported(ast.parse("from tests.support.data import TINY"))
                   for p in n.split("."))


def test_tests_live_in_the_mirrored_tree():
    dirs = {str(p.parent.relative_to(TESTS)).replace(".", "") for p in _test_modules()}
    assert dirs <= TEST_DIRS, dirs - TEST_DIRS
    assert not list((TESTS / "support").rglob("test_*.py"))
    for d in dirs - {""}:
        assert (TESTS / d / "__init__.py").is_file(), d  # same basenames in two folders stay distinct
