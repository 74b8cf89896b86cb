"""The two ways a fitted model's network runs: numpy (the lean runtime) or torch.

Both take prepared rows (numpy arrays, :meth:`FittedVAE.prepare`) and return numpy
arrays (floats as float64), so everything above them -- the table terms, explanations, the codec --
is shared.  Which one runs (:func:`choose`):

* ``torch`` when the model's device is a GPU (``device="cuda"``, or ``"auto"`` where
  torch sees one, :func:`vaekit._runtime.cuda_possible`), for convolutional networks, and for model files scored with
  torch's noise generator (written before the fixed draws moved to
  :mod:`vaekit.runtime.noise`);
* ``numpy`` otherwise: every table model and MLP image model on a CPU.

``VAEKIT_BACKEND=torch`` (or ``numpy``) in the environment overrides the choice where
the other backend can run the model (benchmarks compare the two this way).
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np

from .._runtime import cuda_possible
from ..runtime import bound as nb
from ..runtime.constants import INFERENCE_BLOCK
from ..runtime.layout import supports
from ..runtime.network import NumpyVAE
from ..runtime.noise import NOISE_RULE, standard_normal
from .scoring import RowScores


def scoring_block(config: dict[str, Any], n_samples: int) -> int:
    """Rows per inference block when scoring with ``n_samples`` draws.

    A function of the model and ``n_samples`` only -- never of the batch, the chunking
    or the threads -- so scores stay bit-identical however rows arrive.  Table models
    (MLPs) at few samples take larger blocks (up to 4x
    :data:`INFERENCE_BLOCK`, about 1,000 to 4,000 decoder rows per block): less
    per-block overhead, while the decoder's activations of a block still fit in the
    caches.  Image models keep :data:`INFERENCE_BLOCK` (wide decoder rows; and
    convolution kernels may pick another algorithm for another batch size).
    """
    if config.get("kind") == "tabular" and config.get("architecture", "mlp") == "mlp":
        return INFERENCE_BLOCK * max(1, min(4, 16 // max(1, int(n_samples))))
    return INFERENCE_BLOCK


def choose(config: dict[str, Any], device: str, noise_rule: str | None) -> str:
    """``"numpy"`` or ``"torch"`` for a model (see the module docstring)."""
    numpy_ok = supports(config) and noise_rule == NOISE_RULE
    gpu = device.startswith("cuda") or (device == "auto" and cuda_possible())
    wanted = os.environ.get("VAEKIT_BACKEND", "").strip().lower()
    if wanted not in ("", "numpy", "torch"):
        warnings.warn(f"VAEKIT_BACKEND={wanted!r} is neither 'numpy' nor 'torch'; ignored",
                      UserWarning, stacklevel=2)
    if wanted == "torch" or not numpy_ok:
        return "torch"
    if wanted == "numpy":
        return "numpy"
    return "torch" if gpu or device not in ("auto", "cpu") else "numpy"


def fixed_noise(latent_dim: int, n_samples: int, seed: int, rule: str | None) -> np.ndarray:
    """The ``(n_samples, latent_dim)`` draws every row is scored with, float32.

    ``rule`` is the model file's ``fitted.noise``: :data:`NOISE_RULE` (any backend)
    or ``None`` (older files: torch's generator, which needs torch).
    """
    if rule == NOISE_RULE:
        return standard_normal(n_samples, latent_dim, seed)
    import torch

    gen = torch.Generator().manual_seed(int(seed))
    return torch.randn(n_samples, latent_dim, generator=gen).numpy()


class NumpyBackend:
    """The network evaluated by :mod:`vaekit.runtime` (numpy + BLAS)."""

    name = "numpy"

    def __init__(self, config: dict[str, Any], weights: dict[str, np.ndarray]) -> None:
        self.net = NumpyVAE(config, weights)
        self.config = config

    def encode(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior means and log-variances (n, latent_dim), float64."""
        return nb.encode_rows(self.net, np.asarray(x, dtype=np.float32),
                              scoring_block(self.config, 1))

    def decode(self, z: np.ndarray, scales: bool = False) -> list[np.ndarray]:
        """Point reconstructions of codes ``z`` (floats as float64; level indices as
        integers here, as their float64 values from torch): tables [num, bin, cat],
        images [pixels]; with ``scales`` (tables) the numeric Gaussian scales appended
        (one decoder pass for both)."""
        return _float64(nb.decode_rows(self.net, z, scoring_block(self.config, 1),
                                       scales=scales))

    def scores(self, batch: dict[str, np.ndarray], eps: np.ndarray,
               block: int | None = None) -> RowScores:
        """Network bound terms of prepared rows (:class:`RowScores`, nats).

        ``block``: rows per inference block, default :func:`scoring_block`.
        """
        arrays = {k: np.asarray(v) for k, v in batch.items()}
        block = block or scoring_block(self.config, eps.shape[0])
        pf, elbo, kl = nb.score_rows(self.net, arrays, eps, block)
        return RowScores(elbo, pf, kl)


class TorchBackend:
    """The network as the torch module it was trained as (CPU or GPU)."""

    name = "torch"

    def __init__(self, network: Any, device: Any) -> None:
        self.network = network
        self.device = device

    def encode(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import torch

        from ..core.batching import as_tensors, map_blocks

        network = self.network
        with torch.no_grad():
            mu, logvar = map_blocks(lambda b: network.encode(b["x"]), as_tensors({"x": x}),
                                    self.device)
        return mu.numpy(), logvar.numpy()

    def decode(self, z: np.ndarray, scales: bool = False) -> list[np.ndarray]:
        """As :meth:`NumpyBackend.decode`."""
        import torch

        from ..core.batching import map_blocks

        network, lik = self.network, self.network.likelihood

        def run(b: dict[str, Any]) -> tuple[Any, ...]:
            params = network.decode(b["z"])
            means = tuple(lik.mean(params).values())
            return (*means, lik.split(params)[1]) if scales else means

        zt = torch.from_numpy(np.ascontiguousarray(z, dtype=np.float32))
        with torch.no_grad():
            outs = map_blocks(run, {"z": zt}, self.device)
        return _float64([o.numpy() for o in outs])

    def scores(self, batch: dict[str, np.ndarray], eps: np.ndarray,
               block: int | None = None) -> RowScores:
        """As :meth:`NumpyBackend.scores`."""
        import torch

        from ..core.batching import as_tensors, map_blocks
        from ..core.objectives import iwae_terms

        network = self.network
        network.eval()
        noise = torch.from_numpy(np.ascontiguousarray(eps)).to(self.device)

        def terms(b: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
            t = iwae_terms(network, b, noise)
            return t.recon_per_feature, t.kl

        with torch.no_grad():
            per_feature_t, kl_t = map_blocks(terms, as_tensors(batch), self.device,
                                             block or scoring_block(self.config, eps.shape[0]))
        pf, kl = per_feature_t.numpy(), kl_t.numpy()
        # Summed here in float64 so that the per-feature terms add up to the total exactly.
        return RowScores(pf.sum(axis=1) - kl, pf, kl)

    @property
    def config(self) -> dict[str, Any]:
        return getattr(self.network, "config", {})


def _float64(arrays: list[np.ndarray]) -> list[np.ndarray]:
    return [a.astype(np.float64) if a.dtype.kind == "f" else a for a in arrays]
