"""The start every benchmark recipe shares.

* One BLAS / OpenMP / numba thread per process, set before numpy loads: the
  recipes compare CPU seconds on one thread.
* The checkout and this folder on ``sys.path``, so a recipe runs from a checkout
  without installing vaekit and can import the other recipes.

A recipe imports it before numpy::

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import recipe_env  # noqa: E402
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "recipes" / "results"
for _p in (ROOT, ROOT / "recipes"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))
