"""The Bloom-filter generations behind the dedup index (pure)."""

from __future__ import annotations

import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

from ingest.seen import SeenFilter


def test_every_added_key_is_seen_and_unknown_keys_almost_never() -> None:
    seen = SeenFilter(capacity=20_000)
    added = [(1, os.urandom(16).hex()) for _ in range(20_000)]
    seen.add(added, newest_start_ns=100)
    assert seen.maybe_seen(added).all()  # no false negatives, ever
    others = [(1, os.urandom(16).hex()) for _ in range(100_000)]
    assert int(seen.maybe_seen(others).sum()) <= 10  # about 1 in 100,000 at capacity
    assert not seen.maybe_seen([(2, added[0][1])])[0]  # the project is part of the key


def test_a_dropped_generation_moves_the_horizon_to_its_newest_span() -> None:
    seen = SeenFilter(capacity=10)
    first = [(1, f"a{n}") for n in range(10)]
    seen.add(first, newest_start_ns=1_000)
    assert seen.horizon == 0
    seen.add([(1, f"b{n}") for n in range(10)], newest_start_ns=2_000)  # first becomes the previous generation
    assert seen.maybe_seen(first).all() and seen.horizon == 0
    seen.add([(1, f"c{n}") for n in range(10)], newest_start_ns=3_000)  # first is dropped
    assert seen.horizon == 1_000  # its keys are vouched for no more; neither is anything that started by then
    assert seen.maybe_seen([(1, "b0"), (1, "c0")]).all()


def test_forget_before_and_clear() -> None:
    seen = SeenFilter(capacity=10)
    seen.add([(1, "x")], newest_start_ns=5)
    seen.forget_before(50)
    assert seen.horizon == 50
    seen.clear()
    assert seen.horizon == 0 and not seen.maybe_seen([(1, "x")])[0]
    assert seen.maybe_seen([]).shape == (0,)


RESIDENT_AFTER_FIRST_KEY = """
import os
from ingest.seen import SeenFilter

def resident_mib():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

before = resident_mib()
seen = SeenFilter(capacity=2_600_000)  # 8 MiB of bits a generation
made = resident_mib()
seen.add([(1, "first")], newest_start_ns=1)
print(made - before, resident_mib() - before)
"""


def test_both_generations_are_resident_from_the_first_key() -> None:
    # A fresh interpreter: this one's allocator may hand back memory it already holds.
    run = subprocess.run([sys.executable, "-c", RESIDENT_AFTER_FIRST_KEY], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[2])
    made, first_key = (float(mib) for mib in run.stdout.split())
    assert made < 4  # made but untouched: a process that never stores spans does not hold the bits
    assert first_key >= 15  # both generations written at the first key, not one at the first turnover


def test_a_turnover_reuses_the_dropped_generations_bits() -> None:
    seen = SeenFilter(capacity=1_000)
    seen.add([(1, "warm")], newest_start_ns=1)
    tracemalloc.start()
    try:
        held = tracemalloc.get_traced_memory()[0]
        for turnover in range(5):
            seen.add([(1, f"{turnover}-{n}") for n in range(1_000)], newest_start_ns=turnover)
        assert tracemalloc.get_traced_memory()[0] - held < 4_096  # no new generation was allocated
    finally:
        tracemalloc.stop()
    assert seen.maybe_seen([(1, "4-0"), (1, "3-999")]).all() and seen.horizon == 2
