"""Integer column coders of the error-bounded codec (vaekit.codec.values)."""

from __future__ import annotations

import numpy as np
import pytest

from vaekit.codec import values as v
from vaekit.errors import FileFormatError

EDGES = [
    np.array([-2**63, 2**63 - 1, 0, 5], dtype=np.int64),
    np.array([1.5, -2.25, 0.0, -0.0, 1e300, -1e300]).view(np.int64),  # float bit patterns
    np.arange(-5, 5, dtype=np.int64),
    np.full(300, 7, dtype=np.int64),
    np.zeros(1, dtype=np.int64),
]


@pytest.mark.parametrize("q", EDGES, ids=range(len(EDGES)))
def test_plain_coders_round_trip_any_int64(q: np.ndarray) -> None:
    coder, data = v.encode_column(q)
    assert coder in (v.CODER_ZSTD, v.CODER_PCODEC, v.CODER_COUNTS)
    assert np.array_equal(v.decode_column(coder, data, q.size), q)
    for pack, unpack in ((v._zstd_pack, v._zstd_unpack), (v._pcodec_pack, v._pcodec_unpack),
                         (v._counts_pack, v._counts_unpack)):
        assert np.array_equal(unpack(pack(q), q.size), q)


def test_order0_coder_is_near_the_entropy_where_framing_dominates() -> None:
    # A short column on a coarse grid: what a bound of about one SD gives.
    rng = np.random.default_rng(3)
    q = np.rint(rng.normal(size=446) / 2).astype(np.int64)
    _, counts = np.unique(q, return_counts=True)
    entropy_bytes = -(counts * np.log2(counts / q.size)).sum() / 8
    coder, data = v.encode_column(q)
    assert coder == v.CODER_COUNTS
    assert len(data) <= entropy_bytes + 4 * 3 + 8  # table (<= 3 bytes per value) + rANS state
    assert len(data) < min(len(v._zstd_pack(q)), len(v._pcodec_pack(q)))
    assert np.array_equal(v.decode_column(coder, data, q.size), q)
    # past the alphabet cap the coder steps aside
    assert v._counts_pack(np.arange(v.MAX_COUNTS_ALPHABET + 1)) is None


def test_order0_coder_refuses_inconsistent_tables() -> None:
    q = np.array([4, 4, 9, 4, -2, 9] * 50, dtype=np.int64)
    data = v._counts_pack(q)
    assert data is not None
    good = v._counts_unpack(data, q.size)
    assert np.array_equal(good, q)
    refuse = [data[:1], data[:4], data + b"x", data[:-1],
              v._uvarints(np.array([7, 0], dtype=np.uint64)),  # 7 values for 6 cells
              v._uvarints(np.array([2, 0, 0, 0, 0], dtype=np.uint64)),  # counts add to 2
              v._uvarints(np.array([1, 0, 5], dtype=np.uint64)) + b"\x00",  # bytes after
              v._uvarints(np.array([2, 2**64 - 2, 0, 2, 2], dtype=np.uint64)),  # past int64
              b"\xff" * 11,
              # a count of 2^64 - 1 + 1 would wrap to 0 and still add up
              v._uvarints(np.array([2, 0, 0, 2**64 - 1, 6], dtype=np.uint64)) + bytes(4),
              # two values and no rANS words
              v._uvarints(np.array([2, 0, 0, 2, 2], dtype=np.uint64))]
    for bad in refuse:
        with pytest.raises(FileFormatError):
            v._counts_unpack(bad, 6)
    # any damage either raises FileFormatError or decodes to other integers, which
    # the section CRC catches (test_damaged_sections_are_refused)
    for i in range(len(data)):
        damaged = bytearray(data)
        damaged[i] ^= 0x5A
        try:
            v._counts_unpack(bytes(damaged), q.size)
        except FileFormatError:
            pass


def test_gaussian_coder_round_trips_with_escapes_and_beats_zstd_when_it_knows() -> None:
    rng = np.random.default_rng(0)
    mean = rng.normal(0, 1000, 5000)
    sd = np.exp(rng.uniform(-1, 3, 5000))  # the model knows each cell's spread
    q = np.rint(mean + sd * rng.normal(size=5000)).astype(np.int64)
    q[[3, 7]] = [10**12, -(10**12)]  # far from the prediction: escapes
    pred = v.coarse_prediction(mean, sd)
    coder, data = v.encode_column(q, gaussian=pred)
    assert coder == v.CODER_GAUSSIAN
    assert len(data) < 0.75 * len(v._zstd_pack(q))
    assert np.array_equal(v.decode_column(coder, data, q.size, gaussian=pred), q)


def test_rank_coder_uses_the_predicted_level() -> None:
    rng = np.random.default_rng(1)
    predicted = rng.integers(0, 6, 4000)
    codes = np.where(rng.random(4000) < 0.95, predicted, rng.integers(0, 6, 4000))
    coder, data = v.encode_column(codes, predicted=predicted)
    assert coder in (v.CODER_RANK, v.CODER_RANK_COUNTS)
    plain_coder, plain = v.plain_column(codes)
    assert len(data) < 0.5 * len(plain)
    assert np.array_equal(v.decode_column(coder, data, codes.size, predicted=predicted), codes)
    ranks = v._rank(np.arange(6), np.full(6, 3))
    assert ranks.tolist() == [1, 2, 3, 0, 4, 5]


def test_coarse_predictions_absorb_last_bit_noise() -> None:
    rng = np.random.default_rng(2)
    mean, sd = rng.normal(0, 50, 10000), np.exp(rng.normal(size=10000))
    a = v.coarse_prediction(mean, sd)
    b = v.coarse_prediction(mean * (1 + 2.0**-40), sd * (1 + 2.0**-40))
    same = np.mean([np.array_equal(x, y) for x, y in zip(np.stack(a, 1), np.stack(b, 1),
                                                          strict=True)])
    assert same > 0.999
    center, offset, scale = v.coarse_prediction(np.array([np.nan, 1e300]), np.array([1.0, -1]))
    assert center.tolist() == [0, 0] and np.all(np.isfinite(scale))


def test_damaged_sections_are_refused() -> None:
    q = np.arange(100, dtype=np.int64)
    section = v.pack_section(v.integers_crc([q]), b"", [v.encode_column(q)])
    crc, exc, cols = v.unpack_section(section, 1)
    assert crc == v.integers_crc([q]) and exc == b""
    for bad in (section[:5], section + b"x", section[:-3]):
        with pytest.raises(FileFormatError):
            v.unpack_section(bad, 1)
    coder, data = cols[0]
    with pytest.raises(FileFormatError):
        v.decode_column(coder, data, 101)  # more cells than were coded
    with pytest.raises(FileFormatError):
        v.decode_column(v.CODER_PCODEC, b"garbage", 10)
    with pytest.raises(FileFormatError):
        v.decode_column(v.CODER_GAUSSIAN, b"\x00\xff\xff\xff\xff", 3,
                        gaussian=v.coarse_prediction(np.zeros(3), np.ones(3)))
    with pytest.raises(FileFormatError):
        v.decode_column(9, data, 100)


def test_lossless_float_columns_take_pcodec_on_the_floats_where_it_is_smaller() -> None:
    # Four-decimal readings: their bit patterns look random as integers, while
    # pcodec's float modes see the 0.0001 steps.
    rng = np.random.default_rng(5)
    x = np.round(rng.normal(50, 8, 4096), 4)
    x[:4] = [-0.0, 5e-324, -1.7976931348623157e308, 0.1]
    bits = x.view(np.int64).copy()
    as_ints = v.plain_column(bits)
    coder, data = v.plain_column(bits, floats=True)
    assert coder == v.CODER_PCODEC_FLOAT and len(data) < 0.8 * len(as_ints[1])
    back = v.decode_column(coder, data, len(bits))
    np.testing.assert_array_equal(back, bits)  # bit for bit: -0.0 and subnormals too
    with pytest.raises(FileFormatError, match="corrupt"):
        v.decode_column(coder, data, len(bits) + 1)
    with pytest.raises(FileFormatError, match="corrupt"):
        v.decode_column(coder, data[: len(data) // 2], len(bits))
    # Integers that are not float bit patterns never get the float coder.
    assert v.plain_column(np.arange(4096, dtype=np.int64))[0] != v.CODER_PCODEC_FLOAT
