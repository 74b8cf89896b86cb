"""The lean inference runtime: the fitted network evaluated with numpy alone.

Training stays in PyTorch.  Scoring, encoding and decoding of MLP models (every table
model, image models with ``architecture="mlp"``: the detector's default) run here, on numpy and
its BLAS, so a process that only scores imports neither torch nor scikit-learn
(about 2 s of start-up) and avoids torch's per-operation overhead on small matrices.
The quantities are the torch path's (:mod:`vaekit.core`) to float32 rounding: the
same layers, the same likelihoods with every constant, the same bound, the same fixed
noise (:func:`.noise.standard_normal`).  Convolutional models and GPU devices keep the
torch path; :meth:`vaekit.fitted.FittedVAE.backend` says which one runs.

Modules: :mod:`.constants` (numbers shared with the torch path), :mod:`.noise` (the
scoring draws), :mod:`.layout` (tensor names and shapes a config implies),
:mod:`.functions` (elementwise maths), :mod:`.network` (encoder, decoder and
likelihood heads), :mod:`.bound` (ELBO / IWAE terms per row).
"""

from .layout import Unsupported, expected_shapes, supports

__all__ = ["Unsupported", "expected_shapes", "supports"]
