"""Tests of code packing (bit widths + zstd) and passthrough-table serialization."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vaekit.codec import (
    LAYOUT_BYTES,
    LAYOUT_PACKED,
    pack_codes,
    pack_table,
    raw_packed_size,
    unpack_codes,
    unpack_table,
)
from vaekit.errors import FileFormatError


def random_codes(rng: np.random.Generator, n_rows: int, bits: list[int]) -> np.ndarray:
    """Uniform codes in [0, 2**bits[j]) per dimension."""
    cols = [rng.integers(0, 1 << b, size=n_rows) for b in bits]
    return np.stack(cols, axis=1) if cols else np.zeros((n_rows, 0), dtype=np.int64)


def gaussian_codes(rng: np.random.Generator, n_rows: int, n_dims: int, b: int) -> np.ndarray:
    """Uniform quantizer over [-4, 4] of N(0, 1) latent means (the realistic case)."""
    levels = 1 << b
    x = np.clip((rng.standard_normal((n_rows, n_dims)) + 4) / 8 * levels, 0, levels - 1)
    return np.floor(x).astype(np.int64)


# ------------------------------------------------------------------------ pack_codes


@settings(max_examples=150, deadline=None)
@given(
    bits=st.lists(st.integers(0, 16), max_size=10),
    n_rows=st.integers(0, 300),
    seed=st.integers(0, 2**32 - 1),
    gaussian=st.booleans(),
)
def test_codes_round_trip(bits, n_rows, seed, gaussian):
    rng = np.random.default_rng(seed)
    codes = random_codes(rng, n_rows, bits)
    if gaussian and bits:  # skewed values: exercises the one-byte-per-value layout
        codes = np.stack([gaussian_codes(rng, n_rows, 1, b)[:, 0] for b in bits], axis=1)
    data = pack_codes(codes, bits)
    out = unpack_codes(data, n_rows, bits)
    assert out.dtype == np.int64 and out.shape == (n_rows, len(bits))
    np.testing.assert_array_equal(out, codes)
    assert pack_codes(codes, bits) == data  # deterministic


@pytest.mark.parametrize("bits", [[0], [16], [0, 16, 0], [1] * 9, list(range(17))])
@pytest.mark.parametrize("n_rows", [0, 1, 13])
def test_codes_extremes(bits, n_rows):
    for fill in ("min", "max"):
        codes = np.array(
            [[0 if fill == "min" else (1 << b) - 1 for b in bits]] * n_rows, dtype=np.int64
        ).reshape(n_rows, len(bits))
        out = unpack_codes(pack_codes(codes, bits), n_rows, bits)
        np.testing.assert_array_equal(out, codes)


def test_input_dtype_does_not_change_bytes():
    rng = np.random.default_rng(0)
    codes = random_codes(rng, 50, [3, 7, 0, 8])
    expected = pack_codes(codes, [3, 7, 0, 8])
    for dtype in (np.uint8, np.int16, np.uint16, np.int32, np.uint64):
        assert pack_codes(codes.astype(dtype), [3, 7, 0, 8]) == expected


def test_both_layouts_are_used_and_compress():
    rng = np.random.default_rng(1)
    n, d = 2048, 16
    skewed = gaussian_codes(rng, n, d, 6)
    data = pack_codes(skewed, [6] * d)
    assert data[0] == LAYOUT_BYTES
    # Entropy of these codes is ~5.05 of 6 bits; zstd gets within ~3 % of it.
    assert len(data) < 0.9 * raw_packed_size(n, [6] * d)

    uniform = random_codes(rng, n, [5] * d)
    data = pack_codes(uniform, [5] * d)
    assert data[0] == LAYOUT_PACKED
    # Incompressible codes cost their real bit width plus a small constant.
    assert len(data) <= raw_packed_size(n, [5] * d) + 32


def test_zero_bit_dimensions_are_free():
    rng = np.random.default_rng(2)
    codes = random_codes(rng, 500, [8])
    with_zeros = np.concatenate([codes, np.zeros((500, 20), dtype=np.int64)], axis=1)
    assert len(pack_codes(with_zeros, [8] + [0] * 20)) == len(pack_codes(codes, [8]))


@pytest.mark.parametrize(
    ("codes", "bits", "match"),
    [
        ([[4]], [2], "does not fit in 2 bits"),
        ([[-1]], [2], "does not fit"),
        ([[1]], [0], "does not fit in 0 bits"),
        ([[70000]], [16], "does not fit"),
        ([[1, 2]], [4], "shape"),
        ([[1]], [17], r"\[0, 16\]"),
        ([[1]], [-1], r"\[0, 16\]"),
    ],
)
def test_pack_codes_rejects(codes, bits, match):
    with pytest.raises(ValueError, match=match):
        pack_codes(np.array(codes), bits)


def test_pack_codes_rejects_non_integers():
    with pytest.raises(TypeError):
        pack_codes(np.array([[1.0]]), [2])
    with pytest.raises(ValueError, match="fit"):
        pack_codes(np.array([[2**64 - 1]], dtype=np.uint64), [16])


@pytest.mark.parametrize(
    ("gaussian", "n_rows", "bits"), [(False, 40, [6, 3, 0, 12]), (True, 100, [6, 6, 6, 6])]
)
def test_every_bit_flip_in_codes_is_detected_or_harmless(gaussian, n_rows, bits):
    rng = np.random.default_rng(3)
    codes = (
        np.stack([gaussian_codes(rng, n_rows, 1, b)[:, 0] for b in bits], axis=1)
        if gaussian
        else random_codes(rng, n_rows, bits)
    )
    data = pack_codes(codes, bits)
    assert data[0] == (LAYOUT_BYTES if gaussian else LAYOUT_PACKED)
    for bit in range(len(data) * 8):
        damaged = bytearray(data)
        damaged[bit // 8] ^= 1 << (bit % 8)
        try:
            out = unpack_codes(bytes(damaged), n_rows, bits)
        except FileFormatError:
            continue
        # zstd ignores one reserved header bit; anything decoded must be exact.
        np.testing.assert_array_equal(out, codes)


def test_corrupt_or_mismatched_codes_payload():
    rng = np.random.default_rng(4)
    codes = random_codes(rng, 30, [4, 9])
    data = pack_codes(codes, [4, 9])
    for length in range(len(data)):
        with pytest.raises(FileFormatError):
            unpack_codes(data[:length], 30, [4, 9])
    with pytest.raises(FileFormatError):
        unpack_codes(data + b"\x00", 30, [4, 9])
    with pytest.raises(FileFormatError):
        unpack_codes(data, 31, [4, 9])
    with pytest.raises(FileFormatError):
        unpack_codes(data, 30, [4, 10])
    with pytest.raises(FileFormatError, match="layout"):
        unpack_codes(b"\x07" + data[1:], 30, [4, 9])


# ------------------------------------------------------------------------ pack_table


def mixed_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": ["a", None, "c", "d"],
            "obj_none": pd.Series(["x", None, "z", None], dtype=object),
            "obj_nan": pd.Series(["x", np.nan, "z", "w"], dtype=object),
            "obj_mixed_nulls": pd.Series([None, np.nan, "q", pd.NA], dtype=object),
            "obj_ints": pd.Series([1, None, 3, 2**40], dtype=object),
            "all_none": pd.Series([None] * 4, dtype=object),
            "int": np.array([1, -2, 3, 2**62], dtype=np.int64),
            "u8": np.array([0, 1, 2, 255], dtype=np.uint8),
            "float": [1.5, np.nan, -np.inf, 0.0],
            "f32": np.array([1, np.nan, 3, 4], dtype=np.float32),
            "nullable": pd.array([1, None, 3, 4], dtype="Int64"),
            "bool": [True, False, True, True],
            "string": pd.array(["a", None, "ü", ""], dtype="string"),
            "when": pd.to_datetime(
                ["2020-01-01 00:00:00", None, "2021-06-01 12:00:00", "1970-01-01 00:00:00"]
            ),
            "cat": pd.Categorical(["x", "y", None, "x"]),
            "bytes": pd.Series([b"\x00", None, b"z", b""], dtype=object),
        }
    )


def test_table_round_trip_dtypes_and_nulls():
    df = mixed_frame()
    out = unpack_table(pack_table(df))
    pd.testing.assert_frame_equal(out, df)
    assert list(out.columns) == list(df.columns)
    # None and NaN are told apart inside object columns.
    assert out["obj_none"][1] is None and out["obj_nan"][1] != out["obj_nan"][1]
    assert [repr(v) for v in out["obj_mixed_nulls"]] == ["None", "nan", "'q'", "<NA>"]
    assert out["obj_ints"].tolist() == [1, None, 3, 2**40]


def test_table_deterministic_and_compressed():
    df = pd.DataFrame({"id": [f"row-{i:06d}" for i in range(5000)], "k": np.arange(5000)})
    data = pack_table(df)
    assert pack_table(df.copy()) == data
    assert len(data) < 0.2 * (df["id"].str.len().sum() + 8 * len(df))


@pytest.mark.parametrize(
    "df",
    [
        pd.DataFrame([[1, "a", 2.0]], columns=[0, 0, "x"]),  # int and repeated names
        pd.DataFrame(index=range(5)),  # rows but no columns
        pd.DataFrame(),
        mixed_frame().iloc[:0],  # no rows: dtypes (and categories) survive
        pd.DataFrame({"b": [1, 2]}, index=[10, 20]).iloc[::-1],  # index is not kept
    ],
)
def test_table_edge_cases(df):
    out = unpack_table(pack_table(df))
    pd.testing.assert_frame_equal(out, df.reset_index(drop=True))


names = st.text(min_size=1, max_size=6)
column = st.one_of(
    st.lists(st.integers(-(2**63), 2**63 - 1), min_size=6, max_size=6).map(
        lambda v: pd.Series(v, dtype=np.int64)
    ),
    st.lists(st.floats(allow_nan=True) | st.none(), min_size=6, max_size=6).map(
        lambda v: pd.Series(v, dtype=np.float64)
    ),
    st.lists(st.text(max_size=5) | st.none(), min_size=6, max_size=6).map(
        lambda v: pd.Series(v, dtype=object)
    ),
    st.lists(st.text(max_size=5) | st.none(), min_size=6, max_size=6).map(pd.Series),
    st.lists(st.integers(-100, 100) | st.none(), min_size=6, max_size=6).map(
        lambda v: pd.Series(v, dtype="Int64")
    ),
)


@settings(max_examples=40, deadline=None)
@given(cols=st.lists(st.tuples(names, column), max_size=5), start=st.integers(0, 6))
def test_table_round_trip_property(cols, start):
    df = pd.DataFrame({f"{i}_{n}": c for i, (n, c) in enumerate(cols)}).iloc[start:]
    out = unpack_table(pack_table(df))
    pd.testing.assert_frame_equal(out, df.reset_index(drop=True))


def test_table_rejects_unstorable_columns():
    with pytest.raises(ValueError, match="column 'mix'"):
        pack_table(pd.DataFrame({"mix": pd.Series([1, "a"], dtype=object)}))

    class Custom:
        pass

    # Arbitrary Python objects are refused, never pickled.
    with pytest.raises(ValueError, match="column 'obj'"):
        pack_table(pd.DataFrame({"obj": pd.Series([Custom()], dtype=object)}))
    with pytest.raises(ValueError, match="column names"):
        pack_table(pd.DataFrame({("a", "b"): [1]}))


def test_corrupt_table_is_detected():
    df = pd.DataFrame({"id": ["a", "b", None], "n": [1, 2, 3]})
    data = pack_table(df)
    for length in range(0, len(data), 7):
        with pytest.raises(FileFormatError):
            unpack_table(data[:length])
    for bit in range(0, len(data) * 8, 3):
        damaged = bytearray(data)
        damaged[bit // 8] ^= 1 << (bit % 8)
        try:
            out = unpack_table(bytes(damaged))
        except FileFormatError:
            continue
        pd.testing.assert_frame_equal(out, df)  # only a no-op bit may pass
    with pytest.raises(FileFormatError):
        unpack_table(b"not zstd at all")
