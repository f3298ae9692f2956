"""Compact "was this key ever stored?" filters for dedup: Bloom filters in generations.

The exact dedup index (:mod:`ingest.recent`) holds the last few hundred thousand spans,
which at high rates is under a minute of traffic, while exporters send spans that
started minutes earlier (a trace's root ends, and is exported, after its children). A
batch whose spans started before the exact index's horizon used to be checked against
ClickHouse on every flush. A :class:`SeenFilter` remembers every trace (or counted
provider response) stored, in about 3 bytes a key: when it says a key was never seen,
the key is new for certain and no query is needed; "maybe seen" (a real hit or a rare
false positive) sends just that key to ClickHouse.

Generations keep memory bounded: when the current generation holds ``capacity`` keys, the
previous one is dropped, and :attr:`SeenFilter.horizon` moves to the latest start time
of the spans whose keys it held. A key is vouched for only for spans that started after
the horizon, the same rule as the exact index's (see :mod:`ingest.recent`).

The footprint is fixed from the first key: both generations' bits are allocated when the
filter is made (untouched, so a process that never stores spans does not hold them),
written when the first keys are added, and a dropped generation's bits are cleared and
reused as the new one. A Bloom filter touches every page of its bits within its first few
thousand keys, so a second generation allocated at the first turnover (minutes into busy
traffic) showed as a 24 MiB step in the serving process's memory long after start-up.

Keys are Python's hash of ``(project_id, id)``: randomized per process, which is fine for
a filter that lives and dies with its process.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Sequence

import numpy as np

BITS_PER_KEY = 24  # with 16 hash functions: about 1 false positive in 100,000 keys
HASHES = 16


def _hashes(keys: Sequence[Hashable]) -> np.ndarray:
    return np.fromiter((hash(key) for key in keys), dtype=np.int64, count=len(keys)).view(np.uint64)


class _Bloom:
    __slots__ = ("bits", "count", "mask", "newest")

    def __init__(self, capacity: int) -> None:
        size = 1 << max(int(capacity * BITS_PER_KEY - 1).bit_length(), 6)  # bits, a power of two
        self.bits = np.zeros(size // 8, dtype=np.uint8)  # pages the kernel maps on first write
        self.mask = np.uint64(size - 1)
        self.count = 0
        self.newest = 0  # latest start time (ns) of the spans whose keys were added

    def reset(self) -> None:
        """Forget every key. Writes every byte, so the bits are resident from here on."""
        self.bits.fill(0)
        self.count = 0
        self.newest = 0

    def positions(self, hashes: np.ndarray) -> np.ndarray:
        """Bit positions, (len(hashes), HASHES): double hashing from the two 32-bit halves."""
        low = hashes & np.uint64(0xFFFFFFFF)
        high = (hashes >> np.uint64(32)) | np.uint64(1)
        steps = np.arange(HASHES, dtype=np.uint64)
        return (low[:, None] + steps[None, :] * high[:, None]) & self.mask

    def add(self, hashes: np.ndarray, newest: int) -> None:
        at = self.positions(hashes).ravel()
        np.bitwise_or.at(self.bits, at >> np.uint64(3), np.left_shift(1, at & np.uint64(7)).astype(np.uint8))
        self.count += len(hashes)
        self.newest = max(self.newest, newest)

    def contains(self, hashes: np.ndarray) -> np.ndarray:
        at = self.positions(hashes)
        bits = (self.bits[at >> np.uint64(3)] >> (at & np.uint64(7)).astype(np.uint8)) & 1
        return bits.all(axis=1)


class SeenFilter:
    """Keys stored by this process, as two generations of Bloom filters of ``capacity`` keys each."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._current = _Bloom(capacity)
        self._previous = _Bloom(capacity)  # empty (newest 0) until the first turnover
        self._resident = False  # whether both generations' bits have been written
        self.horizon = 0  # spans that started after this (ns) have their keys here
        self._lock = threading.Lock()

    def add(self, keys: Sequence[Hashable], newest_start_ns: int) -> None:
        """Remember ``keys``, stored with spans that started at most at ``newest_start_ns``."""
        if not keys:
            return
        hashes = _hashes(keys)
        with self._lock:
            if not self._resident:
                self._clear_generations()
            if self._current.count + len(hashes) > self.capacity:
                self.horizon = max(self.horizon, self._previous.newest)
                self._previous.reset()
                self._previous, self._current = self._current, self._previous
            self._current.add(hashes, newest_start_ns)

    def maybe_seen(self, keys: Sequence[Hashable]) -> np.ndarray:
        """Per key: False when it was certainly never added since the horizon, else True."""
        if not keys:
            return np.zeros(0, dtype=bool)
        hashes = _hashes(keys)
        with self._lock:
            return self._current.contains(hashes) | self._previous.contains(hashes)

    def forget_before(self, start_ns: int) -> None:
        """Declare keys of spans that started at or before ``start_ns`` unknown here."""
        with self._lock:
            self.horizon = max(self.horizon, start_ns)

    def clear(self) -> None:
        with self._lock:
            self._clear_generations()
            self.horizon = 0

    def _clear_generations(self) -> None:
        """Empty both generations, writing their bits (called holding the lock)."""
        self._current.reset()
        self._previous.reset()
        self._resident = True
