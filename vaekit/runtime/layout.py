"""Which configs the numpy runtime runs, and the tensors (names, shapes) a config implies.

Mirrors :func:`vaekit.core.build_vae` for MLP configs without importing torch, so a
model file's header can be checked against its config before any weight is read (a
test compares these shapes with the torch modules' for every supported layout).
"""

from __future__ import annotations

from typing import Any


class Unsupported(ValueError):
    """A config the numpy runtime does not evaluate (convolutional networks)."""


def supports(config: dict[str, Any]) -> bool:
    """True when the numpy runtime evaluates networks built from ``config``."""
    return config.get("architecture", "mlp") == "mlp" and config.get("kind") in ("tabular",
                                                                               "image")


def _mlp(prefix: str, sizes: list[int]) -> dict[str, tuple[int, ...]]:
    out: dict[str, tuple[int, ...]] = {}
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=False)):
        # nn.Sequential numbers a Linear and its SiLU: the Linear layers are 0, 2, 4, ...
        out[f"{prefix}.{2 * i}.weight"] = (b, a)
        out[f"{prefix}.{2 * i}.bias"] = (b,)
    return out


def expected_shapes(config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape of the network ``config`` describes (MLP configs only).

    Raises
    ------
    Unsupported
        For convolutional configs.
    ValueError, KeyError, TypeError
        For a config that does not describe a network.
    """
    if not supports(config):
        raise Unsupported(f"the numpy runtime does not run {config.get('architecture')!r} "
                          "networks")
    latent = int(config["latent_dim"])
    hidden = [int(h) for h in config["hidden"]]
    down = list(reversed(hidden))
    lp = config.get("linear_path")
    if config["kind"] == "tabular":
        d_in = int(config["d_in"])
        n_num = int(config["n_numeric"])
        d_out = 2 * n_num + int(config["n_binary"]) + sum(int(k) for k in config["cat_sizes"])
        shapes = _mlp("encoder.body", [d_in, *hidden, 2 * latent])
        if lp:
            shapes.update(_mlp("decoder.body", [latent, *down, d_out]))
            n_lin = int(lp["n_in"])
            shapes.update({"encoder.linear.weight": (latent, n_lin), "encoder.linear.bias": (latent,),
                           "decoder.linear.weight": (n_num, latent), "decoder.linear.bias": (n_num,)})
        else:
            shapes.update(_mlp("decoder", [latent, *down, d_out]))
        return _positive(shapes)
    c, h, w = (int(v) for v in config["shape"])
    n_pix = c * h * w
    if lp:
        shapes = _mlp("encoder.body", [n_pix, *hidden, 2 * latent])
        shapes.update(_mlp("decoder.body", [latent, *down, 2 * n_pix]))
        shapes.update({"encoder.linear.weight": (latent, n_pix), "encoder.linear.bias": (latent,),
                       "decoder.linear.weight": (n_pix, latent), "decoder.linear.bias": (n_pix,)})
        if config.get("image_scale", "pixel") == "shared":
            shapes["likelihood.raw_scale"] = (c, 1, 1)
        return _positive(shapes)
    shared = config.get("image_scale", "pixel") == "shared"
    out_c = c if shared else 2 * c
    shapes = _mlp("encoder.body.body", [n_pix, *hidden, 2 * latent])
    shapes.update(_mlp("decoder.body", [latent, *down, out_c * h * w]))
    if shared:
        shapes["likelihood.raw_scale"] = (c, 1, 1)
    return _positive(shapes)


def _positive(shapes: dict[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
    bad = [k for k, s in shapes.items() if any(d <= 0 for d in s)]
    if bad:
        raise ValueError(f"tensor {bad[0]!r} would have shape {shapes[bad[0]]}")
    return shapes
