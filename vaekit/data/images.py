"""Image schema: accept image arrays and turn them into [0, 1] tensors.

Folders of image files are read into arrays by :func:`vaekit.files.readers.load_image_folder`.

Accepted array layouts: ``(N, H, W)`` (grayscale), ``(N, H, W, C)`` and ``(N, C, H, W)``
with ``C`` in {1, 3, 4}; dtype ``uint8`` (0..255) or float in [0, 1].  The schema remembers
the layout and dtype so reconstructions come back in the input's own form.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import DataError

LAYOUTS = ("NHW", "NHWC", "NCHW")
N_LEVELS = 256  # pixels are modelled as 8-bit values
ZLIB_LEVEL = 9  # the reference coder of complexity-corrected image scores
NATS_PER_BIT = math.log(2.0)


def complexity_nats(x: Any, cap: float | None = None) -> np.ndarray:
    """Code length, in nats, of each image under a generic lossless coder (zlib).

    ``x`` is an encoded batch (n, C, H, W) of pixels in [0, 1] on the 8-bit grid (what
    :meth:`ImageSchema.encode` returns; a torch tensor or an array).  Each image's
    8-bit levels ``round(255 * x)`` are laid out channel by channel, row by row (C, H,
    W order, one byte per value), compressed with ``zlib.compress(bytes, 9)``, and the
    compressed length in bytes is turned into nats: ``8 * len * ln 2``.

    This is the "input complexity" of Serra et al. (2020): how many nats an image
    takes when nothing is known about the data set.  Anomaly scores of image
    detectors subtract it from the model's negative log-likelihood, which leaves the
    nats the model *saves or wastes* against the generic coder -- a log-likelihood
    ratio that does not reward simple images for being simple.  Deterministic: a
    pure function of the 8-bit pixels (zlib's level-9 output for given bytes does
    not vary between runs or machines).  With ``cap``, lengths above it are ``cap``
    (the detector's cap: the largest among its training images).
    """
    arr = x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)
    if arr.ndim != 4:
        raise DataError(f"complexity_nats needs an (n, C, H, W) batch, got shape {arr.shape}")
    levels = np.rint(arr.astype(np.float64) * (N_LEVELS - 1)).clip(0, N_LEVELS - 1)
    levels = np.ascontiguousarray(levels.astype(np.uint8))
    out = np.empty(levels.shape[0], dtype=np.float64)
    for i in range(levels.shape[0]):
        out[i] = 8 * len(zlib.compress(levels[i].tobytes(), ZLIB_LEVEL)) * NATS_PER_BIT
    return out if cap is None else np.minimum(out, cap)


def detect_layout(shape: Sequence[int]) -> str:
    """Guess the layout of an image batch from its shape."""
    if len(shape) == 3:
        return "NHW"
    if len(shape) == 4:
        if shape[-1] in (1, 3, 4):
            return "NHWC"
        if shape[1] in (1, 3, 4):
            return "NCHW"
        raise DataError(
            f"cannot tell the channel axis of images shaped {tuple(shape)}: expected "
            "(N, H, W, C) or (N, C, H, W) with C in {1, 3, 4}"
        )
    raise DataError(
        f"images must be a 3-D (N, H, W) or 4-D (N, H, W, C) / (N, C, H, W) array, "
        f"got shape {tuple(shape)}"
    )


def to_nchw(x: np.ndarray, layout: str) -> np.ndarray:
    if layout == "NHW":
        return x[:, None, :, :]
    if layout == "NHWC":
        return np.moveaxis(x, -1, 1)
    return x


def from_nchw(x: np.ndarray, layout: str) -> np.ndarray:
    if layout == "NHW":
        return x[:, 0]
    if layout == "NHWC":
        return np.moveaxis(x, 1, -1)
    return x


class ImageSchema:
    """Shape, layout and pixel range of an image set, fitted once.

    Attributes
    ----------
    shape : tuple of int
        ``(C, H, W)``.
    layout : {"NHW", "NHWC", "NCHW"}
        The input's layout, restored on output.
    dtype : str
        The input's dtype; ``uint8`` means pixels 0..255, floats mean [0, 1].
    """

    def __init__(self, layout: str | None = None) -> None:
        self.layout = layout
        self.shape: tuple[int, int, int] = (0, 0, 0)
        self.dtype = "uint8"

    def fit(self, x: np.ndarray) -> ImageSchema:
        x = np.asarray(x)
        if x.ndim == 0 or x.shape[0] == 0:
            raise DataError("empty input: at least one image is needed to fit")
        layout = self.layout or detect_layout(x.shape)
        if layout not in LAYOUTS:
            raise DataError(f"unknown image layout {layout!r}; expected one of {LAYOUTS}")
        self.layout = layout
        self.shape = tuple(int(v) for v in to_nchw(x[:1], layout).shape[1:])  # type: ignore[assignment]
        self.dtype = str(x.dtype)
        self._check_range(x)
        return self

    @property
    def n_pixels(self) -> int:
        c, h, w = self.shape
        return c * h * w

    def _check_range(self, x: np.ndarray) -> None:
        if x.dtype == np.uint8:
            return
        if not np.issubdtype(x.dtype, np.number):
            raise DataError(f"image pixels must be numbers, got dtype {x.dtype}")
        finite = np.isfinite(x)
        if not finite.all():
            pos = int(np.argwhere(~finite)[0][0])
            raise DataError("image contains NaN or inf pixels", row=pos)
        if np.issubdtype(x.dtype, np.integer):
            bad = (x < 0) | (x > 255)
            expected = "integers 0..255"
        else:
            bad = (x < 0) | (x > 1)
            expected = "floats in [0, 1] (divide 8-bit images by 255 or pass them as uint8)"
        if bad.any():
            pos = int(np.argwhere(bad)[0][0])
            raise DataError(f"pixel values must be {expected}", row=pos)

    def encode(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Images -> ``{"x": float32 array (n, C, H, W) in [0, 1]}``.

        Float inputs are rounded to the nearest of 256 levels, because the pixel
        likelihood is defined on 8-bit values.
        """
        x = np.asarray(x)
        if x.ndim == 0 or x.shape[0] == 0:
            raise DataError("empty input: no images to process")
        if x.ndim != len(self.layout or ""):
            raise DataError(
                f"expected images shaped like {self.layout} with (C, H, W) = {self.shape}, "
                f"got array of shape {x.shape}"
            )
        self._check_range(x)
        nchw = to_nchw(x, self.layout or "NCHW")
        if tuple(nchw.shape[1:]) != tuple(self.shape):
            raise DataError(
                f"expected images of (C, H, W) = {self.shape}, got {tuple(nchw.shape[1:])}"
            )
        if np.issubdtype(x.dtype, np.floating):
            levels = np.rint(nchw.astype(np.float64) * (N_LEVELS - 1))
        else:
            levels = nchw.astype(np.float64)
        return {"x": (levels / (N_LEVELS - 1)).astype(np.float32)}

    def decode(self, pixels: np.ndarray) -> np.ndarray:
        """Float pixels (n, C, H, W) in [0, 1] -> images in the input's layout and dtype."""
        p = np.clip(pixels, 0.0, 1.0)
        if np.issubdtype(np.dtype(self.dtype), np.integer):
            out = np.rint(p * (N_LEVELS - 1)).astype(self.dtype)
        else:
            out = p.astype(self.dtype)
        return from_nchw(out, self.layout or "NCHW")

    def to_dict(self) -> dict[str, Any]:
        return {"type": "image", "shape": list(self.shape), "layout": self.layout,
                "dtype": self.dtype}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ImageSchema:
        schema = cls(layout=d["layout"])
        schema.shape = tuple(int(v) for v in d["shape"])  # type: ignore[assignment]
        schema.dtype = str(d["dtype"])
        return schema
