"""The training figure: per-epoch costs, the epoch kept, and why training stopped there."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .style import TRAIN_COLOR, VAL_COLOR, _figure, _plain, fitted_model

if TYPE_CHECKING:  # pragma: no cover - typing only
    from matplotlib.figure import Figure


def training_curves(model_or_history: Any, *, note: str | None = None) -> Figure:
    """Negative ELBO, reconstruction term and KL per epoch, training vs validation.

    Every panel is a cost in nats per row, lower is better, with one sign
    throughout: negative ELBO = reconstruction cost (negative log-likelihood) + KL.
    That is the number the anomaly score and the fit progress bar show.

    Parameters
    ----------
    model_or_history : FittedVAE, fitted estimator or list of dict
        A model (its ``history`` is used) or such a history: one dict per epoch
        with ``train_elbo``, ``train_recon``, ``train_kl`` and optionally the
        ``val_`` counterparts and ``beta``, all in nats per row (ELBO with beta = 1).
    note : str, optional
        Text printed under the panels; default for a model: :func:`stopping_note`
        (how long training ran and why it stopped there).

    Returns
    -------
    Figure
        Three panels sharing the epoch axis; the epoch whose weights were kept is
        marked when the history shows it.
    """
    from matplotlib.ticker import MaxNLocator

    if isinstance(model_or_history, Sequence):
        history, fitted = model_or_history, None
    else:
        fitted = fitted_model(model_or_history)
        history = fitted.history
    if note is None:
        note = stopping_note(fitted if fitted is not None else history)
    frame = pd.DataFrame(list(history))
    fig = _figure(3.4 + (0.75 if note else 0.0))
    axes = fig.subplots(1, 3, sharex=True)
    epoch = frame["epoch"] if "epoch" in frame else np.arange(1, len(frame) + 1)
    panels = [("elbo", -1.0, "negative ELBO (nats/row, lower is better)"),
              ("recon", -1.0, "reconstruction cost, -log p(x|z) (nats/row)"),
              ("kl", 1.0, "KL to prior (nats/row)")]
    best = best_epoch(history, _training_beta(fitted))
    for ax, (term, sign, ylabel) in zip(axes, panels, strict=True):
        for split, color in (("train", TRAIN_COLOR), ("val", VAL_COLOR)):
            key = f"{split}_{term}"
            if key in frame and frame[key].notna().any():
                label = "training" if split == "train" else "validation"
                ax.plot(epoch, sign * frame[key], color=color, marker="o", markersize=3,
                        label=label)
        if best is not None:
            ax.axvline(best, color="0.35", linestyle=":", linewidth=1.2,
                       label=f"kept: epoch {best}")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize="small")
    fig.suptitle("Training curves (negative ELBO = reconstruction cost + KL)")
    if note:
        # A supxlabel, so the constrained layout makes room for it under the panels.
        text = "\n".join(textwrap.fill(line, NOTE_WIDTH) for line in note.split("\n"))
        fig.supxlabel(_plain(text), x=0.01, ha="left", fontsize="small", color="0.25")
    return fig


# Characters per line of the note under the training panels (small type, 10 in wide).
NOTE_WIDTH = 150
# Early stopping waits this many epochs at least (training/elbo.py: max(5, epochs // 10)).
MIN_PATIENCE = 5


def best_epoch(history: Sequence[dict[str, Any]], beta: float | None = None) -> int | None:
    """The epoch whose weights ELBO training kept, or None when the history cannot say.

    The rule of :func:`vaekit.training.elbo.train_vae`: after the KL warm-up (epochs
    whose KL weight is below ``beta``), the epoch with the best validation
    objective (reconstruction - beta * KL; training rows when nothing was held
    out), the first one on ties.  ``beta``: the training KL weight (default: the
    largest the history records).
    """
    records = [h for h in history if "beta" in h and "train_recon" in h]
    if not records:
        return None  # not an ELBO-training history (e.g. the codec route's phases)
    beta = max(float(h["beta"]) for h in records) if beta is None else float(beta)
    prefix = "val" if records[-1].get("val_recon") is not None else "train"
    best, best_value = None, -np.inf
    for h in records:
        if float(h["beta"]) < beta * (1 - 1e-9):
            continue  # still warming up: not judged
        value = float(h[f"{prefix}_recon"]) - beta * float(h[f"{prefix}_kl"])
        if value > best_value:
            best, best_value = int(h["epoch"]), value
    return best


def _phase_note(history: Sequence[dict[str, Any]]) -> str:
    """The note for a history of training phases (a compressor fitted for a byte budget)."""
    phases = list(dict.fromkeys(str(h["phase"]) for h in history if h.get("phase")))
    if not phases:
        return f"{len(history)} training records."
    kept = next((h["kept"] for h in reversed(history) if h.get("kept")), None)
    return (f"Trained for a byte budget in phases ({', '.join(phases)}; {len(history)} records): "
            "each pass is judged by the held-out error of the coded rows, not by the ELBO"
            + (f", and the {kept!r} phase's weights are kept" if kept else "")
            + ". Only the last record carries the ELBO.")


def _training_beta(fitted: Any) -> float | None:
    """The KL weight training used, when the model says (a compressor's ``beta`` may be
    ``"auto"``, resolved into ``beta_used``); None: read it off the history."""
    if fitted is None:
        return None
    for value in (fitted.extra.get("beta_used"), fitted.params.get("beta")):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    return None


def stopping_note(model_or_history: Any) -> str:
    """Two lines for the training figure: how long training ran, and why it stopped there.

    The first line is read off the history (epochs run, the epoch kept); the second
    states the schedule of the model's estimator (:mod:`vaekit.training.schedules`) and the
    early-stopping rule of :func:`vaekit.training.elbo.train_vae`.
    """
    if isinstance(model_or_history, Sequence):
        history, fitted = list(model_or_history), None
    else:
        fitted = fitted_model(model_or_history)
        history = fitted.history
    if not history:
        return ""
    n = len(history)
    best = best_epoch(history, _training_beta(fitted))
    if best is None:
        return _phase_note(history)
    last = int(history[-1].get("epoch", n))
    planned = history[-1].get("planned_epochs")  # recorded by models fitted since it existed
    if isinstance(planned, (int, float)) and last < planned:
        ran = f"Stopped early at epoch {last} of {int(planned)} planned"
    elif isinstance(planned, (int, float)):
        ran = f"Ran all {last} planned epochs"
    else:
        ran = f"Ran {last} epochs"
    facts = f"{ran}; the weights of epoch {best} are kept (best validation objective)."
    if last - best >= MIN_PATIENCE:
        facts += f" No later epoch improved on it ({last - best} epochs)."
    rule = ("Early stopping: after the KL warm-up, training stops once the validation "
            f"objective has not improved for max({MIN_PATIENCE}, planned epochs / 10) epochs.")
    if fitted is None:
        return facts + "\n" + rule
    epochs = fitted.params.get("epochs", "auto")
    # imported here: vaekit.training pulls in torch, and the report package loads fast
    from ..training.schedules import auto_schedule

    steps = auto_schedule(fitted.estimator, fitted.input_kind)
    if epochs != "auto":
        why = f"The schedule was set by hand: epochs={epochs}."
    elif steps is None:
        why = "The schedule is automatic (epochs chosen from the number of rows)."
    elif fitted.estimator == "VAEAnomalyDetector" and fitted.input_kind == "tabular":
        why = (f"Short on purpose: a detector fits tables for about {steps[0]} gradient steps "
               f"(at most {steps[1]} epochs); longer fits also learn the anomalies hidden "
               "in the training rows and rank them worse.")
    else:
        why = (f"The schedule aims at about {steps[0]:,} gradient steps (at most {steps[1]} "
               "epochs).")
    return facts + "\n" + why + " " + rule


__all__ = ["best_epoch", "stopping_note", "training_curves"]
