"""Short fuzz run of every loader (the ≥ 10,000-input run is benchmarks/fuzz_loaders.py):
mutated and random inputs either load or raise HqcError — never another exception."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hqc.fuzz import TARGETS, mutate


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_loader_never_crashes(name):
    fn, seed_fn = TARGETS[name]
    seed = seed_fn()
    fn(seed)  # the seed itself loads (or fails cleanly)
    edits = st.lists(st.tuples(st.integers(0, 5), st.integers(0, 1 << 20), st.integers(0, 255)), min_size=1, max_size=6)

    @settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(st.one_of(edits.map(lambda ops: mutate(seed, ops)), st.binary(max_size=256)))
    def check(data: bytes) -> None:
        fn(data)

    check()
