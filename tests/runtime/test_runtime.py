"""The numpy runtime computes what the torch modules compute (to float32 rounding)."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
import torch

from vaekit import FittedVAE, VAEAnomalyDetector, VAECompressor
from vaekit._runtime import blas_threads
from vaekit.core import build_vae
from vaekit.fitted.backends import NumpyBackend, TorchBackend
from vaekit.runtime import expected_shapes, supports
from vaekit.runtime.network import NumpyVAE
from vaekit.runtime.noise import standard_normal

TABLE = dict(kind="tabular", latent_dim=3, architecture="mlp", hidden=[8, 8], min_scale=0.01,
             n_numeric=2, n_binary=1, cat_sizes=[3, 2], d_in=12)
LINEAR = dict(n_in=2, offset=[0.5, -1.0], scale=[2.0, 0.5], asinh=[True, False],
              asinh_width=3.0)
CONFIGS = {
    "table": TABLE,
    "table, per-column floors": {**TABLE, "num_min_scale": [0.01, 0.2]},
    "table, linear path": {**TABLE, "linear_path": LINEAR},
    "image, pixel scale": dict(kind="image", latent_dim=3, architecture="mlp", hidden=[8, 8],
                               min_scale=0.001, shape=[1, 4, 4]),
    "image, shared scale": dict(kind="image", latent_dim=3, architecture="mlp", hidden=[8, 8],
                                min_scale=0.001, shape=[3, 4, 4], image_scale="shared"),
    "image, linear path": dict(kind="image", latent_dim=3, architecture="mlp", hidden=[8, 8],
                               min_scale=0.001, shape=[1, 4, 4],
                               linear_path=dict(n_in=16, offset=None, scale=None, asinh=None,
                                                asinh_width=3.0)),
}


def _random_network(config: dict) -> torch.nn.Module:
    torch.manual_seed(0)
    net = build_vae(config)
    with torch.no_grad():
        for p in net.parameters():  # the linear paths start at zero: give them weights
            p.copy_(torch.randn_like(p) * 0.3)
    return net.eval()


def _batch(config: dict, n: int = 37) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    if config["kind"] == "image":
        c, h, w = config["shape"]
        return {"x": (rng.integers(0, 256, (n, c, h, w)) / 255).astype(np.float32)}
    cats = np.stack([rng.integers(0, k, n) for k in config["cat_sizes"]], axis=1)
    b = {"num": rng.normal(size=(n, 2)).astype(np.float32) * 3,
         "num_mask": (rng.random((n, 2)) > 0.2).astype(np.float32),
         "num_logjac": rng.normal(size=(n, 2)).astype(np.float32) * 0.1,
         "bin": rng.integers(0, 2, (n, 1)).astype(np.float32),
         "bin_mask": np.ones((n, 1), np.float32),
         "cat": cats.astype(np.int64),
         "cat_mask": (rng.random((n, 2)) > 0.1).astype(np.float32),
         "unseen": np.zeros((n, 3), np.float32)}
    b["x"] = rng.normal(size=(n, config["d_in"])).astype(np.float32)
    return b


@pytest.mark.parametrize("name", list(CONFIGS))
def test_expected_shapes_are_the_torch_modules(name: str) -> None:
    config = CONFIGS[name]
    assert supports(config)
    with torch.device("meta"):
        torch_shapes = {k: tuple(v.shape) for k, v in build_vae(config).state_dict().items()}
    assert expected_shapes(config) == torch_shapes


def test_conv_configs_are_left_to_torch() -> None:
    assert not supports({"kind": "image", "architecture": "conv"})


@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize("k", [1, 16])
def test_numpy_and_torch_give_the_same_terms(name: str, k: int) -> None:
    config = CONFIGS[name]
    net = _random_network(config)
    weights = {n: t.detach().numpy() for n, t in net.state_dict().items()}
    fast, ref = NumpyBackend(config, weights), TorchBackend(net, "cpu")
    batch, eps = _batch(config), standard_normal(k, 3, 7)
    a, b = fast.scores(batch, eps), ref.scores(batch, eps)
    np.testing.assert_allclose(a.elbo, b.elbo, rtol=1e-5, atol=1e-4)
    # The IWAE latent term is a difference of sums of hundreds of nats: float32
    # rounding of those sums (1e-7 relative) shows at about 1e-4 here.
    np.testing.assert_allclose(a.kl, b.kl, rtol=1e-5, atol=2e-4)
    np.testing.assert_allclose(a.recon_per_feature, b.recon_per_feature, rtol=1e-5, atol=1e-4)
    for x, y in zip(fast.encode(batch["x"]), ref.encode(batch["x"]), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-5)
    z = eps.repeat(3, axis=0)[:5] if k > 1 else np.zeros((5, 3), np.float32)
    for x, y in zip(fast.decode(z), ref.decode(z), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize("k", [1, 16])
def test_a_row_scores_the_same_wherever_it_sits(name: str, k: int) -> None:
    """Bit-identical per row whatever the offset, the block size and BLAS's threads."""
    config = CONFIGS[name]
    net = _random_network(config)
    fast = NumpyBackend(config, {n: t.detach().numpy() for n, t in net.state_dict().items()})
    batch, eps = _batch(config, n=600), standard_normal(k, 3, 1)
    with blas_threads(1):
        whole = fast.scores(batch, eps)
    for offset, block, threads in [(7, None, 1), (333, None, 2), (1, 1024, 2)]:
        with blas_threads(threads):
            shifted = fast.scores({key: v[offset:] for key, v in batch.items()}, eps,
                                  block=block)
        np.testing.assert_array_equal(whole.elbo[offset:], shifted.elbo)
        np.testing.assert_array_equal(whole.recon_per_feature[offset:],
                                      shifted.recon_per_feature)


def test_numpy_backend_follows_a_network_trained_after_it_was_built(
        mixed_frame: pd.DataFrame) -> None:
    """A live network changed in place (codec fine-tuning after the latent statistics)
    is what the numpy backend scores, and equal to the same model saved and loaded."""
    det = VAEAnomalyDetector(epochs=1, random_state=0, n_samples=4).fit(mixed_frame)
    fitted = det.fitted_
    before = fitted.score_terms(fitted.prepare(mixed_frame)).score
    with torch.no_grad():
        for p in fitted.network.parameters():
            p.mul_(1.1)
    after = fitted.score_terms(fitted.prepare(mixed_frame)).score
    assert not np.allclose(before, after)
    reloaded = FittedVAE.from_bytes(fitted.to_bytes())
    np.testing.assert_array_equal(after, reloaded.score_terms(reloaded.prepare(mixed_frame)).score)
    copied = pickle.loads(pickle.dumps(fitted))
    assert copied._runners == {}
    np.testing.assert_array_equal(after, copied.score_terms(copied.prepare(mixed_frame)).score)


def test_noise_is_a_prefix_stable_function_of_the_seed() -> None:
    a = standard_normal(16, 5, 3)
    assert a.dtype == np.float32 and a.shape == (16, 5)
    np.testing.assert_array_equal(a, standard_normal(16, 5, 3))
    np.testing.assert_array_equal(a[:1], standard_normal(1, 5, 3))
    assert not np.array_equal(a, standard_normal(16, 5, 4))
    big = standard_normal(20_000, 5, 0).ravel()
    assert abs(big.mean()) < 0.02 and abs(big.std() - 1) < 0.02


def test_numpy_network_refuses_tensors_that_do_not_match() -> None:
    config = CONFIGS["table"]
    weights = {n: t.detach().numpy() for n, t in _random_network(config).state_dict().items()}
    weights.pop("decoder.0.bias")
    with pytest.raises(ValueError, match="do not match"):
        NumpyVAE(config, weights)


@pytest.fixture(scope="module")
def mixed_frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 300
    frame = pd.DataFrame({"a": rng.normal(size=n), "b": rng.exponential(size=n) * 100,
                          "c": rng.choice(["x", "y", "z"], n), "d": rng.integers(0, 2, n)})
    frame.loc[::7, "a"] = np.nan
    return frame


def test_fitted_models_score_alike_on_both_backends(mixed_frame: pd.DataFrame,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    det = VAEAnomalyDetector(epochs=2, random_state=0, n_samples=8).fit(mixed_frame)
    assert det.fitted_.backend == "numpy"
    probe = mixed_frame.head(50).copy()
    probe.loc[3, "c"] = "never seen"
    probe.loc[5, ["a", "b"]] = np.nan
    fast_scores, fast_explain = det.anomaly_score(probe), det.explain(probe)
    monkeypatch.setenv("VAEKIT_BACKEND", "torch")
    assert det.fitted_.backend == "torch"
    np.testing.assert_allclose(fast_scores, det.anomaly_score(probe), rtol=1e-5, atol=1e-4)
    ref = det.explain(probe)
    assert list(ref.columns) == list(fast_explain.columns)
    np.testing.assert_allclose(fast_explain.to_numpy(), ref.to_numpy(), rtol=1e-5, atol=1e-4)


def test_images_score_and_decode_alike_on_both_backends(digits_images: np.ndarray,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    images = digits_images[:200]
    det = VAEAnomalyDetector(epochs=2, random_state=0, n_samples=4).fit(images)
    comp = VAECompressor(epochs=1, random_state=0, bytes_per_row=8).fit(images)
    fast = det.anomaly_score(images), comp.inverse_transform(comp.transform(images))
    monkeypatch.setenv("VAEKIT_BACKEND", "torch")
    np.testing.assert_allclose(fast[0], det.anomaly_score(images), rtol=1e-5, atol=1e-4)
    # Decoded 8-bit pixels: the same levels (a float32 difference at a rounding
    # boundary may move one level).
    ref = comp.inverse_transform(comp.transform(images))
    assert np.abs(fast[1].astype(int) - ref.astype(int)).max() <= 1


def test_a_swapped_or_reloaded_network_is_followed_and_old_pickles_load(
        mixed_frame: pd.DataFrame) -> None:
    det = VAEAnomalyDetector(epochs=1, random_state=0, n_samples=4).fit(mixed_frame)
    fitted = det.fitted_
    data = fitted.prepare(mixed_frame)
    before = fitted.score_terms(data).score
    state = {k: v * 1.2 for k, v in fitted.network.state_dict().items()}
    fitted.network.load_state_dict(state, assign=True)  # new tensors, counters restart
    after = fitted.score_terms(data).score
    assert not np.allclose(before, after)
    # A pickle from before the caches were keyed (name -> backend) still loads.
    # (what unpickling does with such a stored state)
    revived = FittedVAE.__new__(FittedVAE)
    revived.__setstate__({**fitted.__dict__, "_runners": {"numpy": object()}})
    np.testing.assert_array_equal(after, revived.score_terms(data).score)


def _reference_mlp(weights: dict[str, np.ndarray], prefix: str, x: np.ndarray) -> np.ndarray:
    """The codec's arithmetic, spelled out: x W^T + b, then x / (1 + exp(-x))."""
    idx = sorted(int(k[len(prefix) + 1:].split(".")[0]) for k in weights
                 if k.startswith(prefix + ".") and k.endswith("weight")
                 and k[len(prefix) + 1:].split(".")[0].isdigit())
    h = x.astype(np.float32)
    for j, i in enumerate(idx):
        h = h @ np.ascontiguousarray(weights[f"{prefix}.{i}.weight"].T)
        h += weights[f"{prefix}.{i}.bias"]
        if j < len(idx) - 1:
            with np.errstate(over="ignore"):
                h = h / (np.float32(1.0) + np.exp(-h))
    return h


def test_the_codec_decoder_keeps_its_arithmetic_and_scoring_stays_within_rounding() -> None:
    # A .vkc file's model-coded values decode under the decoder's prediction: its
    # floats must not change between vaekit versions, or older files stop decoding.
    # Scoring may take the faster evaluation (halved SiLU layers): within rounding.
    config = CONFIGS["table"]
    weights = {n: t.detach().numpy() for n, t in _random_network(config).state_dict().items()}
    net = NumpyVAE(config, weights)
    z = standard_normal(64, 3, 5) * 3
    np.testing.assert_array_equal(net.decode(z), _reference_mlp(weights, "decoder", z))
    x = _batch(config, n=64)["x"]
    h = _reference_mlp(weights, "encoder.body", x)
    np.testing.assert_array_equal(net.encode(x)[0], h[:, :3])
    fast = net.decode(z, fast=True)
    assert not np.array_equal(fast, net.decode(z))  # the other evaluation is really used
    np.testing.assert_allclose(fast, net.decode(z), rtol=1e-5, atol=1e-5)
