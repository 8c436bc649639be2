"""SplitMix64: the one seeded PRNG of a simulation.

Why SplitMix64: it is tiny, has no hidden state beyond one 64-bit integer, and any language can
reproduce it bit for bit, so a report can be re-derived from its seed years later. Python's
``random`` is avoided on purpose: its algorithm and seeding are implementation details.

Streams are derived, never shared: every operation of a run owns a few independent streams
(``derive(seed, op_index, stream)``), so the values an op sees do not depend on how many
requests earlier ops made (a patch that retries more must not change the next op's customer).
The fixed draw order inside each stream is documented where the stream is consumed
(``workload.py`` for ``STREAM_OP``, ``faults.py`` for ``STREAM_FAULT``, ``server.py`` for
``STREAM_LATENCY``).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TypeVar

MASK64 = 0xFFFF_FFFF_FFFF_FFFF
_GOLDEN = 0x9E37_79B9_7F4A_7C15
_MUL1 = 0xBF58_476D_1CE4_E5B9
_MUL2 = 0x94D0_49BB_1331_11EB
_INV_2_53 = 1.0 / (1 << 53)
_POW10 = tuple(10**n for n in range(19))

# Stream identifiers: part of the determinism contract, never renumber them.
STREAM_OP = 1
STREAM_FAULT = 2
STREAM_LATENCY = 3
STREAM_RUN = 4
STREAM_CUSTOMER = 5

T = TypeVar("T")


def mix64(value: int) -> int:
    """The SplitMix64 finaliser: a bijection on 64-bit integers with good avalanche."""
    z = value & MASK64
    z = ((z ^ (z >> 30)) * _MUL1) & MASK64
    z = ((z ^ (z >> 27)) * _MUL2) & MASK64
    return z ^ (z >> 31)


class SplitMix64:
    """SplitMix64 (Steele, Lea, Flood 2014) over plain Python integers masked to 64 bits."""

    __slots__ = ("state",)

    def __init__(self, seed: int) -> None:
        self.state = seed & MASK64

    def next_u64(self) -> int:
        z = self.state = (self.state + _GOLDEN) & MASK64
        z = ((z ^ (z >> 30)) * _MUL1) & MASK64
        z = ((z ^ (z >> 27)) * _MUL2) & MASK64
        return z ^ (z >> 31)

    def random(self) -> float:
        """A float in [0, 1) from the top 53 bits (one draw)."""
        return (self.next_u64() >> 11) * _INV_2_53

    def randint(self, lo: int, hi: int) -> int:
        """An integer in [lo, hi] (one draw; multiply-shift, bias below 2**-40 for our spans)."""
        if hi < lo:
            raise ValueError("empty range")
        span = hi - lo + 1
        return lo + ((self.next_u64() * span) >> 64)

    def chance(self, probability: float) -> bool:
        """True with the given probability (one draw, always, so the order never shifts)."""
        return self.random() < probability

    def choice(self, items: Sequence[T]) -> T:
        """One element (one draw). ``randint(0, len(items) - 1)`` written out: the workload
        draws thousands of these per run."""
        if not items:
            raise ValueError("empty range")
        return items[(self.next_u64() * len(items)) >> 64]

    def weighted(self, items: Sequence[tuple[T, int]]) -> T:
        """One element by integer weight (one draw)."""
        total = sum([w for _, w in items])
        if total < 1:
            raise ValueError("empty range")
        pick = (self.next_u64() * total) >> 64  # randint(0, total - 1)
        for item, weight in items:
            if pick < weight:
                return item
            pick -= weight
        raise AssertionError("unreachable: weights exhausted")

    def digits(self, count: int) -> str:
        """``count`` decimal digits, 1 <= count <= 18 (one draw)."""
        if not 1 <= count <= 18:
            raise ValueError("digits draws 1 to 18 digits at a time")
        return str(self.next_u64() % _POW10[count]).zfill(count)


def derive(seed: int, index: int, stream: int) -> SplitMix64:
    """The independent generator of one (op index, stream) pair of a run seeded with ``seed``."""
    # Multiplying by an odd constant is a bijection: distinct (index, stream) pairs give
    # distinct inputs, which the finaliser then scatters over the whole 64-bit space.
    key = (((index << 8) | stream) * _GOLDEN) & MASK64
    return SplitMix64(mix64(_seed_mix(seed & MASK64) ^ key))


@functools.lru_cache(maxsize=64)
def _seed_mix(seed: int) -> int:
    # Every op derives several streams from the same seed: mix it once.
    return mix64(seed)
