"""Structural checks of a model file's metadata before anything is built from it.

A model file from a stranger is data: after its checksum is verified, the JSON must
still have the shape vaekit wrote, or loading stops with a
:class:`~vaekit.errors.FileFormatError` instead of a Python traceback.
"""

from __future__ import annotations

from typing import Any

from ..errors import FileFormatError

# Keys of the "fitted" object and the JSON type each must have.
_FITTED_KEYS: dict[str, type | tuple[type, ...]] = {
    "input_kind": str,
    "input_form": str,
    "schema": dict,
    "config": dict,
    "seed": int,
    "history": list,
    "latent_stats": dict,
    "n_features_in": int,
}


def check_model_meta(meta: Any, source: str) -> None:
    """Refuse metadata that lacks a key or has a value of the wrong JSON type.

    Raises
    ------
    FileFormatError
        Naming ``source`` and the offending key.
    """
    if not isinstance(meta, dict):
        raise FileFormatError(f"{source}: model metadata is not a JSON object")
    if not isinstance(meta.get("params", {}), dict):
        raise FileFormatError(f"{source}: model metadata 'params' is not an object")
    fitted = meta.get("fitted")
    if not isinstance(fitted, dict):
        raise FileFormatError(f"{source}: model metadata lacks the 'fitted' object")
    for key, kind in _FITTED_KEYS.items():
        value = fitted.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise FileFormatError(f"{source}: model metadata 'fitted.{key}' is missing or "
                                  f"not a {getattr(kind, '__name__', kind)}")
    if fitted["input_kind"] not in ("tabular", "image"):
        raise FileFormatError(f"{source}: unknown input kind {fitted['input_kind']!r}")
    if fitted["input_form"] not in ("frame", "array"):
        raise FileFormatError(f"{source}: unknown input form {fitted['input_form']!r}")
    if fitted["schema"].get("type") not in ("tabular", "image"):
        raise FileFormatError(f"{source}: model schema has an unknown type")
