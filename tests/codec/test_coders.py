"""The coders of bounded values, one column at a time (vaekit.codec.coders)."""

from __future__ import annotations

import numpy as np
import pytest

from vaekit.codec import coders as c
from vaekit.codec import values as v
from vaekit.codec import varints
from vaekit.errors import FileFormatError

EDGES = [
    np.array([-2**63, 2**63 - 1, 0, 5], dtype=np.int64),
    np.array([1.5, -2.25, 0.0, -0.0, 1e300, -1e300]).view(np.int64),  # float bit patterns
    np.arange(-5, 5, dtype=np.int64),
    np.full(300, 7, dtype=np.int64),
    np.zeros(1, dtype=np.int64),
]


def alone(coded: c.Coded, n: int, **kw: object) -> np.ndarray:
    """Decode one column through a codec-6 section of its own."""
    section = v.unpack_section(v.pack_section(0, b"", [coded]), 1, n)
    coder, data = section.columns[0]
    out = v.decode_column(coder, data, n, stack=section.stack, **kw)  # type: ignore[arg-type]
    section.finish()
    return out


@pytest.mark.parametrize("q", EDGES, ids=range(len(EDGES)))
def test_every_plain_coder_round_trips_any_int64(q: np.ndarray) -> None:
    for coded in (c.Coded(c.CODER_ZSTD, c.zstd_pack(q)), c.Coded(c.CODER_PCODEC, c.pcodec_pack(q)),
                  c.counts_pack(q), c.adaptive_pack(q)):
        assert coded is not None
        assert np.array_equal(alone(coded, q.size), q), coded.coder
    # the layout of codec versions 3 to 5 (each column's words in its own bytes)
    assert np.array_equal(c.zstd_unpack(c.zstd_pack(q, compact=False), q.size, compact=False), q)


def test_a_compact_zstd_column_has_a_short_head_and_no_checksum() -> None:
    q = np.arange(1000, 1100, dtype=np.int64)
    # i64 + u8 and a 4-byte checksum against uvarint(zigzag(1000)) (2 bytes) + u8
    assert len(c.zstd_pack(q, compact=False)) - len(c.zstd_pack(q)) == 9 + 4 - 3
    assert c.zstd_pack(q[:0]) == b"\x00\x01"
    with pytest.raises(FileFormatError):
        c.zstd_unpack(c.zstd_pack(q[:0]) + b"x", 0)


def test_adaptive_order0_beats_a_count_table_on_short_columns() -> None:
    # A short column on a coarse grid (what a bound of about one SD gives): the count
    # table costs more than learning the frequencies as the column goes.
    rng = np.random.default_rng(3)
    q = np.rint(rng.normal(size=446) / 2).astype(np.int64)
    _, counts = np.unique(q, return_counts=True)
    entropy_bytes = -(counts * np.log2(counts / q.size)).sum() / 8
    adaptive, table = c.adaptive_pack(q), c.counts_pack(q)
    assert adaptive is not None and table is not None
    assert adaptive.size < table.size <= entropy_bytes + 4 * 3 + 8
    assert adaptive.size <= entropy_bytes + 8 + len(adaptive.data)
    assert abs(c.adaptive_bits(counts, q.size) - 32 * adaptive.words) <= 64
    assert np.array_equal(alone(adaptive, q.size), q)
    # past the alphabet cap both step aside
    assert c.counts_pack(np.arange(c.MAX_COUNTS_ALPHABET + 1)) is None
    assert c.adaptive_pack(np.arange(c.MAX_COUNTS_ALPHABET + 1)) is None


def test_adaptive_tables_that_do_not_match_the_stream_are_refused() -> None:
    q = np.array([4, 4, 9, 4, -2, 9] * 50, dtype=np.int64)
    coded = c.adaptive_pack(q)
    assert coded is not None
    # a table with a value that never occurs (the writer's tables hold what occurs)
    index = np.searchsorted([-2, 4, 9], q)
    wide = c.Coded(c.CODER_ADAPTIVE, c._alphabet(np.array([-2, 4, 9, 100])),
                   tuple((index[a:b].astype(np.int32), c._categorical(p), ())
                         for a, b, p in c._adaptive_models(index, 4, q.size)))
    section = v.unpack_section(v.pack_section(0, b"", [wide]), 1, q.size)
    with pytest.raises(FileFormatError, match="never occurs"):
        c.adaptive_unpack(wide.data, q.size, section.stack)
    for data in (coded.data + b"\x00", coded.data[:-1]):
        section = v.unpack_section(v.pack_section(0, b"", [coded._replace(data=data)]), 1,
                                   q.size)
        with pytest.raises(FileFormatError):
            c.adaptive_unpack(data, q.size, section.stack)


def test_order0_coder_refuses_inconsistent_tables() -> None:
    q = np.array([4, 4, 9, 4, -2, 9] * 50, dtype=np.int64)
    coded = c.counts_pack(q)
    assert coded is not None
    data = coded.data + c._words_alone(coded.parts).tobytes()  # the codec-5 layout
    assert np.array_equal(c.counts_unpack(data, q.size), q)
    refuse = [data[:1], data[:4], data + b"x", data[:-1],
              varints.uvarints(np.array([7, 0], dtype=np.uint64)),  # 7 values for 6 cells
              varints.uvarints(np.array([2, 0, 0, 0, 0], dtype=np.uint64)),  # counts add to 2
              varints.uvarints(np.array([1, 0, 5], dtype=np.uint64)) + b"\x00",  # bytes after
              varints.uvarints(np.array([2, 2**64 - 2, 0, 2, 2], dtype=np.uint64)),  # past int64
              b"\xff" * 11,
              # a count of 2^64 - 1 + 1 would wrap to 0 and still add up
              varints.uvarints(np.array([2, 0, 0, 2**64 - 1, 6], dtype=np.uint64)) + bytes(4),
              # two values and no rANS words
              varints.uvarints(np.array([2, 0, 0, 2, 2], dtype=np.uint64))]
    for bad in refuse:
        with pytest.raises(FileFormatError):
            c.counts_unpack(bad, 6)
    # any damage either raises FileFormatError or decodes to other integers, which
    # the section CRC catches (test_values.test_damaged_sections_are_refused)
    for i in range(len(data)):
        damaged = bytearray(data)
        damaged[i] ^= 0x5A
        try:
            c.counts_unpack(bytes(damaged), q.size)
        except FileFormatError:
            pass


def test_gaussian_coder_round_trips_with_escapes_and_beats_zstd_when_it_knows() -> None:
    rng = np.random.default_rng(0)
    mean = rng.normal(0, 1000, 5000)
    sd = np.exp(rng.uniform(-1, 3, 5000))  # the model knows each cell's spread
    q = np.rint(mean + sd * rng.normal(size=5000)).astype(np.int64)
    pred = c.coarse_prediction(mean, sd)
    quiet = c.gaussian_pack(q, *pred)
    assert quiet is not None and len(quiet.data) == 1  # no escapes: the SD multiple only
    q[[3, 7]] = [10**12, -(10**12)]  # far from the prediction: escapes
    coded = v.encode_column(q, gaussian=pred)
    assert coded.coder == c.CODER_GAUSSIAN
    assert coded.size < 0.75 * len(c.zstd_pack(q))
    assert np.array_equal(alone(coded, q.size, gaussian=pred), q)
    # escapes bytes where the stream has none are refused
    section = v.unpack_section(v.pack_section(0, b"", [quiet]), 1, q.size)
    with pytest.raises(FileFormatError, match="escapes"):
        c.gaussian_unpack(quiet.data + b"\x00\x01", *pred, stack=section.stack)


def test_coarse_predictions_absorb_last_bit_noise() -> None:
    rng = np.random.default_rng(2)
    mean, sd = rng.normal(0, 50, 10000), np.exp(rng.normal(size=10000))
    a = c.coarse_prediction(mean, sd)
    b = c.coarse_prediction(mean * (1 + 2.0**-40), sd * (1 + 2.0**-40))
    same = np.mean([np.array_equal(x, y) for x, y in zip(np.stack(a, 1), np.stack(b, 1),
                                                          strict=True)])
    assert same > 0.999
    center, offset, scale = c.coarse_prediction(np.array([np.nan, 1e300]), np.array([1.0, -1]))
    assert center.tolist() == [0, 0] and np.all(np.isfinite(scale))


def test_batched_gaussian_estimates_equal_one_column_at_a_time() -> None:
    rng = np.random.default_rng(3)
    columns = []
    for n in (1, 100, 300, 1024, 5000):
        q = np.rint(rng.normal(size=n) * 7).astype(np.int64)
        columns.append((q, np.zeros(n, np.int64), rng.uniform(-0.5, 0.5, n),
                        rng.uniform(0.05, 9.0, n)))
    batched = c.gaussian_estimates(columns, 128)
    single = [c.gaussian_estimate(*col, sample=128) for col in columns]
    assert batched == pytest.approx(single, rel=1e-12)
    assert c.gaussian_estimates([], 128) == []
