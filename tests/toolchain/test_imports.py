"""Every module of hqc imports on its own, as the first hqc module of a process: an import
cycle that only bites in one order (lowering → passes → lower-int → lowering) fails here."""

from __future__ import annotations

import subprocess
import sys

_SCRIPT = r"""
import importlib, pkgutil, sys
import hqc
names = sorted({m.name for m in pkgutil.walk_packages(hqc.__path__, "hqc.")} | {"hqc"})
failed = []
for name in names:
    for k in [k for k in sys.modules if k == "hqc" or k.startswith("hqc.")]:
        del sys.modules[k]
    try:
        importlib.import_module(name)
    except Exception as e:
        failed.append(f"{name}: {type(e).__name__}: {e}")
print(len(names))
print("\n".join(failed))
"""


def test_every_module_imports_first():
    p = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    count, *failed = p.stdout.strip().split("\n")
    assert int(count) > 40
    assert [f for f in failed if f] == []
