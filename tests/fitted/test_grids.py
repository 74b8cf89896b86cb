"""Decimal float grids (codec version 5): cells come back as short decimals, and the
bound still holds for every value; integer grids on odd steps (codec version 7).

Exact properties: the decimal step is the power of ten two decades below the bound,
decided the same way whatever ``log10`` returns near a power of ten; rounding gives
the double nearest the decimal (and never ``-0.0``); on bounds across 40 decades and
values across 30, every cell the writer keeps is within its bound as the reader
restores it, and the narrower step leaves almost no value to the exceptions.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from vaekit.data.tabular import ColumnSpec
from vaekit.errors import FileFormatError
from vaekit.fitted import grids
from vaekit.fitted.grids import decimal_power, from_grid, grid_of, round_decimal, to_grid


@pytest.mark.parametrize(("bound", "power"), [
    (0.01, 4), (0.0102, 4), (0.00999, 5), (1.0, 2), (9.99, 2), (10.0, 1), (123.0, 0),
    (5e3, -1), (1e-20, 22), (9.9e-21, None), (1e24, -22), (1e25, None), (0.0, None),
    # one double below a power of ten, where math.log10 rounds up to the power itself
    (float(np.nextafter(0.01, 0)), 5), (float(np.nextafter(1e24, 0)), -21),
    (float("inf"), None), (float("nan"), None),
])
def test_decimal_power_is_two_decades_below_the_bound(bound: float, power: int | None) -> None:
    assert decimal_power(bound) == power


def test_decimal_power_does_not_trust_log10_near_a_power_of_ten(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # A libm whose log10 lands on the wrong side of an integer must not move the step.
    log10 = math.log10
    for wrong in (lambda x: log10(x) + 1e-9, lambda x: log10(x) - 1e-9):
        monkeypatch.setattr(grids.math, "log10", wrong)
        assert [decimal_power(b) for b in (0.01, 1.0, 1000.0)] == [4, 2, -1]


def test_round_decimal_gives_the_nearest_double_and_no_negative_zero() -> None:
    out = round_decimal(np.array([0.123456, -0.00004, 2.5e-5, 1.23456e300]), 4)
    assert out[:3].tolist() == [0.1235, 0.0, 0.0] and not np.signbit(out[1])
    assert repr(float(out[0])) == "0.1235"
    assert round_decimal(np.array([123456.0, -7650.0]), -2).tolist() == [123500.0, -7600.0]


def _spec(dtype: str = "float64") -> ColumnSpec:
    return ColumnSpec(name="x", kind="numeric", dtype=dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_every_kept_cell_is_within_its_bound_across_magnitudes(dtype: str) -> None:
    rng = np.random.default_rng(0)
    spec = _spec(dtype)
    for bound in 10.0 ** rng.uniform(-19, 21, 60):
        scale = bound * 10.0 ** rng.uniform(-1, 9)
        x = pd.Series((rng.normal(size=2000) * scale).astype(dtype))
        grid = grid_of(spec, float(bound))
        assert grid.mode == "float" and grid.power is not None
        q, ok = to_grid(spec, x, np.ones(len(x), dtype=bool), grid, float(bound))
        back = from_grid(spec, q, grid).to_numpy(dtype=np.float64)
        err = np.abs(back - x.to_numpy(dtype=np.float64))
        assert np.all(err[ok] <= bound), bound
        # the room the narrower step leaves is far wider than float rounding: for
        # float64 no value misses (float32's own rounding may, at coarse magnitudes)
        if dtype == "float64":
            assert ok.all(), (bound, int((~ok).sum()))
        # float64: the restored values are the decimals, one more rounding changes
        # nothing (float32 ones are the float32 nearest them)
        if dtype == "float64":
            assert np.array_equal(back[ok], round_decimal(back[ok], grid.power))


def test_plain_float_grids_are_unchanged() -> None:
    spec = _spec()
    assert grid_of(spec, 0.25, version=4) == (("float", 0.5, None, False))
    grid = grid_of(spec, 0.25)
    assert grid.power == 3 and grid.step == 2 * (0.25 - 0.001)
    q = np.array([3, -7])
    assert from_grid(spec, q, grid_of(spec, 0.25, version=4)).tolist() == [1.5, -3.5]


def test_times_round_trip_as_nanoseconds_and_nat_is_refused() -> None:
    spec = ColumnSpec(name="t", kind="numeric", dtype="datetime64[ns, Europe/Paris]")
    grid = grid_of(spec, 0.5)
    assert grid.mode == "time" and grid_of(spec, 0.5, version=4).mode == "text"
    s = pd.Series(pd.to_datetime(["2024-03-31 01:59:59.123456789", None, "1999-12-31 00:00:00"],
                                 utc=True, format="ISO8601")).dt.tz_convert("Europe/Paris")
    q, ok = to_grid(spec, s, s.notna().to_numpy(), grid, 0.5)
    assert ok.tolist() == [True, False, True]
    back = from_grid(spec, q, grid)
    assert back[0] == s[0] and back[2] == s[2] and str(back.dt.tz) == "Europe/Paris"
    with pytest.raises(FileFormatError, match="no time"):
        from_grid(spec, np.array([np.iinfo(np.int64).min]), grid)
    # text is not a datetime dtype: every value stays an exception
    text = pd.Series(["2024-01-01", "2024-01-02"])
    assert not to_grid(spec, text, np.ones(2, dtype=bool), grid, 0.5)[1].any()


@pytest.mark.parametrize(("bound", "step", "old_step"), [
    (0.0, 1, 1), (0.49, 1, 1), (0.5, 1, 1), (0.99, 1, 1), (1.0, 3, 2), (1.2, 3, 2),
    (1.5, 3, 3), (1.97, 3, 3), (2.34, 5, 4), (8.93, 17, 17), (23.02, 47, 46),
    (1e300, 2**62, 2**62),
])
def test_integer_grids_take_the_widest_odd_step_from_version_7(
        bound: float, step: int, old_step: int) -> None:
    """Cells of ``2 m + 1`` whole numbers miss by at most ``m``: from codec version 7 the
    step is ``2 floor(bound) + 1``; files of version 6 keep ``floor(2 bound)``."""
    for spec, whole in ((_spec("int64"), False), (_spec(), True)):
        assert grid_of(spec, bound, whole) == ("int", float(step), None, True)
        assert grid_of(spec, bound, whole, version=6) == ("int", float(old_step), None, False)


@pytest.mark.parametrize("origin", [0, 1, 2])
def test_every_integer_keeps_its_bound_on_the_odd_step(origin: int) -> None:
    spec = _spec("int64")
    x = pd.Series(np.arange(-40, 41, dtype=np.int64))
    for bound in (1.0, 1.2, 2.34, 3.0):
        grid = grid_of(spec, bound)
        q, ok = to_grid(spec, x, np.ones(len(x), dtype=bool), grid, bound, origin)
        assert ok.all()
        err = np.abs(from_grid(spec, q, grid, origin).to_numpy() - x.to_numpy())
        # every error the bound allows occurs (the step is as wide as it may be)
        assert err.max() == math.floor(bound) and set(err) == set(range(math.floor(bound) + 1))


@pytest.mark.parametrize("dtype", ["int8", "uint8", "int16", "uint16", "Int8", "uint64"])
def test_cells_at_a_narrow_dtypes_ends_decode_onto_them(dtype: str) -> None:
    """An odd step's cell that reaches into the dtype from outside decodes to the
    dtype's end, so no value of the dtype becomes an exception on any step or origin
    (int8 at step 3: -128 is in the cell centred on -129)."""
    spec = _spec(dtype)
    info = np.iinfo(pd.api.types.pandas_dtype(dtype).numpy_dtype
                    if dtype == "Int8" else np.dtype(dtype))
    lo, hi = int(info.min), int(min(info.max, 2**63 - 1))
    if dtype == "uint64":
        # (from 2^62 on, 64-bit integers are stored exactly, as exceptions)
        values = np.array([0, 1, 2, 3, 2**62 - 3, 2**62 - 2], dtype=np.uint64)
    else:
        values = np.arange(max(lo, -3000), min(hi, 3000) + 1)
        values = np.concatenate([values, np.arange(lo, lo + 40), np.arange(hi - 40, hi + 1)])
    x = pd.Series(values).astype(dtype)
    present = np.ones(len(x), dtype=bool)
    for bound in (1.0, 1.3, 2.0, 4.5, 6.0, 9.0, 18.0):
        grid = grid_of(spec, bound)
        for origin in range(int(grid.step)):
            q, ok = to_grid(spec, x, present, grid, bound, origin)
            assert ok.all(), (bound, origin, x[~ok].tolist()[:5])
            back = from_grid(spec, q, grid, origin)
            assert str(back.dtype) == str(x.dtype)
            err = np.abs(back.to_numpy(dtype=np.float64) - x.to_numpy(dtype=np.float64))
            assert err.max() <= math.floor(bound)


def test_a_cell_beyond_the_dtypes_reach_is_still_refused() -> None:
    spec = _spec("int8")
    grid = grid_of(spec, 1.0)  # step 3: cells reach one value past their centre
    assert from_grid(spec, np.array([-43]), grid).tolist() == [-128]  # centre -129
    assert from_grid(spec, np.array([42]), grid, 2).tolist() == [127]  # centre 128
    for q in (-44, 43, 2**61):  # centres -132, 129: no value of the cell is an int8
        with pytest.raises(FileFormatError, match="outside its dtype"):
            from_grid(spec, np.array([q]), grid)
    # version 6 had no such cells: a centre outside the dtype is corrupt
    with pytest.raises(FileFormatError, match="outside its dtype"):
        from_grid(spec, np.array([-65]), grid_of(spec, 1.0, version=6), 1)  # -129


def test_the_most_negative_index_is_refused() -> None:
    """abs(-2**63) is still negative in int64: the index limit is checked on both sides."""
    for dtype, bound in (("int64", 1.0), ("int8", 1e300)):
        spec = _spec(dtype)
        with pytest.raises(FileFormatError, match="outside its dtype"):
            from_grid(spec, np.array([np.iinfo(np.int64).min]), grid_of(spec, bound))
