"""The training figure: one sign (negative ELBO, a cost) and why training stopped where it did."""

from __future__ import annotations

import copy

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from vaekit import VAEAnomalyDetector, VAECompressor  # noqa: E402
from vaekit.fitted import as_fitted  # noqa: E402
from vaekit.report import figures  # noqa: E402
from vaekit.report.curves import best_epoch, stopping_note  # noqa: E402


def _history(val: list[float], beta: list[float]) -> list[dict[str, float]]:
    """ELBO-training records whose validation objective (recon - beta KL) is ``val``."""
    return [{"epoch": i + 1, "beta": b, "train_elbo": v - 1.0, "train_recon": v - 0.5,
             "train_kl": 0.5, "val_elbo": v, "val_recon": v + 1.0, "val_kl": 1.0}
            for i, (v, b) in enumerate(zip(val, beta, strict=True))]


def test_curves_show_negative_elbo_with_the_anomaly_scores_sign(tabular_detector) -> None:
    fig = figures.training_curves(tabular_detector)
    history = tabular_detector.history_
    elbo_ax, recon_ax, kl_ax = fig.axes[:3]
    assert "negative ELBO" in elbo_ax.get_ylabel() and "lower is better" in elbo_ax.get_ylabel()
    train = elbo_ax.lines[0]
    np.testing.assert_allclose(train.get_ydata(), [-h["train_elbo"] for h in history])
    np.testing.assert_allclose(recon_ax.lines[0].get_ydata(),
                               [-h["train_recon"] for h in history])
    np.testing.assert_allclose(kl_ax.lines[0].get_ydata(), [h["train_kl"] for h in history])
    # negative ELBO = reconstruction cost + KL, panel by panel.
    np.testing.assert_allclose(train.get_ydata(), recon_ax.lines[0].get_ydata()
                               + kl_ax.lines[0].get_ydata(), rtol=1e-6)  # float32 sums
    assert all(v > 0 for v in train.get_ydata())  # nats to pay, like the anomaly score


def test_best_epoch_follows_the_training_rule() -> None:
    # Warm-up epochs (beta below its final value) are not judged, ties keep the first.
    h = _history([9.0, 8.0, 6.0, 7.0, 7.0, 6.5], [0.2, 0.6, 1.0, 1.0, 1.0, 1.0])
    assert best_epoch(h) == 4
    assert best_epoch(h, beta=0.6) == 2  # the objective weighs KL by the training beta
    # No validation split: the training rows' objective.
    no_val = [{k: v for k, v in r.items() if not k.startswith("val")} for r in h]
    assert best_epoch(no_val) == 4
    # The codec route's phase records: the history cannot say; the note names the phases.
    phases = [{"epoch": 0, "phase": "pca", "val_distortion": 1.0},
              {"epoch": 1, "phase": "codes", "train_loss": 2.0, "val_distortion": 0.9},
              {"epoch": 2, "phase": "calibrated", "kept": "codes", "train_elbo": -3.0,
               "train_recon": -2.0, "train_kl": 1.0}]
    assert best_epoch(phases) is None
    note = stopping_note(phases)
    assert "phases (pca, codes, calibrated; 3 records)" in note and "'codes' phase" in note


def test_note_says_why_the_detector_stops_early(tabular_detector) -> None:
    fitted = copy.copy(as_fitted(tabular_detector))
    fitted.params = {**fitted.params, "epochs": "auto"}
    fitted.history = _history([9.0, 5.0, 6.0, 8.0, 7.0, 7.5, 7.2, 7.1, 7.0],
                              [0.5] + [1.0] * 8)
    note = stopping_note(fitted)
    assert "Ran 9 epochs; the weights of epoch 4 are kept" in note
    assert "No later epoch improved on it (5 epochs)" in note
    assert "Short on purpose" in note and "500 gradient steps (at most 50 epochs)" in note
    assert "max(5, planned epochs / 10)" in note
    # On the figure itself: the note and a marker at the kept epoch.
    fig = figures.training_curves(fitted)
    assert "Short on purpose" in fig.get_supxlabel().replace("\n", " ")
    kept = [ln for ln in fig.axes[0].lines if ln.get_label() == "kept: epoch 4"]
    assert kept and kept[0].get_xdata()[0] == 4
    # Epochs set by hand are named as such; a plain history gets the rule only.
    fitted.params = {**fitted.params, "epochs": 2}
    assert "set by hand: epochs=2" in stopping_note(fitted)
    assert "Short on purpose" not in stopping_note(fitted.history)


def test_the_note_states_the_schedule_the_estimators_train_with(monkeypatch) -> None:
    # One table (vaekit.training.schedules) for what an estimator trains for and what the
    # report says it trained for: changing an entry changes both.
    from vaekit.training import schedules

    for cls in (VAEAnomalyDetector, VAECompressor):
        for kind in ("tabular", "image"):
            monkeypatch.setitem(schedules.AUTO_SCHEDULES, (cls.__name__, kind), (1234, 56))
            config = cls()._train_config(kind)
            assert (config.target_steps, config.max_epochs) == (1234, 56)

    class Custom(VAEAnomalyDetector):  # a user's subclass keeps its parent's schedule
        pass

    assert Custom()._schedule("tabular") == (1234, 56)
