"""Friendly errors of the estimators: a DataFrame with the wrong columns names them
(with "did you mean"), fitting on too few rows warns, on none fails; the progress bar
and the training history speak of the negative ELBO and the planned epochs."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from vaekit import VAEAnomalyDetector
from vaekit.errors import DataError, did_you_mean
from vaekit.estimators.base import MIN_FIT_ROWS
from vaekit.report.curves import stopping_note


def _frame(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return pd.DataFrame({"unit_price": x, "quantity": x + rng.normal(scale=0.2, size=n),
                         "region": rng.choice(["north", "south"], size=n)})


@pytest.fixture(scope="module")
def det() -> VAEAnomalyDetector:
    return VAEAnomalyDetector(random_state=0, epochs=2, n_samples=1).fit(_frame())


def test_a_missing_column_is_named_with_a_near_miss(det: VAEAnomalyDetector) -> None:
    X = _frame(5).rename(columns={"unit_price": "unitprice"})
    for method in (det.score_samples, det.predict, det.decision_function, det.explain):
        with pytest.raises(DataError) as info:
            method(X)
        text = str(info.value)
        assert "missing column(s) ['unit_price']" in text
        assert "'unitprice' looks like a misspelling of 'unit_price'" in text
        assert "column(s) ['unitprice'] are not model columns" in text
        # scikit-learn's own wording follows, and it is still a ValueError.
        assert "feature names should match" in text and isinstance(info.value, ValueError)


def test_a_dropped_or_extra_column_is_named(det: VAEAnomalyDetector) -> None:
    with pytest.raises(DataError, match=r"missing column\(s\) \['region'\]"):
        det.score_samples(_frame(5).drop(columns=["region"]))
    with pytest.raises(DataError, match=r"column\(s\) \['note'\] are not model columns"):
        det.score_samples(_frame(5).assign(note="x"))
    with pytest.raises(DataError, match="not in the fitted order"):
        det.score_samples(_frame(5)[["region", "quantity", "unit_price"]])


def test_did_you_mean() -> None:
    assert did_you_mean("rowid", ["row_id", "amount"]) == "; did you mean 'row_id'?"
    assert did_you_mean("zzz", ["row_id", "amount"]) == ""


def test_fitting_on_no_rows_fails() -> None:
    with pytest.raises(DataError, match="cannot fit on 0 rows"):
        VAEAnomalyDetector(epochs=1).fit(_frame().iloc[:0])


@pytest.mark.parametrize("n, words", [(1, "fitting on one row"), (5, "fitting on 5 rows")])
def test_fitting_on_few_rows_warns(n: int, words: str) -> None:
    with pytest.warns(UserWarning, match=f"{words}: the model can't learn a distribution"):
        VAEAnomalyDetector(epochs=1, n_samples=1, random_state=0).fit(_frame(n))


def test_enough_rows_do_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        VAEAnomalyDetector(epochs=1, n_samples=1, random_state=0).fit(_frame(MIN_FIT_ROWS))


def test_progress_bar_and_history_use_the_negative_elbo(capsys: pytest.CaptureFixture) -> None:
    det = VAEAnomalyDetector(epochs=3, n_samples=1, random_state=0, verbose=True).fit(_frame())
    err = capsys.readouterr().err
    assert "neg_elbo=" in err and "nats/row" in err and "loss=" not in err
    shown = float(err.rsplit("neg_elbo=", 1)[1].split()[0])
    assert shown == pytest.approx(-det.history_[-1]["train_elbo"], abs=1e-3)
    assert all(h["planned_epochs"] == 3 for h in det.history_)


def _history(ran: int, planned: int | None) -> list[dict]:
    out = []
    for i in range(1, ran + 1):
        v = 10.0 - min(i, 3)  # improves for three epochs, then flat
        h = {"epoch": i, "beta": 1.0, "train_elbo": -v, "train_recon": -v + 0.5,
             "train_kl": 0.5, "val_elbo": -v, "val_recon": -v + 0.5, "val_kl": 0.5}
        if planned is not None:
            h["planned_epochs"] = planned
        out.append(h)
    return out


def test_the_stopping_note_says_stopped_early_of_planned() -> None:
    assert stopping_note(_history(9, 40)).startswith("Stopped early at epoch 9 of 40 planned;")
    assert stopping_note(_history(9, 9)).startswith("Ran all 9 planned epochs;")
    assert stopping_note(_history(9, None)).startswith("Ran 9 epochs;")  # older files
