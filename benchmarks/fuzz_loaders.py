"""Fuzz the ONNX, YAML (target, plan, config) and NPZ loaders with hypothesis.

    python benchmarks/fuzz_loaders.py --n 10000        # per loader
    python benchmarks/fuzz_loaders.py --n 2000 --only npz

Property: every input either loads or raises hqc's typed error (one line for the CLI);
any other exception is a crash and is printed with the input that caused it. Prints the
count of inputs tried per loader and the crash count. atheris is used too when installed
(`--atheris`), else only hypothesis.
"""

from __future__ import annotations

import argparse
import logging
import time
import traceback

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hqc.fuzz import TARGETS, mutate


def run(name: str, n: int) -> tuple[int, list[str]]:
    fn, seed_fn = TARGETS[name]
    seed = seed_fn()
    crashes: list[str] = []
    count = 0
    edits = st.lists(st.tuples(st.integers(0, 5), st.integers(0, 1 << 20), st.integers(0, 255)), min_size=1, max_size=8)
    inputs = st.one_of(edits.map(lambda ops: mutate(seed, ops)), st.binary(max_size=512), st.just(seed))

    @settings(max_examples=n, deadline=None, database=None, suppress_health_check=list(HealthCheck), derandomize=False)
    @given(inputs)
    def check(data: bytes) -> None:
        nonlocal count
        count += 1
        try:
            fn(data)
        except Exception as exc:  # a crash: not an HqcError
            frames = "".join(traceback.format_exc().splitlines(True)[-8:])
            crashes.append(f"{type(exc).__name__}: {exc}\n{frames}\ninput={data[:200]!r}")

    check()
    return count, crashes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10000, help="inputs per loader")
    ap.add_argument("--only", choices=sorted(TARGETS), default=None)
    args = ap.parse_args()
    logging.disable(logging.CRITICAL)
    total, total_crashes = 0, 0
    print(f"{'loader':12} {'inputs':>8} {'crashes':>8} {'seconds':>8}")
    for name in [args.only] if args.only else sorted(TARGETS):
        t0 = time.perf_counter()
        count, crashes = run(name, args.n)
        total += count
        total_crashes += len(crashes)
        print(f"{name:12} {count:>8} {len(crashes):>8} {time.perf_counter() - t0:>8.1f}")
        for c in crashes[:3]:
            print("  CRASH", c)
    print(f"{'total':12} {total:>8} {total_crashes:>8}")
    raise SystemExit(1 if total_crashes else 0)


if __name__ == "__main__":
    main()
