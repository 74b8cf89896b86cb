"""ELBO training of a VAE: KL warm-up, trimmed batches, early stopping on validation ELBO.

Runs on the shared Adam loop (:func:`vaekit.training.loop.adam_passes`).

Defaults scale with the data so nobody has to tune them (see :func:`resolve_schedule`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from .._runtime import torch_threads
from ..core.batching import Batch, take, to_device
from ..core.objectives import elbo_terms
from ..core.vae import VAE, build_vae
from ..errors import TrainingError
from .loop import BestState, adam_passes


@dataclass
class TrainConfig:
    """Optimisation settings; ``None`` means "choose from the data size".

    Attributes
    ----------
    epochs, batch_size : int or None
    learning_rate : float
        Adam step size.
    beta : float
        Weight of the KL term in the training objective only (reported ELBOs use 1).
    warmup_fraction : float
        Share of the planned steps over which the KL weight ramps from 0 to ``beta``.
    validation_fraction : float or None
        Rows held out for early stopping; ``None`` = 10 % when there are >= 100 rows.
    patience : int or None
        Epochs without a better validation objective (reconstruction - beta * KL)
        before stopping.
    clip_grad : float
        Maximum gradient norm.
    trim_fraction : float
        After warm-up, the share of each batch's worst-fit rows left out of the
        gradient, so a few anomalies in the training data cannot dominate it.
    target_steps : int
        Gradient steps the automatic epoch count aims for.
    max_epochs : int
        Upper bound of the automatic epoch count (passes over the training rows).
    """

    epochs: int | None = None
    batch_size: int | None = None
    learning_rate: float = 1e-3
    beta: float = 1.0
    warmup_fraction: float = 0.1
    validation_fraction: float | None = None
    patience: int | None = None
    clip_grad: float = 10.0
    trim_fraction: float = 0.0
    target_steps: int = 3000
    max_epochs: int = 300


def resolve_schedule(n_rows: int, cfg: TrainConfig) -> tuple[int, int, int]:
    """Batch size, epochs and validation rows for ``n_rows`` rows.

    - batch size: ``n / 32`` rounded to a power of two, clipped to 16..512, never more
      than the training rows (10 rows train as one batch of 10);
    - epochs: enough for about ``target_steps`` gradient steps, clipped to
      2..``max_epochs`` (small data gets many epochs, millions of rows get 2);
    - validation: 10 % of the rows (at most 10,000) when there are at least 100.
    """
    if cfg.validation_fraction is None:
        n_val = min(10_000, n_rows // 10) if n_rows >= 100 else 0
    else:
        n_val = int(round(cfg.validation_fraction * n_rows))
    n_val = min(n_val, n_rows - 1)
    n_train = n_rows - n_val
    if cfg.batch_size is None:
        batch = int(2 ** round(math.log2(max(n_train / 32, 1))))
        batch = min(512, max(16, batch))
    else:
        batch = int(cfg.batch_size)
    batch = max(1, min(batch, n_train))
    if cfg.epochs is None:
        steps_per_epoch = math.ceil(n_train / batch)
        epochs = min(cfg.max_epochs, max(2, math.ceil(cfg.target_steps / steps_per_epoch)))
    else:
        epochs = int(cfg.epochs)
    return epochs, batch, n_val


# Optional key of the training data: per-row nats subtracted from each row's loss when
# ranking rows for trimming (the gradient is the loss's own).
TRIM_OFFSET = "trim_offset"


def _weighted_loss(terms: Any, beta: float, trim: float,
                   offset: torch.Tensor | None = None) -> torch.Tensor:
    loss = -(terms.recon - beta * terms.kl)
    if trim > 0 and loss.shape[0] >= 4:
        # Rows above the batch's (1 - trim) quantile get no gradient this step.  They
        # are ranked by what the detector will score (loss minus the per-row offset,
        # e.g. an image's complexity), so the rows trimmed are the ones it would flag.
        rank = loss.detach() if offset is None else loss.detach() - offset
        cut = torch.quantile(rank, 1.0 - trim)
        keep = (rank <= cut).to(loss.dtype)
        return (loss * keep).sum() / keep.sum().clamp_min(1.0)
    return loss.mean()


@torch.no_grad()
def evaluate(model: VAE, data: Batch, eps_gen: torch.Generator, batch_size: int,
             device: torch.device) -> dict[str, float]:
    """Mean ELBO, reconstruction and KL (nats per row, beta = 1) over ``data``."""
    n = next(iter(data.values())).shape[0]
    totals = torch.zeros(3, dtype=torch.float64)
    for start in range(0, n, batch_size):
        b = to_device(take(data, torch.arange(start, min(n, start + batch_size))), device)
        eps = torch.randn(1, b["x"].shape[0], model.latent_dim, generator=eps_gen).to(device)
        t = elbo_terms(model, b, eps)
        totals += torch.stack([t.elbo.sum(), t.recon.sum(), t.kl.sum()]).double().cpu()
    mean = (totals / max(n, 1)).tolist()
    return {"elbo": mean[0], "recon": mean[1], "kl": mean[2]}


def train_vae(
    model: VAE,
    data: Batch,
    cfg: TrainConfig,
    seed: int,
    device: torch.device,
    progress: Callable[[int, int, float], None] | None = None,
) -> list[dict[str, float]]:
    """Fit ``model`` to ``data`` in place; return the per-epoch history.

    Parameters
    ----------
    data : dict of str to Tensor
        Prepared rows (CPU tensors, first axis = rows).  An optional
        ``TRIM_OFFSET`` entry, shape (n,), in nats, is subtracted from each row's
        loss when trimming ranks rows (``cfg.trim_fraction``).
    seed : int
        Seeds the split, the shuffling and the reparameterization noise.
    progress : callable, optional
        Called after every epoch as ``progress(epoch, epochs, neg_elbo)``: the
        training rows' negative ELBO, nats per row.

    Returns
    -------
    list of dict
        One entry per epoch: ``epoch``, ``planned_epochs`` (the schedule's epochs;
        fewer entries mean early stopping), ``beta``, ``train_elbo``, ``train_recon``,
        ``train_kl`` and (when a validation split exists) ``val_elbo``, ``val_recon``,
        ``val_kl`` — nats per row, ELBO always with beta = 1.

    Raises
    ------
    TrainingError
        If the loss becomes NaN or infinite.
    """
    n = next(iter(data.values())).shape[0]
    epochs, batch_size, n_val = resolve_schedule(n, cfg)
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(n, generator=gen)
    val = take(data, order[:n_val]) if n_val else None
    train = to_device(take(data, order[n_val:]), device)
    n_train = n - n_val
    steps_per_epoch = math.ceil(n_train / batch_size)
    warmup = max(1, int(cfg.warmup_fraction * epochs * steps_per_epoch))
    patience = cfg.patience if cfg.patience is not None else max(5, epochs // 10)
    history: list[dict[str, float]] = []
    best = BestState()
    state = {"beta": 0.0, "step": 0, "bad_epochs": 0}
    model.to(device)

    def step_loss(idx: torch.Tensor, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        b = take(train, idx)
        beta = cfg.beta * min(1.0, step / warmup)
        state["beta"], state["step"] = beta, step + 1
        eps = torch.randn(1, b["x"].shape[0], model.latent_dim, generator=gen).to(device)
        terms = elbo_terms(model, b, eps)
        loss = _weighted_loss(terms, beta, cfg.trim_fraction if step >= warmup else 0.0,
                              b.get(TRIM_OFFSET))
        sums = torch.stack([terms.elbo.sum(), terms.recon.sum(), terms.kl.sum()])
        return loss, sums.detach().double()

    def end_of_epoch(epoch: int, _loss: float, sums: torch.Tensor | None) -> bool:
        assert sums is not None
        tr = (sums / n_train).tolist()
        # planned_epochs: what the schedule allowed, so a report can say "stopped
        # early at epoch N of P".
        record = {"epoch": epoch, "planned_epochs": epochs, "beta": state["beta"],
                  "train_elbo": tr[0], "train_recon": tr[1], "train_kl": tr[2]}
        if val is not None:
            v = evaluate(model, val, torch.Generator().manual_seed(seed + 1), 4096, device)
            record.update(val_elbo=v["elbo"], val_recon=v["recon"], val_kl=v["kl"])
        history.append(record)
        if progress is not None:
            progress(epoch, epochs, -tr[0])
        # Early stopping watches the objective being optimised (KL weighted by beta): with
        # beta < 1 the beta = 1 ELBO can get worse while the model is still improving.
        prefix = "val" if val is not None else "train"
        monitor = record[f"{prefix}_recon"] - cfg.beta * record[f"{prefix}_kl"]
        if state["step"] < warmup:
            return False  # the objective is still changing; don't judge epochs yet
        if not math.isfinite(monitor):
            raise TrainingError(f"validation ELBO is {monitor} at epoch {epoch}")
        if best.offer(-monitor, model):
            state["bad_epochs"] = 0
            return False
        state["bad_epochs"] += 1
        return state["bad_epochs"] >= patience

    adam_passes(model, list(model.parameters()), step_loss, n_rows=n_train,
                batch_size=batch_size, passes=epochs, generator=gen,
                learning_rate=cfg.learning_rate, clip_grad=cfg.clip_grad,
                on_pass_end=end_of_epoch, shuffle_device=device)
    best.restore(model)
    model.eval()
    return history


def fit_elbo_network(config: dict[str, Any], data: Batch, cfg: TrainConfig, seed: int,
                     device: torch.device, n_jobs: int | None = None,
                     progress: Callable[[int, int, float], None] | None = None,
                     ) -> tuple[VAE, list[dict[str, float]]]:
    """Build the network for ``config`` (weights seeded by ``seed``) and train it on ``data``.

    Runs on ``n_jobs`` torch threads; torch's global random state is left as it was.

    Returns
    -------
    (network, history)
        The trained network (eval mode, on ``device``) and :func:`train_vae`'s history.
    """
    with torch_threads(n_jobs), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        network = build_vae(config)
        history = train_vae(network, data, cfg, seed, device, progress=progress)
    return network, history
