"""SplitMix64: the published reference values, and the properties the simulator relies on."""

from __future__ import annotations

from simcore.gateway.prng import MASK64, STREAM_FAULT, STREAM_OP, SplitMix64, derive


def test_matches_the_reference_splitmix64_sequence() -> None:
    # First outputs of SplitMix64 seeded with 0 (Vigna's reference implementation).
    rng = SplitMix64(0)
    assert [rng.next_u64() for _ in range(3)] == [
        0xE220A8397B1DCDAF,
        0x6E789E6AA1B965F4,
        0x06C45D188009454F,
    ]


def test_seed_is_masked_to_64_bits() -> None:
    assert SplitMix64(-1).next_u64() == SplitMix64(MASK64).next_u64()
    assert SplitMix64(1 << 64).next_u64() == SplitMix64(0).next_u64()


def test_draws_stay_in_range_and_cover_it() -> None:
    rng = SplitMix64(42)
    seen = {rng.randint(3, 7) for _ in range(500)}
    assert seen == {3, 4, 5, 6, 7}
    floats = [rng.random() for _ in range(500)]
    assert all(0.0 <= f < 1.0 for f in floats)
    digits = rng.digits(18)
    assert len(digits) == 18 and digits.isdigit()


def test_streams_are_reproducible_and_independent() -> None:
    a = [derive(7, 3, STREAM_OP).next_u64() for _ in range(2)]
    assert a == [derive(7, 3, STREAM_OP).next_u64() for _ in range(2)]
    others = {
        derive(7, 4, STREAM_OP).next_u64(),
        derive(7, 3, STREAM_FAULT).next_u64(),
        derive(8, 3, STREAM_OP).next_u64(),
    }
    assert a[0] not in others and len(others) == 3


def test_weighted_choice_follows_the_weights() -> None:
    rng = SplitMix64(5)
    picks = [rng.weighted((("a", 9), ("b", 1))) for _ in range(2000)]
    assert 0.85 < picks.count("a") / len(picks) < 0.95
