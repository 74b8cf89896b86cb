"""The two ways a fitted model's network runs: numpy (the lean runtime) or torch.

Both take prepared rows (numpy arrays, :meth:`FittedVAE.prepare`) and return float64
numpy arrays, so everything above them -- the table terms, explanations, the codec --
is shared.  Which one runs (:func:`choose`):

* ``torch`` when the model's device is a GPU (``device="cuda"``, or ``"auto"`` on a
  machine with CUDA), for convolutional networks, and for model files scored with
  torch's noise generator (written before the fixed draws moved to
  :mod:`vaekit.runtime.noise`);
* ``numpy`` otherwise: every table model and MLP image model on a CPU.

``VAEKIT_BACKEND=torch`` (or ``numpy``) in the environment overrides the choice where
the other backend can run the model (benchmarks compare the two this way).
"""

from __future__ import annotations

import os
import sys
from typing import Any

import numpy as np

from ..runtime import bound as nb
from ..runtime.layout import supports
from ..runtime.network import NumpyVAE
from ..runtime.noise import NOISE_RULE, standard_normal
from .scoring import RowScores

# Rows per fixed-shape block (see vaekit.core.batching.INFERENCE_BLOCK for why fixed).
INFERENCE_BLOCK = 256


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


def cuda_possible() -> bool:
    """Whether CUDA may be present, without importing torch where it cannot be.

    CUDA needs the NVIDIA driver, whose device nodes exist on every machine that has
    one; without them torch's answer is known (no CUDA) and torch stays unimported.
    """
    if "torch" not in sys.modules and not (os.path.exists("/dev/nvidiactl")
                                           or os.path.exists("/proc/driver/nvidia/version")):
        return False
    import torch

    return bool(torch.cuda.is_available())


def choose(config: dict[str, Any], device: str, noise_rule: str | None) -> str:
    """``"numpy"`` or ``"torch"`` for a model (see the module docstring)."""
    numpy_ok = supports(config) and noise_rule == NOISE_RULE
    gpu = device.startswith("cuda") or (device == "auto" and cuda_possible())
    wanted = os.environ.get("VAEKIT_BACKEND", "").strip().lower()
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
        return nb.encode_rows(self.net, np.asarray(x, dtype=np.float32), INFERENCE_BLOCK)

    def decode(self, z: np.ndarray) -> list[np.ndarray]:
        """Point reconstructions of codes ``z``: tables [num, bin, cat], images [pixels]."""
        return [np.asarray(o, dtype=np.float64)
                for o in nb.decode_rows(self.net, z, INFERENCE_BLOCK)]

    def numeric(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Tables: decoder numeric means and scales of codes ``z``, float64."""
        t, sigma = nb.decode_rows(self.net, z, INFERENCE_BLOCK, numeric=True)
        return t.astype(np.float64), sigma.astype(np.float64)

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

    def decode(self, z: np.ndarray) -> list[np.ndarray]:
        import torch

        from ..core.batching import map_blocks

        network, lik = self.network, self.network.likelihood
        zt = torch.from_numpy(np.ascontiguousarray(z, dtype=np.float32))
        with torch.no_grad():
            outs = map_blocks(lambda b: tuple(lik.mean(network.decode(b["z"])).values()),
                              {"z": zt}, self.device)
        return [o.numpy() for o in outs]

    def numeric(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import torch

        from ..core.batching import map_blocks

        network, lik = self.network, self.network.likelihood
        zt = torch.from_numpy(np.ascontiguousarray(z, dtype=np.float32))
        with torch.no_grad():
            t, sigma = map_blocks(lambda b: tuple(lik.split(network.decode(b["z"]))[:2]),
                                  {"z": zt}, self.device)
        return t.numpy(), sigma.numpy()

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
