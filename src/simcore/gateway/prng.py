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
from typing import Generic, TypeVar

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


class Weights(Generic[T]):
    """Items with integer weights, for ``SplitMix64.pick``: the same draw as ``weighted``,
    with the total summed once (the workload's tables are constant and drawn from per op)."""

    __slots__ = ("bounds", "items", "total")

    def __init__(self, items: Sequence[tuple[T, int]]) -> None:
        self.items = tuple(items)
        if any(w < 0 for _, w in self.items):
            raise ValueError("negative weight")
        self.total = sum([w for _, w in self.items])
        if self.total < 1:
            raise ValueError("empty range")
        bounds: list[tuple[T, int]] = []
        upto = 0
        for item, weight in self.items:
            upto += weight
            if weight > 0:  # an item of weight 0 is never picked
                bounds.append((item, upto))
        self.bounds = tuple(bounds)
        """``(item, cumulative weight)``: ``pick < bound`` of the first match is the walk of
        ``weighted``, without a subtraction per item."""


class SplitMix64:
    """SplitMix64 (Steele, Lea, Flood 2014) over plain Python integers masked to 64 bits.

    Every draw method advances and mixes the state itself rather than calling ``next_u64``:
    a run makes some twenty draws per op, and the extra call cost as much as the mixing.
    Each one is ``next_u64`` written out; ``test_prng`` checks them against it."""

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
        z = self.state = (self.state + _GOLDEN) & MASK64
        z = ((z ^ (z >> 30)) * _MUL1) & MASK64
        z = ((z ^ (z >> 27)) * _MUL2) & MASK64
        return ((z ^ (z >> 31)) >> 11) * _INV_2_53

    def randint(self, lo: int, hi: int) -> int:
        """An integer in [lo, hi] (one draw; multiply-shift, bias below 2**-40 for our spans)."""
        if hi < lo:
            raise ValueError("empty range")
        z = self.state = (self.state + _GOLDEN) & MASK64
        z = ((z ^ (z >> 30)) * _MUL1) & MASK64
        z = ((z ^ (z >> 27)) * _MUL2) & MASK64
        return lo + (((z ^ (z >> 31)) * (hi - lo + 1)) >> 64)

    def chance(self, probability: float) -> bool:
        """True with the given probability (one draw, always, so the order never shifts)."""
        z = self.state = (self.state + _GOLDEN) & MASK64
        z = ((z ^ (z >> 30)) * _MUL1) & MASK64
        z = ((z ^ (z >> 27)) * _MUL2) & MASK64
        return ((z ^ (z >> 31)) >> 11) * _INV_2_53 < probability

    def choice(self, items: Sequence[T]) -> T:
        """One element (one draw): ``randint(0, len(items) - 1)`` as an index."""
        if not items:
            raise ValueError("empty range")
        z = self.state = (self.state + _GOLDEN) & MASK64
        z = ((z ^ (z >> 30)) * _MUL1) & MASK64
        z = ((z ^ (z >> 27)) * _MUL2) & MASK64
        return items[((z ^ (z >> 31)) * len(items)) >> 64]

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

    def pick(self, weights: Weights[T]) -> T:
        """``weighted(weights.items)``: the same draw and the same element."""
        z = self.state = (self.state + _GOLDEN) & MASK64
        z = ((z ^ (z >> 30)) * _MUL1) & MASK64
        z = ((z ^ (z >> 27)) * _MUL2) & MASK64
        pick = ((z ^ (z >> 31)) * weights.total) >> 64
        for item, bound in weights.bounds:
            if pick < bound:
                return item
        raise AssertionError("unreachable: weights exhausted")

    def digits(self, count: int) -> str:
        """``count`` decimal digits, 1 <= count <= 18 (one draw)."""
        if not 1 <= count <= 18:
            raise ValueError("digits draws 1 to 18 digits at a time")
        z = self.state = (self.state + _GOLDEN) & MASK64
        z = ((z ^ (z >> 30)) * _MUL1) & MASK64
        z = ((z ^ (z >> 27)) * _MUL2) & MASK64
        return str((z ^ (z >> 31)) % _POW10[count]).zfill(count)


def derive(seed: int, index: int, stream: int) -> SplitMix64:
    """The independent generator of one (op index, stream) pair of a run seeded with ``seed``."""
    return SplitMix64(stream_state(mixed_seed(seed), index, stream))


def stream_state(mixed: int, index: int, stream: int) -> int:
    """The initial state of ``derive(seed, index, stream)``, given ``mixed = mixed_seed(seed)``
    (which a caller deriving many streams of one seed keeps)."""
    # Multiplying by an odd constant is a bijection: distinct (index, stream) pairs give
    # distinct inputs, which the finaliser then scatters over the whole 64-bit space.
    return mix64(mixed ^ ((((index << 8) | stream) * _GOLDEN) & MASK64))


@functools.lru_cache(maxsize=64)
def mixed_seed(seed: int) -> int:
    """``mix64`` of a run's seed, which every stream of the run starts from (cached: every op
    derives several streams from the same seed)."""
    return mix64(seed & MASK64)
