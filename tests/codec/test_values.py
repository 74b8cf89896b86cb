"""Choosing a coder per column and laying out a chunk's section (vaekit.codec.values)."""

from __future__ import annotations

import numpy as np
import pytest

from vaekit.codec import coders as c
from vaekit.codec import values as v
from vaekit.errors import FileFormatError


def round_trip(columns: list[c.Coded], sizes: list[int], **kw: object) -> list[np.ndarray]:
    section = v.unpack_section(v.pack_section(7, b"", columns), len(columns), sum(sizes))
    assert section.crc == 7 and section.exceptions == b""
    out = [v.decode_column(coder, data, n, stack=section.stack, **kw)  # type: ignore[arg-type]
           for (coder, data), n in zip(section.columns, sizes, strict=True)]
    section.finish()
    return out


def test_columns_share_one_rans_stack_and_decode_in_order() -> None:
    rng = np.random.default_rng(4)
    cols = [np.rint(rng.normal(size=300) * k).astype(np.int64) for k in (0.5, 1, 2, 3)]
    coded = [v.plain_column(q) for q in cols]
    assert {x.coder for x in coded} <= {c.CODER_COUNTS, c.CODER_ADAPTIVE}
    back = round_trip(coded, [q.size for q in cols])
    assert all(np.array_equal(a, b) for a, b in zip(back, cols, strict=True))
    # one final state for the chunk instead of one per column
    alone = sum(x.size for x in coded)
    together = len(v.pack_section(0, b"", coded))
    assert together < alone


@pytest.mark.parametrize("q", [np.array([-2**63, 2**63 - 1, 0, 5], dtype=np.int64),
                               np.full(300, 7, dtype=np.int64), np.zeros(1, dtype=np.int64)])
def test_plain_choice_round_trips_any_int64(q: np.ndarray) -> None:
    coded = v.encode_column(q)
    assert coded.coder in (c.CODER_ZSTD, c.CODER_PCODEC, c.CODER_COUNTS, c.CODER_ADAPTIVE)
    assert np.array_equal(round_trip([coded], [q.size])[0], q)


def test_rank_coder_uses_the_predicted_level() -> None:
    rng = np.random.default_rng(1)
    predicted = rng.integers(0, 6, 4000)
    codes = np.where(rng.random(4000) < 0.95, predicted, rng.integers(0, 6, 4000))
    coded = v.encode_column(codes, predicted=predicted)
    assert coded.coder in (c.CODER_RANK, c.CODER_RANK_COUNTS)
    assert coded.size < 0.5 * v.plain_column(codes).size
    assert np.array_equal(round_trip([coded], [codes.size], predicted=predicted)[0], codes)
    ranks = v._rank(np.arange(6), np.full(6, 3))
    assert ranks.tolist() == [1, 2, 3, 0, 4, 5]


def test_damaged_sections_are_refused() -> None:
    q = np.arange(100, dtype=np.int64)
    r = np.random.default_rng(0).integers(0, 3, 100)
    section = v.pack_section(v.integers_crc([q, r]), b"", [v.encode_column(q), v.plain_column(r)])
    unpacked = v.unpack_section(section, 2, 200)
    assert unpacked.crc == v.integers_crc([q, r]) and unpacked.exceptions == b""
    for bad in (section[:4], section[:5], section + b"x", section[:-3], section[:-4]):
        with pytest.raises(FileFormatError):
            # what decode_values does: any damage raises, or the CRC catches it
            s = v.unpack_section(bad, 2, 200)
            ints = [v.decode_column(coder, data, n, stack=s.stack)
                    for (coder, data), n in zip(s.columns, (100, 100), strict=True)]
            s.finish()
            if v.integers_crc(ints) != s.crc:
                raise FileFormatError("CRC")
    with pytest.raises(FileFormatError, match="rANS words"):
        v.unpack_section(section, 2, 0)  # more words than a chunk without cells can need
    with pytest.raises(FileFormatError, match="rANS words"):  # constriction's own refusal
        v.unpack_section(section + bytes(4), 2, 200)
    coder, data = unpacked.columns[0]
    with pytest.raises(FileFormatError):
        v.decode_column(coder, data, 101, stack=unpacked.stack)  # more cells than coded
    with pytest.raises(FileFormatError):
        v.decode_column(v.CODER_PCODEC, b"garbage", 10)
    with pytest.raises(FileFormatError):
        v.decode_column(v.CODER_GAUSSIAN, b"\x00\xff\xff\xff\xff", 3,
                        gaussian=c.coarse_prediction(np.zeros(3), np.ones(3)))
    with pytest.raises(FileFormatError):
        v.decode_column(9, data, 100)
    with pytest.raises(FileFormatError):  # the adaptive coder is codec 6 only
        v.decode_column(c.CODER_ADAPTIVE, data, 100)


def test_words_left_on_the_stack_are_refused() -> None:
    r = np.random.default_rng(0).integers(0, 3, 100)
    coded = v.plain_column(r)
    extra = c.adaptive_pack(np.random.default_rng(1).integers(0, 3, 50))
    assert extra is not None
    # a one-column section whose stack holds a second column's words after the first
    head = v.pack_section(0, b"", [coded._replace(parts=(), words=0)])
    s = v.unpack_section(head + c._words_alone(coded.parts + extra.parts).tobytes(), 1, 150)
    coder, data = s.columns[0]
    assert np.array_equal(v.decode_column(coder, data, 100, stack=s.stack), r)
    with pytest.raises(FileFormatError, match="left over"):
        s.finish()


def test_lossless_float_columns_take_pcodec_on_the_floats_where_it_is_smaller() -> None:
    # Four-decimal readings: their bit patterns look random as integers, while
    # pcodec's float modes see the 0.0001 steps.
    rng = np.random.default_rng(5)
    x = np.round(rng.normal(50, 8, 4096), 4)
    x[:4] = [-0.0, 5e-324, -1.7976931348623157e308, 0.1]
    bits = x.view(np.int64).copy()
    as_ints = v.plain_column(bits)
    coded = v.plain_column(bits, floats=True)
    assert coded.coder == c.CODER_PCODEC_FLOAT and coded.size < 0.8 * as_ints.size
    back = v.decode_column(coded.coder, coded.data, len(bits))
    np.testing.assert_array_equal(back, bits)  # bit for bit: -0.0 and subnormals too
    with pytest.raises(FileFormatError, match="corrupt"):
        v.decode_column(coded.coder, coded.data, len(bits) + 1)
    with pytest.raises(FileFormatError, match="corrupt"):
        v.decode_column(coded.coder, coded.data[: len(coded.data) // 2], len(bits))
    # Integers that are not float bit patterns never get the float coder.
    assert v.plain_column(np.arange(4096, dtype=np.int64)).coder != c.CODER_PCODEC_FLOAT


def test_zstd_still_wins_where_the_column_repeats_itself() -> None:
    # A repeating sequence: order 0 sees 50 equally likely values (about 5.6 bits
    # each), zstd sees one match; the fast probe must not keep zstd out.
    q = np.tile(np.arange(50, dtype=np.int64) * 7, 100)
    coded = v.plain_column(q)
    assert coded.coder == c.CODER_ZSTD and coded.size < 0.1 * q.size
    assert np.array_equal(round_trip([coded], [q.size])[0], q)
