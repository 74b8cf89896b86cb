"""The one Adam loop every training route runs: passes of shuffled minibatches, with hooks.

What every route shares lives here once: a divergence check (a NaN or infinite loss
stops with :class:`~vaekit.errors.TrainingError`), gradient-norm clipping, an optional
step-size schedule, and a pass-end hook that may stop early.  :class:`BestState` keeps
the network state a route judges best.  The routes differ only in their loss
(:mod:`.elbo` for the VAE, :mod:`.codec` for the codec).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

from ..errors import TrainingError

# Default maximum gradient norm (TrainConfig.clip_grad has the same default).
CLIP_GRAD = 10.0

# step_loss(index, step) -> (mean loss of the batch, optional tensor of per-pass sums)
StepLoss = Callable[[torch.Tensor, int], tuple[torch.Tensor, torch.Tensor | None]]
# on_pass_end(pass_number, mean_loss_per_row, sums or None) -> True to stop
PassEnd = Callable[[int, float, torch.Tensor | None], bool | None]
# on_step(steps_done): after every optimizer step (progress reporting only)
StepDone = Callable[[int], None]


def adam_passes(
    module: torch.nn.Module,
    params: Sequence[torch.nn.Parameter],
    step_loss: StepLoss,
    *,
    n_rows: int,
    batch_size: int,
    passes: int,
    generator: torch.Generator,
    learning_rate: float,
    clip_grad: float = CLIP_GRAD,
    schedule: Callable[[int], float] | None = None,
    on_pass_end: PassEnd | None = None,
    what: str = "training",
    shuffle_device: torch.device | str | None = None,
    on_step: StepDone | None = None,
) -> list[float]:
    """Run Adam over ``passes`` shuffled passes of ``n_rows`` rows.

    Parameters
    ----------
    module : nn.Module
        Put in train mode for each pass and in eval mode after it.
    params : sequence of Parameter
        What the optimizer updates (e.g. the decoder's only).
    step_loss : callable
        ``step_loss(index, step)`` -> ``(loss, sums)``: the mean loss of the rows
        ``index`` (a slice of the pass's permutation) at global step ``step``, and
        optionally a tensor of sums to add up over the pass.
    generator : torch.Generator
        Draws each pass's permutation (and whatever ``step_loss`` draws from it).
    schedule : callable, optional
        Step-size factor per step (``LambdaLR``), stepped after every update.
    on_pass_end : callable, optional
        ``on_pass_end(pass_number, mean_loss, sums)`` after each pass (1-based);
        returning True stops training.
    what : str
        Names the route in the divergence message.
    shuffle_device : device, optional
        Where the permutation is moved before slicing.
    on_step : callable, optional
        ``on_step(steps_done)`` after every optimizer step (1-based count of this
        call's steps): a progress hook; it cannot stop training.

    Returns
    -------
    list of float
        Mean loss per row of each pass.

    Raises
    ------
    TrainingError
        If a loss is NaN or infinite.
    """
    params = list(params)
    opt = torch.optim.Adam(params, lr=learning_rate)
    sched = None if schedule is None else torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    history: list[float] = []
    step = 0
    for epoch in range(passes):
        module.train()
        perm = torch.randperm(n_rows, generator=generator)
        if shuffle_device is not None:
            perm = perm.to(shuffle_device)
        running = 0.0
        sums: torch.Tensor | None = None
        for start in range(0, n_rows, batch_size):
            idx = perm[start:start + batch_size]
            loss, batch_sums = step_loss(idx, step)
            if not torch.isfinite(loss):
                raise TrainingError(
                    f"{what} diverged at epoch {epoch + 1}, step {step + 1}: loss is "
                    f"{loss.item()}. Lower learning_rate, or look for extreme values in the data."
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, clip_grad)
            opt.step()
            if sched is not None:
                sched.step()
            step += 1
            if on_step is not None:
                on_step(step)
            running += float(loss.detach()) * len(idx)
            if batch_sums is not None:
                sums = batch_sums if sums is None else sums + batch_sums
        module.eval()
        history.append(running / max(n_rows, 1))
        if on_pass_end is not None and on_pass_end(epoch + 1, history[-1], sums):
            break
    module.eval()
    return history


def cosine_schedule(total_steps: int, floor: float = 0.1) -> Callable[[int], float]:
    """Step-size factor decaying from 1 to ``floor`` along half a cosine over the run."""
    total = max(1, total_steps)

    def factor(s: int) -> float:
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * min(s, total) / total))

    return factor


class BestState:
    """The lowest-loss network state seen so far (a copy), with what came with it.

    ``offer(loss, module, **info)`` keeps a copy of ``module``'s state when ``loss``
    is lower than every earlier one; ``restore(module)`` loads it back.
    """

    def __init__(self, loss: float = math.inf) -> None:
        self.loss = loss
        self.state: dict[str, torch.Tensor] | None = None
        self.info: dict[str, Any] = {}

    def offer(self, loss: float, module: torch.nn.Module, **info: Any) -> bool:
        """Keep ``module``'s state if ``loss`` is the lowest yet; True if kept."""
        if not loss < self.loss:
            return False
        self.loss = loss
        self.state = copy_state(module)
        self.info = info
        return True

    def restore(self, module: torch.nn.Module) -> None:
        """Load the kept state into ``module`` (nothing if none was kept)."""
        if self.state is not None:
            module.load_state_dict(self.state)


def copy_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of ``module``'s state dict."""
    return copy.deepcopy({k: v.detach() for k, v in module.state_dict().items()})
