"""Numeric columns into the model's units (vaekit.data.numeric)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd

from vaekit.data.numeric import encode_numerics, numeric_values


def _spec(name: str, dtype: str = "float64", transform: str = "affine") -> SimpleNamespace:
    return SimpleNamespace(name=name, dtype=dtype, center=1.0, scale=2.0, transform=transform)


def test_the_float_block_and_the_column_route_agree_bit_for_bit() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=50) * 1e3, "b": rng.normal(size=50)})
    frame.loc[3, "a"] = np.nan
    specs = [_spec("a", transform="asinh"), _spec("b")]
    fast = encode_numerics(frame, specs)  # all float64: one block
    slow = encode_numerics(frame.astype({"b": "Float64"}), specs)  # a nullable column: per column
    for x, y in zip(fast, slow, strict=True):
        np.testing.assert_array_equal(x, y)


def test_a_date_column_is_read_as_dates_whatever_the_other_columns_are() -> None:
    # Floats in a date column mean the same thing beside plain float64 columns (which
    # alone would take the block path) as beside a column that needs converting.
    specs = [_spec("d", dtype="datetime64[ns]"), _spec("b")]
    plain = pd.DataFrame({"d": [1.5e18, 1.6e18], "b": [0.5, 0.25]})
    mixed = plain.astype({"b": object})
    np.testing.assert_array_equal(encode_numerics(plain, specs)[0],
                                  encode_numerics(mixed, specs)[0])
    days = numeric_values(plain["d"], specs[0])
    np.testing.assert_allclose(encode_numerics(plain, specs)[0][:, 0],
                               ((days - 1.0) / 2.0).astype(np.float32))
