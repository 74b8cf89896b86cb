"""Data preparation: kinds, scaling, missing values, unseen categories, bad input, images."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from vaekit.data import ImageSchema, TabularSchema
from vaekit.data.levels import byte_log_probs, literal_text, spelling_nats
from vaekit.errors import DataError
from vaekit.files.readers import load_image_folder


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 200
    return pd.DataFrame({
        "amount": rng.lognormal(3, 1.5, n),
        "temp": rng.normal(20, 2, n),
        "count": rng.poisson(3, n),
        "flag": rng.choice(["yes", "no"], n),
        "color": rng.choice(["red", "green", "blue"], n),
    })


def test_kinds_and_transforms_are_inferred(frame: pd.DataFrame) -> None:
    schema = TabularSchema().fit(frame)
    kinds = {c.name: c.kind for c in schema.columns}
    assert kinds == {"amount": "numeric", "temp": "numeric", "count": "numeric",
                     "flag": "binary", "color": "categorical"}
    transforms = {c.name: c.transform for c in schema.specs("numeric")}
    assert transforms["amount"] == "asinh"  # heavy right tail
    assert transforms["temp"] == "affine"
    assert schema.specs("numeric")[2].resolution == 1.0  # integer counts


def test_kind_override(frame: pd.DataFrame) -> None:
    schema = TabularSchema(categorical=["count"]).fit(frame)
    assert schema.specs("categorical")[0].name == "count"


def test_logjac_makes_densities_in_input_units(frame: pd.DataFrame) -> None:
    schema = TabularSchema().fit(frame)
    t = schema.encode(frame)
    spec = schema.specs("numeric")[0]
    x = frame["amount"].to_numpy()


    def transform(v: np.ndarray) -> np.ndarray:
        return 3 * np.arcsinh((v - spec.center) / spec.scale / 3)

    np.testing.assert_allclose(t["num"][:, 0], transform(x), rtol=1e-5, atol=1e-6)
    # exp(logjac) is the derivative dt/dx, so log-densities are in the input's units.
    h = 1e-6 * spec.scale
    np.testing.assert_allclose(np.exp(t["num_logjac"][:, 0]),
                               (transform(x + h) - transform(x)) / h, rtol=1e-4)


def test_missing_values_are_masked_not_imputed(frame: pd.DataFrame) -> None:
    schema = TabularSchema().fit(frame)
    df = frame.head(3).copy()
    df.loc[0, "temp"] = np.nan
    df.loc[1, "color"] = None
    t = schema.encode(df)
    assert t["num_mask"][0, 1] == 0 and t["num"][0, 1] == 0 * t["num"][0, 1]
    assert t["num_logjac"][0, 1] == 0
    assert t["cat_mask"][1, 0] == 0
    assert t["unseen"].sum() == 0


def test_unseen_category_is_flagged_not_an_error(frame: pd.DataFrame) -> None:
    schema = TabularSchema().fit(frame)
    df = frame.head(2).copy()
    df.loc[0, "color"] = "purple"
    t = schema.encode(df)
    # unseen = binary columns first, then categoricals
    assert t["unseen"][0].tolist() == [0.0, 1.0]
    assert t["cat_mask"][0, 0] == 0
    # ... and priced by its spelling under the levels' bytes (new schemas only).
    lp = byte_log_probs(schema.specs("categorical")[0].levels)
    assert t["unseen_nats"][0].tolist() == [0.0, spelling_nats(["purple"], lp)[0]]
    assert t["unseen_nats"][1].tolist() == [0.0, 0.0]
    old = TabularSchema.from_dict({k: v for k, v in schema.to_dict().items()
                                   if k != "unseen_spelling"})
    assert not old.spells_unseen and old.encode(df)["unseen_nats"].sum() == 0.0
    assert TabularSchema.from_dict(schema.to_dict()).spells_unseen


def test_levels_seen_fewer_than_min_level_count_are_left_out(frame: pd.DataFrame) -> None:
    df = frame.copy()
    df.loc[[3, 4], "color"] = ["mauve", "teal"]
    df.loc[5, "flag"] = "maybe"  # three values: categorical; "maybe" seen once
    schema = TabularSchema(min_level_count=2).fit(df)
    color = next(c for c in schema.columns if c.name == "color")
    assert color.levels == ["blue", "green", "red"] and color.n_rare == 2
    flag = next(c for c in schema.columns if c.name == "flag")
    assert flag.kind == "categorical" and flag.levels == ["no", "yes"] and flag.n_rare == 1
    t = schema.encode(df)
    assert t["unseen"][[3, 4, 5]].sum() == 3 and t["unseen"].sum() == 3
    # Good-Turing escape, KT-smoothed: (n_rare + 1/2) / (n_obs + 1).
    assert schema.escape_rates().tolist() == pytest.approx([1.5 / 201, 2.5 / 201])
    again = TabularSchema.from_dict(schema.to_dict())
    assert [c.n_rare for c in again.columns] == [c.n_rare for c in schema.columns]
    # Fewer than two common levels: nothing is left out, and the rare cells say
    # nothing about new values (Witten-Bell escape: n_rare unset).
    few = pd.DataFrame({"c": ["a"] * 10 + ["b", "c", "d"]})
    spec = TabularSchema(min_level_count=2).fit(few).columns[0]
    assert spec.levels == ["a", "b", "c", "d"] and spec.n_rare is None
    # The default keeps every level and records nothing.
    assert next(c for c in TabularSchema().fit(df).columns if c.name == "color").n_rare is None


def test_spelling_costs_grow_with_length_and_strangeness() -> None:
    lp = byte_log_probs(["north", "south", "east", "west"])
    assert np.exp(lp).sum() == pytest.approx(1.0)
    cost = dict(zip(["wset", "wsetwset", "\u00e9\u00e9\u00e9\u00e9", "", "2"],
                    spelling_nats(["wset", "wsetwset", "\u00e9\u00e9\u00e9\u00e9", "", 2], lp),
                    strict=True))
    assert 0 < cost[""] < cost["wset"] < cost["wsetwset"]
    assert cost["\u00e9\u00e9\u00e9\u00e9"] > cost["wsetwset"]  # 8 bytes never in a level
    assert literal_text(2.0) == "2" and literal_text(1.5) == "1.5" and literal_text(True) == "True"
    assert literal_text(float("nan")) == "nan" and literal_text(np.int64(7)) == "7"


def test_round_trip_keeps_names_and_dtypes(frame: pd.DataFrame) -> None:
    schema = TabularSchema().fit(frame)
    t = schema.encode(frame)
    cat = t["cat"]
    out = schema.decode(t["num"], t["bin"], cat)
    assert list(out.columns) == list(frame.columns)
    assert out["count"].dtype == frame["count"].dtype
    np.testing.assert_allclose(out["amount"], frame["amount"], rtol=1e-5)
    assert (out["color"] == frame["color"]).all()
    assert (out["flag"] == frame["flag"]).all()


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda df: df.assign(temp=df["temp"].astype(object).where(df.index != 5, "hot")),
         r"row 5, column 'temp': expected a number, found 'hot'"),
        (lambda df: df.assign(temp=df["temp"].where(df.index != 7, np.inf)),
         r"row 7, column 'temp': infinite value"),
        (lambda df: df.drop(columns=["temp"]), r"missing column\(s\) \['temp'\]"),
        (lambda df: df.iloc[:0], "empty input"),
    ],
)
def test_bad_input_names_row_and_column(frame: pd.DataFrame, mutate, match: str) -> None:
    schema = TabularSchema().fit(frame)
    with pytest.raises(DataError, match=match):
        schema.encode(mutate(frame.copy()))


def test_fit_errors(frame: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="column 'temp': every value is missing"):
        TabularSchema().fit(frame.assign(temp=np.nan))
    with pytest.raises(DataError, match="empty input"):
        TabularSchema().fit(frame.iloc[:0])
    ids = frame.assign(id=[f"R{i}" for i in range(len(frame))])
    with pytest.raises(DataError, match="column 'id'.*identifier"):
        TabularSchema().fit(ids)


def test_extra_columns_warn(frame: pd.DataFrame) -> None:
    schema = TabularSchema().fit(frame)
    with pytest.warns(UserWarning, match="ignoring column"):
        schema.encode(frame.assign(extra=1.0))


def test_schema_json_round_trip(frame: pd.DataFrame) -> None:
    import json

    schema = TabularSchema().fit(frame)
    again = TabularSchema.from_dict(json.loads(json.dumps(schema.to_dict())))
    a, b = schema.encode(frame), again.encode(frame)
    assert all(np.array_equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("shape", [(5, 8, 8), (5, 8, 8, 3), (5, 3, 8, 8), (5, 8, 6, 1)])
def test_image_layouts_round_trip(shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=shape, dtype=np.uint8)
    schema = ImageSchema().fit(x)
    t = schema.encode(x)["x"]
    assert t.shape[0] == 5 and t.shape[1] in (1, 3)
    assert np.all((t >= 0) & (t <= 1))
    np.testing.assert_array_equal(schema.decode(t), x)


def test_float_images_and_range_errors() -> None:
    x = np.linspace(0, 1, 4 * 8 * 8).reshape(4, 8, 8)
    schema = ImageSchema().fit(x)
    assert schema.decode(schema.encode(x)["x"]).dtype == np.float64
    with pytest.raises(DataError, match=r"row 1.*\[0, 1\]"):
        schema.encode(np.stack([x[0], x[1] + 1, x[2], x[3]]))
    with pytest.raises(DataError, match="expected images"):
        schema.encode(np.zeros((2, 9, 8)))


def test_image_folder(tmp_path) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (10, 12), dtype=np.uint8)).save(tmp_path / f"{i}.png")
    x = load_image_folder(tmp_path)
    assert x.shape == (3, 10, 12) and x.dtype == np.uint8
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(tmp_path / "z.png")
    with pytest.raises(DataError, match="same size"):
        load_image_folder(tmp_path)
    (tmp_path / "z.png").write_bytes(b"not an image")
    with pytest.raises(DataError, match="cannot read image"):
        load_image_folder(tmp_path)


def test_numeric_floors_from_resolution(frame: pd.DataFrame) -> None:
    schema = TabularSchema().fit(frame)
    floors = schema.numeric_floors(0.01)
    spec = schema.specs("numeric")[2]  # integer counts
    assert math.isclose(floors[2], 1 / math.sqrt(12) / spec.scale)
    assert floors[1] == 0.01


def test_reconstructions_stay_inside_the_training_range() -> None:
    df = pd.DataFrame({"price": [1.0, 2.0, 5.0, 40.0], "qty": [1, 2, 3, 9]})
    schema = TabularSchema().fit(df)
    spec = schema.specs("numeric")[0]
    assert (spec.low, spec.high) == (1.0, 40.0)
    far = np.array([[-1e6, 1e6], [1e6, -1e6]])
    t = far / np.array([[s.scale for s in schema.specs("numeric")]])
    out = schema.decode(t, np.zeros((2, 0)), np.zeros((2, 0)))
    assert out["price"].between(1.0, 40.0).all() and out["qty"].between(1, 9).all()
    # The range travels with the schema, and files without it still load (no clipping).
    again = TabularSchema.from_dict(schema.to_dict())
    assert again.specs("numeric")[1].high == 9.0
    d = schema.to_dict()
    for c in d["columns"]:
        c.pop("low", None)
        c.pop("high", None)
    assert TabularSchema.from_dict(d).specs("numeric")[0].low is None
