"""SplitMix64: the published reference values, and the properties the simulator relies on."""

from __future__ import annotations

import pytest

from simcore.gateway.prng import (
    MASK64,
    STREAM_FAULT,
    STREAM_OP,
    SplitMix64,
    Weights,
    derive,
    mix64,
    mixed_seed,
    stream_state,
)


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


def test_every_draw_method_is_next_u64_written_out() -> None:
    # The draw methods mix the state themselves (speed): each must equal its definition in
    # terms of next_u64, draw for draw, or every report changes.
    for seed in (0, 1, 12345, MASK64, 0x9E37_79B9_7F4A_7C15):
        rng, ref = SplitMix64(seed), SplitMix64(seed)
        for _ in range(200):
            assert rng.random() == (ref.next_u64() >> 11) * (1.0 / (1 << 53))
            assert rng.randint(-1_500, 1_500) == -1_500 + ((ref.next_u64() * 3001) >> 64)
            assert rng.chance(0.3) == ((ref.next_u64() >> 11) * (1.0 / (1 << 53)) < 0.3)
            items = ("a", "b", "c", "d", "e")
            assert rng.choice(items) == items[(ref.next_u64() * 5) >> 64]
            assert rng.digits(7) == str(ref.next_u64() % 10**7).zfill(7)
        assert rng.state == ref.state


def test_pick_is_weighted_with_the_total_summed_once() -> None:
    table = (("a", 9), ("none", 0), ("b", 1), ("c", 30))
    weights = Weights(table)
    assert weights.total == 40
    rng, ref = SplitMix64(99), SplitMix64(99)
    picks = [rng.pick(weights) for _ in range(2000)]
    assert picks == [ref.weighted(table) for _ in range(2000)]
    assert "none" not in picks
    with pytest.raises(ValueError):
        Weights([("a", 0)])
    with pytest.raises(ValueError):
        Weights([("a", 2), ("b", -1)])


def test_stream_state_is_derive_from_a_seed_mixed_once() -> None:
    for seed in (0, 7, MASK64, 1 << 64):
        for index in (0, 1, 999_999):
            for stream in (STREAM_OP, STREAM_FAULT):
                state = stream_state(mixed_seed(seed), index, stream)
                assert state == derive(seed, index, stream).state
                key = (((index << 8) | stream) * 0x9E37_79B9_7F4A_7C15) & MASK64
                assert state == mix64(mix64(seed) ^ key)  # the documented derivation
