"""The fixed standard-normal draws every row is scored with (common random numbers).

Derived from the model's seed alone: numpy's ``PCG64(seed)`` (its state initialised
from the seed by numpy's ``SeedSequence``), 64-bit raw outputs, the top 53 bits of
each as a uniform in (0, 1], pairs turned into normals by the Box-Muller transform in
float64 (cos for the even draw, sin for the odd), rounded to float32, row-major.  Every
backend uses these same float32 values, and the draws for ``k`` samples are the first
``k`` rows of those for more samples.

Across machines: float64 ``log``, ``sin`` and ``cos`` may differ in the last bit
between CPU instruction sets; after rounding to float32 that moves a draw (by one
float32 step) only in the rare case it sits on a rounding boundary, about one draw in
10^8.
"""

from __future__ import annotations

import numpy as np

# The name model files record (``fitted.noise``) for draws made by this module.  Files
# without it were scored with torch's generator (``torch.randn``), which only the torch
# path reproduces.
NOISE_RULE = "pcg64-box-muller"


def standard_normal(n_samples: int, latent_dim: int, seed: int) -> np.ndarray:
    """The ``(n_samples, latent_dim)`` float32 draws of ``seed``; row-major prefix-stable."""
    n = int(n_samples) * int(latent_dim)
    pairs = (n + 1) // 2
    bits = np.random.PCG64(int(seed) & (2**128 - 1)).random_raw(2 * pairs)
    # 53-bit uniforms in (0, 1]: log() below never sees 0.
    u = ((bits >> np.uint64(11)).astype(np.float64) + 1.0) * (1.0 / 2.0**53)
    r = np.sqrt(-2.0 * np.log(u[0::2]))
    theta = 2.0 * np.pi * u[1::2]
    draws = np.empty(2 * pairs, dtype=np.float64)
    draws[0::2] = r * np.cos(theta)
    draws[1::2] = r * np.sin(theta)
    return draws[:n].astype(np.float32).reshape(int(n_samples), int(latent_dim))
