"""``bytes_per_row`` chooses how to spend the budget (issue 17): the latent code alone,
or the code plus every numeric value on a grid (:mod:`vaekit.fitted.grid_choice`).

The properties are exact ones of the rule, not thresholds on noise: the chosen way
measured the smaller RMSE and fits the budget on the sample; lossless storage that
fits is used and said; the choice travels in the model file and every compress
path uses it; an explicit ``max_abs_error`` overrides it.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import vaekit
from vaekit import VAECompressor
from vaekit.fitted.grid_choice import (
    BUDGET_MARGIN,
    CANDIDATES,
    _smallest_fitting,
    choose_grid,
)
from vaekit.fitted.streams import CompressedWriter, iter_decompressed, join_chunks

from ..conftest import run_cli


@pytest.fixture(scope="module")
def spiky() -> pd.DataFrame:
    """Five zero-inflated columns (70 % zeros, else log-normal to 2 decimals): a latent
    code spends its bytes badly on them, a value grid codes the zeros almost free."""
    rng = np.random.default_rng(0)
    n = 800
    return pd.DataFrame({f"z{i}": np.where(rng.random(n) < 0.7, 0.0,
                                           np.round(rng.lognormal(0.0, 1.0, n), 2))
                         for i in range(5)})


@pytest.fixture(scope="module")
def correlated() -> pd.DataFrame:
    """Six numeric columns driven by one factor: the code alone is the better spend."""
    rng = np.random.default_rng(0)
    f = rng.normal(size=(800, 1))
    x = f * np.array([1.0, 2.0, -1.0, 0.5, 3.0, 1.5]) + 0.05 * rng.normal(size=(800, 6))
    return pd.DataFrame(np.round(x, 3), columns=[f"c{i}" for i in range(6)])


@pytest.fixture(scope="module")
def few_values() -> pd.DataFrame:
    """Small integers: lossless storage takes about a byte a row."""
    rng = np.random.default_rng(1)
    return pd.DataFrame({"a": rng.integers(0, 3, 600), "b": rng.integers(0, 2, 600) * 5,
                         "c": rng.integers(0, 4, 600).astype(float)})


@pytest.fixture(scope="module")
def budgeted(spiky: pd.DataFrame) -> VAECompressor:
    return VAECompressor(bytes_per_row=2, epochs=2, random_state=0).fit(spiky)


def _codes_file(model: VAECompressor, rows: pd.DataFrame) -> bytes:
    """The file of the latent code alone, written by the writer itself."""
    buf = io.BytesIO()
    with CompressedWriter(buf, model, n_rows=len(rows), max_abs_error=None) as writer:
        writer.write(rows)
    return buf.getvalue()


def _max_error_in_sds(model: VAECompressor, original: pd.DataFrame, back: pd.DataFrame) -> float:
    sds = np.array([c.sd for c in model.fitted_.schema.columns])
    return float((np.abs(back.to_numpy(float) - original.to_numpy(float)) / sds).max())


def _check_rule(comp: VAECompressor) -> None:
    choice = comp.grid_choice_
    assert choice is not None
    if choice.bound is None:
        assert choice.grid_rmse is None or choice.grid_rmse >= choice.codes_rmse
    else:
        assert choice.bound in CANDIDATES or choice.bound == 0.0
        assert choice.grid_rmse is not None and choice.grid_rmse < choice.codes_rmse
        assert choice.grid_bytes is not None
        assert choice.grid_bytes <= BUDGET_MARGIN * comp.bytes_per_row
    assert comp.grid_bound_ == choice.bound


def test_the_choice_is_the_smaller_measured_error_within_the_budget(
        budgeted: VAECompressor, correlated: pd.DataFrame) -> None:
    _check_rule(budgeted)
    assert budgeted.grid_bound_ is not None  # zero-inflated columns: the grid wins
    # One factor drives every column: the code alone measures the smaller error.
    codes = VAECompressor(bytes_per_row=4, epochs=2, random_state=0).fit(correlated)
    _check_rule(codes)
    assert codes.grid_bound_ is None


def test_compress_uses_the_chosen_grid_and_keeps_its_bound(
        budgeted: VAECompressor, spiky: pd.DataFrame) -> None:
    bound = budgeted.grid_bound_
    assert bound is not None and bound > 0
    back = budgeted.decompress(budgeted.compress(spiky))
    assert _max_error_in_sds(budgeted, spiky, back) <= bound * (1 + 1e-9)
    # An explicit bound overrides the model's choice.
    budgeted.set_params(max_abs_error=0.0)
    try:
        exact = budgeted.decompress(budgeted.compress(spiky))
    finally:
        budgeted.set_params(max_abs_error="model")
    np.testing.assert_array_equal(exact.to_numpy(float), spiky.to_numpy(float))
    # None: the latent code alone, whatever the budget chose.
    budgeted.set_params(max_abs_error=None)
    try:
        codes = budgeted.compress(spiky)
    finally:
        budgeted.set_params(max_abs_error="model")
    assert codes == _codes_file(budgeted, spiky)
    assert len(codes) != len(budgeted.compress(spiky))


def test_the_choice_travels_in_the_model_file(budgeted: VAECompressor, spiky: pd.DataFrame,
                                              tmp_path: Path) -> None:
    path = tmp_path / "m.vaekit"
    budgeted.save(path)
    loaded = vaekit.load(path)
    assert loaded.grid_bound_ == budgeted.grid_bound_
    assert loaded.compress(spiky) == budgeted.compress(spiky)
    # The CLI with the saved model stores the same grid.
    src, out = tmp_path / "rows.csv", tmp_path / "rows.vkc"
    spiky.to_csv(src, index=False)
    result = run_cli("compress", src, "-m", path, "-o", out, "-q")
    assert result.exit_code == 0, result.output
    back = join_chunks(list(iter_decompressed(io.BytesIO(out.read_bytes()), loaded.fitted_)),
                       loaded.fitted_)
    assert _max_error_in_sds(loaded, spiky, back) <= loaded.grid_bound_ * (1 + 1e-9)


def test_a_budget_above_the_lossless_size_stores_losslessly_and_says_so(
        few_values: pd.DataFrame) -> None:
    with pytest.warns(UserWarning, match="lossless size"):
        comp = VAECompressor(bytes_per_row=20, epochs=2, random_state=0).fit(few_values)
    assert comp.grid_bound_ == 0.0 and comp.grid_choice_.lossless
    assert comp.grid_choice_.lossless_bytes <= BUDGET_MARGIN * 20
    back = comp.decompress(comp.compress(few_values))
    pd.testing.assert_frame_equal(back, few_values)


def test_images_and_unbudgeted_models_keep_the_code_alone() -> None:
    images = np.random.default_rng(2).integers(0, 256, size=(40, 6, 6), dtype=np.uint8)
    comp = VAECompressor(bytes_per_row=4, epochs=1, random_state=0).fit(images)
    assert comp.grid_choice_ is None and comp.grid_bound_ is None
    table = pd.DataFrame(np.random.default_rng(3).normal(size=(200, 3)), columns=list("abc"))
    plain = VAECompressor(epochs=1, random_state=0).fit(table)
    assert plain.grid_choice_ is None and plain.grid_bound_ is None
    assert choose_grid(comp.fitted_, images, 4.0) is None


def test_bisection_finds_the_smallest_fitting_candidate() -> None:
    for k in range(len(CANDIDATES)):
        assert _smallest_fitting(lambda b, k=k: b >= CANDIDATES[k]) == CANDIDATES[k]
    assert _smallest_fitting(lambda b: False) is None


def test_frames_with_numbered_columns_dates_and_nullable_floats() -> None:
    """The RMSE reads every column in the model's units: numbered (non-string) labels,
    dates (days, NaT blank) and nullable Float64 (NA blank) all fit and round-trip."""
    rng = np.random.default_rng(4)
    numbered = pd.DataFrame(rng.normal(size=(300, 3)))
    comp = VAECompressor(bytes_per_row=2, epochs=2, random_state=0).fit(numbered)
    assert comp.grid_choice_ is not None and comp.grid_choice_.codes_rmse < 1
    frame = pd.DataFrame({
        "when": pd.date_range("2020-01-01", periods=300, freq="h"),
        "a": rng.normal(size=300),
        "b": pd.array(np.round(rng.normal(size=300), 2), dtype="Float64")})
    frame.loc[5, "when"] = pd.NaT
    frame.loc[7, "b"] = pd.NA
    comp = VAECompressor(bytes_per_row=3, epochs=2, random_state=0).fit(frame)
    choice = comp.grid_choice_
    assert choice is not None and 0 <= choice.codes_rmse < 1  # days / SD of days, not us
    back = comp.decompress(comp.compress(frame))
    assert back["b"].dtype == "Float64" and back["b"].isna().sum() == 1
    assert back["when"].isna().sum() == 1
