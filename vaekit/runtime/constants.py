"""Numbers both backends must share exactly (torch in :mod:`vaekit.core`, numpy here).

One definition each, so the two paths cannot drift apart.
"""

import math

# Posterior log-variance bounds: wide enough for very precise codes (sigma ~ 3e-4)
# and vague ones, narrow enough that exp() can never overflow.
LOGVAR_MIN, LOGVAR_MAX = -16.0, 8.0

LOG_2PI = math.log(2.0 * math.pi)
LOG_LEVELS_M1 = math.log(255.0)  # minus the log-width of one 8-bit level on [0, 1]

# |x - mean| / scale beyond this is clamped, so a value far outside float32's reach
# scores about -5e29 nats (finite, still the lowest of all) instead of -inf or NaN.
MAX_STANDARDIZED = 1e15

# Rows per inference block.  Every block is padded to exactly this many rows, because
# matrix kernels may pick a different summation order for a different number of
# rows (e.g. a single row takes a matrix-vector path); with one fixed shape a row's
# result is bit-identical whatever else is in its batch and however it was split.
INFERENCE_BLOCK = 256
