"""The fitted model (:class:`FittedVAE`): what a ``.vaekit`` file holds, and what runs on it.

Three words, one meaning each: *network* (the ``nn.Module``), *fitted model*
(:class:`FittedVAE`), *estimator* (the scikit-learn face holding one as ``fitted_``).

* :mod:`.model` -- :class:`FittedVAE` and :func:`as_fitted`;
* :mod:`.model_file` -- the ``.vaekit`` file format (safetensors + JSON, checksummed);
* :mod:`.scoring` -- negative-ELBO terms with fixed noise, thresholds;
* :mod:`.streams` -- rows <-> ``.vkc`` containers (:class:`CompressedWriter`,
  :func:`iter_decompressed`) and the one model resolver;
* :mod:`.payload` -- the chunk payload layout (head, codes, missing mask, ids);
* :mod:`.digits` -- how many digits a restored float keeps;
* :mod:`.manifests` -- decoding manifests of part containers;
* :mod:`.checks` -- the metadata and tensor-shape checks a loaded model passes first;
* :mod:`.describe` -- what ``vaekit info`` prints.
"""

from typing import TYPE_CHECKING, Any

from .model import FittedVAE, as_fitted

if TYPE_CHECKING:
    from .streams import CompressedWriter, iter_decompressed

__all__ = ["CompressedWriter", "FittedVAE", "as_fitted", "iter_decompressed"]
_LAZY = ("CompressedWriter", "iter_decompressed")


def __getattr__(name: str) -> Any:
    # The container side on first use: scoring never loads the codec's modules
    # (a shorter start-up for `vaekit score`).
    if name in _LAZY:
        from . import streams

        return getattr(streams, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
