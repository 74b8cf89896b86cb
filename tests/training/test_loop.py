"""The shared Adam loop (vaekit.training.loop): divergence, clipping, hooks, kept state."""

import math

import pytest
import torch

from vaekit.errors import TrainingError
from vaekit.training.loop import BestState, adam_passes, cosine_schedule


def _problem() -> tuple[torch.nn.Linear, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 3, generator=gen)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]])
    return torch.nn.Linear(3, 1), x, y


def _mse(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor):
    def step_loss(idx: torch.Tensor, step: int):
        return (net(x[idx]) - y[idx]).pow(2).mean(), None

    return step_loss


def test_loop_fits_and_reports_one_loss_per_pass() -> None:
    net, x, y = _problem()
    history = adam_passes(net, list(net.parameters()), _mse(net, x, y), n_rows=64,
                          batch_size=16, passes=30, generator=torch.Generator().manual_seed(1),
                          learning_rate=0.05)
    assert len(history) == 30 and history[-1] < 0.05 * history[0]
    assert not net.training  # left in eval mode


def test_nan_loss_stops_with_a_named_training_error() -> None:
    net, x, y = _problem()

    def step_loss(idx: torch.Tensor, step: int):
        loss = (net(x[idx]) - y[idx]).pow(2).mean()
        return (loss * math.nan if step == 5 else loss), None

    with pytest.raises(TrainingError, match="codec tuning diverged at epoch 2, step 6"):
        adam_passes(net, list(net.parameters()), step_loss, n_rows=64, batch_size=16,
                    passes=3, generator=torch.Generator().manual_seed(1), learning_rate=0.01,
                    what="codec tuning")


def test_gradients_are_clipped_to_the_given_norm() -> None:
    net, x, y = _problem()
    before = net.weight.detach().clone()
    # lr 1 with a clip of 1e-3: Adam's first step moves each weight by ~lr regardless,
    # so check the clip through the gradient norm seen by the optimizer instead.
    seen = []
    hook = net.weight.register_hook(lambda g: seen.append(float(g.norm())))
    adam_passes(net, list(net.parameters()), _mse(net, x * 1e3, y * 1e3), n_rows=64,
                batch_size=64, passes=1, generator=torch.Generator().manual_seed(1),
                learning_rate=1e-3, clip_grad=1e-3)
    hook.remove()
    assert seen and seen[0] > 1.0  # the raw gradient is large ...
    total = math.sqrt(sum(float(p.grad.norm()) ** 2 for p in net.parameters()))
    assert total <= 1e-3 * 1.0001  # ... and clipped in place before the step
    assert not torch.equal(before, net.weight)


def test_pass_end_hook_stops_early_and_best_state_restores() -> None:
    net, x, y = _problem()
    best = BestState()
    calls = []

    def end(epoch: int, loss: float, sums) -> bool:
        calls.append(epoch)
        best.offer(loss if epoch != 2 else -1.0, net, epoch=epoch)
        return epoch == 4

    adam_passes(net, list(net.parameters()), _mse(net, x, y), n_rows=64, batch_size=16,
                passes=10, generator=torch.Generator().manual_seed(1), learning_rate=0.05,
                on_pass_end=end)
    assert calls == [1, 2, 3, 4]
    assert best.info == {"epoch": 2} and best.loss == -1.0
    kept = {k: v.clone() for k, v in best.state.items()}
    best.restore(net)
    assert all(torch.equal(net.state_dict()[k], v) for k, v in kept.items())


def test_cosine_schedule_runs_from_one_to_the_floor() -> None:
    f = cosine_schedule(100, floor=0.1)
    assert f(0) == pytest.approx(1.0) and f(100) == pytest.approx(0.1)
    assert f(50) == pytest.approx(0.55) and f(1000) == pytest.approx(0.1)
