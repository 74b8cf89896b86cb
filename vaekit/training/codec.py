"""Training routes of a codec with a byte budget (or explicit bits); see VAECompressor.

Two routes, both on the shared Adam loop (:func:`.loop.adam_passes`):

* :class:`LinearCodecFit` -- an MLP with a linear (PCA) path: start as the PCA codec,
  train for quantized codes keeping the best held-out state, standardize the latent
  coordinates and calibrate the likelihood scales;
* :class:`VAECodecTuning` -- a VAE already trained on the ELBO (convolutional image
  models): tune encoder and decoder for the codes, refit the quantizer, refine the
  decoder on the actual codes.

Both work on a network and prepared tensors; the estimator assembles the fitted model.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .._runtime import torch_threads
from ..codec.container import DEFAULT_CHUNK_ROWS
from ..codec.quantize import LatentQuantizer, fit_quantizer, halfwidth, payload_bytes_per_row
from ..core.batching import map_blocks, take, to_device
from ..core.vae import VAE
from .elbo import TrainConfig, evaluate, resolve_schedule
from .loop import adam_passes, copy_state, cosine_schedule

# Rows of training means used to measure the entropy-coded size of a candidate
# bit allocation (two default chunks: enough for zstd's statistics, cheap to pack).
_CALIBRATION_ROWS = 2 * DEFAULT_CHUNK_ROWS
# Most gradient steps of the tuning for quantized codes (see _tune_for_codes).
_TUNE_STEPS = 1000
# The allocation is sized on the training rows; new rows code a little larger or
# smaller (on ADBench test splits up to 3 % larger at 2 bytes/row), so aim 3 % low.
_BUDGET_MARGIN = 0.03
# Codec training of models with a linear (PCA) path (see LinearCodecFit):
# gradient steps of the quantization-aware pass over encoder and decoder, per input
# kind (the decoder-only pass that follows gets a third as many) ...
_CODEC_STEPS = {"tabular": 3000, "image": 1500}
# ... rows held out to pick the best state (10 % of the rows, at most this many) ...
_CODEC_VAL_ROWS = 2000
# ... and rows whose decoder Jacobian sizes the bit allocation.
_SENSITIVITY_ROWS = {"tabular": 512, "image": 64}

# A route's progress hook: progress(phase, steps_done, steps_planned, held_out) after
# every gradient step and at every stage without steps.  ``phase`` names the stage for
# people ("training codec, pass 2/4"); the step counts cover the whole route;
# ``held_out`` is the last held-out distortion (mean loss per held-out row, see
# LinearCodecFit._codec_loss), None where the route has none.  The CLI draws its bar
# from this; training code stays free of any terminal.
CodecProgress = Callable[[str, int, int, "float | None"], None]


@dataclass(frozen=True)
class CodecSettings:
    """The estimator parameters a codec route reads.

    ``bytes_per_row`` (budget, bytes/row) or ``bits`` (explicit allocation); ``epochs``
    and ``batch_size`` are ``"auto"`` or ints; ``learning_rate`` is Adam's step size;
    ``n_jobs`` torch CPU threads.
    """

    bytes_per_row: float | None
    bits: int | list[int] | tuple[int, ...] | None
    epochs: int | str
    batch_size: int | str
    learning_rate: float
    n_jobs: int | None


class _CodecRoute:
    """What both routes share: the network, its codes and the budgeted quantizer fit."""

    def __init__(self, network: VAE, kind: str, settings: CodecSettings, seed: int,
                 device: torch.device, progress: CodecProgress | None = None) -> None:
        self.network = network
        self.kind = kind
        self.s = settings
        self.seed = int(seed)
        self.device = device
        self.quantizer: LatentQuantizer | None = None
        self.history: list[dict[str, Any]] = []
        self.tune_history: list[float] = []
        self._progress = progress
        self._steps_done = 0
        self._steps_planned = 0
        self._held_out: float | None = None

    def _tell(self, phase: str) -> None:
        """Report progress (see :data:`CodecProgress`); nothing without a hook."""
        if self._progress is not None:
            self._progress(phase, self._steps_done, max(self._steps_planned,
                                                        self._steps_done), self._held_out)

    def _step_hook(self, phase: str) -> Any:
        """An ``on_step`` hook for :func:`adam_passes` counting this route's steps."""
        if self._progress is None:
            return None
        base = self._steps_done

        def on_step(step: int) -> None:
            self._steps_done = base + step
            self._tell(phase)

        return on_step

    @torch.no_grad()
    def means(self, tensors: dict[str, torch.Tensor]) -> np.ndarray:
        """Posterior means (n, latent_dim) of prepared tensors, float64."""
        network = self.network
        with torch_threads(self.s.n_jobs):
            mu, _ = map_blocks(lambda b: network.encode(b["x"]), {"x": tensors["x"]},
                               self.device)
        return mu.numpy()

    def _budget_quantizer(self, mu: np.ndarray, precision: np.ndarray,
                          kl: np.ndarray) -> LatentQuantizer:
        """:func:`fit_quantizer` for training means ``mu`` with ``bits`` or the budget
        (less the safety margin), its size measured on evenly spaced rows."""
        sample, limit = self._calibration(mu)
        return fit_quantizer(
            center=mu.mean(axis=0), scale=mu.std(axis=0), precision=precision, kl=kl,
            bits=None if self.s.bits is None else (list(self.s.bits) if isinstance(
                self.s.bits, (list, tuple)) else int(self.s.bits)),
            bytes_per_row=limit, sample=sample, chunk_rows=DEFAULT_CHUNK_ROWS,
        )

    def _calibration(self, mu: np.ndarray) -> tuple[np.ndarray, float | None]:
        """Rows a quantizer's size is measured on, and the byte budget it must meet."""
        # Evenly spaced rows (not random) keep the calibration deterministic; the
        # margin leaves room for new rows coding a little larger than training rows.
        step = max(1, len(mu) // _CALIBRATION_ROWS)
        limit = None if self.s.bytes_per_row is None else self.s.bytes_per_row * (1.0 - _BUDGET_MARGIN)
        return mu[::step][:_CALIBRATION_ROWS], limit


class LinearCodecFit(_CodecRoute):
    """Fit a budgeted MLP model with a linear path that starts as the PCA codec.

    :meth:`run` does steps 1-5 of :class:`vaekit.VAECompressor`'s fitting, then
    standardizes the latent coordinates and calibrates the scales; afterwards
    ``quantizer``, ``history`` (with a final ``"calibrated"`` record), ``kept_phase``
    and ``tune_history`` describe the result.
    """

    kept_phase = "pca"

    def run(self, tensors: dict[str, torch.Tensor]) -> None:
        """Train ``network`` in place (see the class doc)."""
        self.network.eval()
        self._tell("PCA start")
        self._init_from_pca(tensors)
        self._train_linear_codec(tensors)
        self._tell("calibrating")
        self._standardize_latents(tensors)
        self._calibrate_scales(tensors)
        self._tell("done")

    def _metric_values(self, b: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(target values in the metric space, observed mask) of a prepared batch."""
        if self.kind == "image":
            v = b["x"].flatten(start_dim=1)
            return v, torch.ones_like(v)
        return self.network.decoder.warp.to_metric(b["num"]), b["num_mask"]

    @torch.no_grad()
    def _init_from_pca(self, tensors: dict[str, torch.Tensor]) -> None:
        """Linear paths = PCA of the encoder's linear features in the metric space.

        Encoder: whitened principal coordinates (unit variance, in order of
        decreasing variance); decoder: the PCA reconstruction.  The MLP corrections
        start at zero, so the model is exactly the PCA codec at this point.
        """
        enc, dec = self.network.encoder, self.network.decoder
        x = tensors["x"].flatten(start_dim=1) if self.kind == "image" else tensors["x"]
        v = enc.warp.to_metric(x[:, : enc.warp.n].float()).double()
        mean = v.mean(dim=0)
        vc = v - mean
        cov = (vc.T @ vc / max(len(v), 1)).numpy()
        lam, vecs = np.linalg.eigh(cov)
        order = np.argsort(lam)[::-1]
        lam, vecs = np.maximum(lam[order], 0.0), vecs[:, order]
        k = min(self.network.latent_dim, len(lam))
        floor = max(float(lam[0]), 1e-12) * 1e-8 if len(lam) else 1e-12
        lam_k = np.maximum(lam[:k], floor)
        q = torch.from_numpy(vecs[:, :k])
        w_enc = (q / torch.from_numpy(np.sqrt(lam_k))).T  # (k, n_in)
        enc.linear.weight.zero_()
        enc.linear.weight[:k] = w_enc.float()
        enc.linear.bias.zero_()
        enc.linear.bias[:k] = (-(w_enc @ mean)).float()
        n_out = dec.n_out
        dec.linear.weight.zero_()
        dec.linear.weight[:, :k] = (q[:n_out] * torch.from_numpy(np.sqrt(lam_k))).float()
        dec.linear.bias.copy_(mean[:n_out].float())

    def _sensitivity(self, mu: np.ndarray) -> np.ndarray:
        """RMS norm of each latent dimension's decoder Jacobian column, metric units.

        For a small quantization error ``e`` the squared reconstruction error is about
        ``sum_j e_j**2 * sens_j**2``, so ``1 / sens`` is the error scale each
        dimension tolerates: the quantizer's ``precision``.  For the PCA start this
        gives exactly the allocation PCA gets with the same quantizer.
        """
        dec = self.network.decoder
        n = len(mu)
        m = min(n, _SENSITIVITY_ROWS[self.kind])
        idx = np.linspace(0, n - 1, m).round().astype(np.int64) if n else np.zeros(0, np.int64)
        z = torch.from_numpy(mu[idx]).float().to(self.device)

        def f(zz: torch.Tensor) -> torch.Tensor:
            return dec.metric_mean(zz)[0]

        total = torch.zeros(mu.shape[1], dtype=torch.float64)
        jac = torch.func.vmap(torch.func.jacfwd(f))
        with torch.no_grad():
            for start in range(0, m, 16):
                j = jac(z[start:start + 16])  # (rows, n_out, latent)
                total += j.double().pow(2).sum(dim=(0, 1)).cpu()
        return np.sqrt(total.numpy() / max(m, 1))

    def _fit_codec_quantizer(self, mu: np.ndarray) -> LatentQuantizer:
        """Quantizer for the training means ``mu`` of the current encoder, bits sized by
        decoder sensitivity."""
        if isinstance(self.s.bits, (list, tuple)):
            # Bits given per dimension: fit_quantizer uses neither precision nor KL.
            ones = np.ones(mu.shape[1])
            return self._budget_quantizer(mu, ones, ones)
        sens = self._sensitivity(mu)
        active = sens > 1e-9 * max(float(sens.max(initial=0.0)), 1e-30)
        precision = np.where(active, 1.0 / np.maximum(sens, 1e-30), 1.0)
        # kl = 0 marks "no information": such a dimension never gets bits.
        return self._budget_quantizer(mu, precision, active.astype(np.float64))

    def _rescaled_quantizer(self, mu: np.ndarray,
                            bits: tuple[int, ...]) -> LatentQuantizer | None:
        """Quantizer with ``bits`` for the current training means ``mu``, within the budget.

        Ranges ``center +- halfwidth(bits) * f * SD`` with the smallest factor
        ``f >= 1`` (wider range, coarser steps) whose entropy-coded size on the
        training means fits the budget; ``None`` if even ``f = 2`` does not.
        """
        center, sd = mu.mean(axis=0), mu.std(axis=0)
        if self.s.bytes_per_row is None:
            return LatentQuantizer.from_bits(bits, center, sd)
        sample, limit = self._calibration(mu)

        def make(f: float) -> LatentQuantizer:
            return LatentQuantizer.from_bits(bits, center, sd * f)

        def fits(f: float) -> bool:
            return payload_bytes_per_row(make(f), sample, DEFAULT_CHUNK_ROWS) <= limit

        if fits(1.0):
            return make(1.0)
        if not fits(2.0):
            return None
        lo, hi = 1.0, 2.0
        for _ in range(8):
            mid = 0.5 * (lo + hi)
            lo, hi = (lo, mid) if fits(mid) else (mid, hi)
        return make(hi)

    def _codec_loss(self, z: torch.Tensor, b: dict[str, torch.Tensor]) -> torch.Tensor:
        """Per-row distortion of decoding ``z``: squared error in the metric space
        (standardized columns; pixel values, clipped to [0, 1] as stored), plus the
        negative log-likelihood (nats) of binary and categorical columns."""
        model = self.network
        v_hat, rest = model.decoder.metric_mean(z)
        v, mask = self._metric_values(b)
        if self.kind == "image":
            return (v_hat.clamp(0.0, 1.0) - v).pow(2).sum(dim=-1)
        loss = ((v_hat - v).pow(2) * mask).sum(dim=-1)
        lik = model.likelihood
        if lik.n_binary or lik.cat_sizes:
            params = torch.cat([model.decoder.warp.from_metric(v_hat), rest], dim=-1)
            loss = loss - lik.log_prob(params, b)[:, lik.n_numeric:].sum(dim=-1)
        return loss

    @torch.no_grad()
    def _coded_distortion(self, tensors: dict[str, torch.Tensor], q: LatentQuantizer) -> float:
        """Mean :meth:`_codec_loss` per row with the actual quantized codes."""
        device = self.device
        mu = self.means(tensors)
        z = torch.from_numpy(q.decode(q.encode(mu))).float()
        total, n = 0.0, len(z)
        for start in range(0, n, 1024):
            b = to_device({k: v[start:start + 1024] for k, v in tensors.items()}, device)
            total += float(self._codec_loss(z[start:start + 1024].to(device), b).sum())
        return total / max(n, 1)

    def _train_linear_codec(self, tensors: dict[str, torch.Tensor]) -> None:
        """Quantization-aware training from the PCA start, keeping the best state.

        1. quantizer for the PCA start (bits by decoder sensitivity);
        2. encoder and decoder trained on ``mu + uniform noise of one step`` (the
           quantization error's distribution) to minimise :meth:`_codec_loss`;
        3. quantizer refitted to the trained encoder and decoder;
        4. decoder alone trained on the final quantizer's actual codes.

        After every pass the held-out rows (10 %, at most 2,000; the training rows
        when there are fewer than 100) are coded with the real quantizer; the state
        and quantizer with the lowest distortion there are kept -- the PCA start
        included, so the result is never worse than PCA on those rows.
        """
        model, device = self.network, self.device
        n = len(tensors["x"])
        gen = torch.Generator().manual_seed(self.seed)
        order = torch.randperm(n, generator=gen)
        n_val = min(_CODEC_VAL_ROWS, n // 10) if n >= 100 else 0
        val_idx, train_idx = order[:n_val], order[n_val:]
        train = take(tensors, train_idx)
        held = take(tensors, val_idx) if n_val else train
        _, batch, _ = resolve_schedule(len(train_idx), TrainConfig(
            batch_size=None if self.s.batch_size == "auto" else int(self.s.batch_size),
            validation_fraction=0.0))
        steps_per_pass = max(1, math.ceil(len(train_idx) / batch))
        if self.s.epochs == "auto":
            passes = max(2, math.ceil(_CODEC_STEPS[self.kind] / steps_per_pass))
        else:
            passes = int(self.s.epochs)

        self._steps_planned = (passes + max(1, passes // 3)) * steps_per_pass
        self._tell("fitting quantizer")
        q = self._fit_codec_quantizer(self.means(tensors))
        history: list[dict[str, float]] = []
        best = {"loss": self._coded_distortion(held, q), "state": copy_state(model), "q": q,
                "phase": "pca"}
        history.append({"epoch": 0, "phase": "pca", "val_distortion": best["loss"]})
        self._held_out = best["loss"]

        def consider(phase: str, epoch: int, train_loss: float | None,
                     quant: LatentQuantizer) -> None:
            loss = self._coded_distortion(held, quant)
            self._held_out = loss
            record = {"epoch": epoch, "phase": phase, "val_distortion": loss}
            if train_loss is not None:
                record["train_loss"] = train_loss
            history.append(record)
            if loss < best["loss"]:
                best.update(loss=loss, state=copy_state(model), q=quant, phase=phase)

        # 2. encoder + decoder with uniform noise of the quantizer's step.  The
        # quantizer is refitted to the trained means, and its steps and range scale
        # with their spread (step = 2 * halfwidth(bits) * SD / 2**bits): so the noise
        # and the clipping range follow the batch's current spread, else the
        # encoder would just stretch its means to drown the noise.
        def noisy_loss(b: dict[str, torch.Tensor], idx: torch.Tensor, g: torch.Generator,
                       quant: LatentQuantizer) -> torch.Tensor:
            bits = torch.tensor(quant.bits, dtype=torch.float32, device=device)
            on = bits > 0
            rel_step = 2.0 * torch.from_numpy(halfwidth(quant.bits)).float().to(device) / bits.exp2()
            mu, _ = model.encode(b["x"])
            center = mu.detach().mean(dim=0)
            sd = mu.std(dim=0, unbiased=False).clamp_min(1e-6)
            reach = torch.from_numpy(halfwidth(quant.bits)).float().to(device) * sd
            clipped = torch.minimum(torch.maximum(mu, center - reach), center + reach)
            noise = ((torch.rand(mu.shape, generator=g) - 0.5).to(device)) * rel_step * sd
            z = torch.where(on, clipped + noise, center)
            return self._codec_loss(z, b).mean()

        # While the encoder moves, passes are judged with the quantizer's bits at the
        # current spread of the means (what the noise stands for).
        phase = {"loss": math.inf, "state": None}

        def consider_moving(name: str, epoch: int, train_loss: float,
                            quant: LatentQuantizer) -> None:
            mu = self.means(train)
            moved = LatentQuantizer.from_bits(quant.bits, mu.mean(axis=0), mu.std(axis=0))
            loss = self._coded_distortion(held, moved)
            self._held_out = loss
            history.append({"epoch": epoch, "phase": name, "train_loss": train_loss,
                            "val_distortion": loss})
            if loss < phase["loss"]:
                phase.update(loss=loss, state=copy_state(model))

        self._codec_passes(train, list(model.parameters()), noisy_loss, q, passes, batch,
                           float(self.s.learning_rate), gen, consider_moving, "codes")
        # 3. quantizers for the phase's best state: refitted (bits by sensitivity), and
        # the same bits at the means' new spread if that still fits the budget.
        if phase["state"] is not None:
            self._tell("refitting quantizer")
            model.load_state_dict(phase["state"])
            mu = self.means(tensors)  # consider() leaves the model as it is
            consider("requantize", 0, None, self._fit_codec_quantizer(mu))
            moved = self._rescaled_quantizer(mu, q.bits)
            if moved is not None:
                consider("rescale", 0, None, moved)
        model.load_state_dict(best["state"])
        q = best["q"]
        # 4. the decoder alone, on the kept quantizer's actual codes.
        z_hat = torch.from_numpy(q.decode(q.encode(self.means(train)))).float()

        def code_loss(b: dict[str, torch.Tensor], idx: torch.Tensor, g: torch.Generator,
                      quant: LatentQuantizer) -> torch.Tensor:
            return self._codec_loss(z_hat[idx].to(device), b).mean()

        self._codec_passes(train, list(model.decoder.parameters()), code_loss, q,
                           max(1, passes // 3), batch, float(self.s.learning_rate) / 2, gen,
                           consider, "decoder")
        model.load_state_dict(best["state"])
        self.quantizer = best["q"]
        model.eval()
        self.history = history
        self.kept_phase = best["phase"]
        self.tune_history = [h["train_loss"] for h in history if "train_loss" in h]

    def _codec_passes(self, data: dict[str, torch.Tensor], params: list[torch.nn.Parameter],
                      loss_fn: Any, quant: LatentQuantizer, passes: int, batch: int, lr: float,
                      gen: torch.Generator, after_pass: Any, phase: str) -> None:
        """Adam passes (cosine-decayed step size) over ``data``; ``after_pass`` after each."""
        device = self.device
        n = len(data["x"])
        steps_per_pass = max(1, math.ceil(n / batch))
        label = {"codes": "training codec", "decoder": "training decoder"}.get(phase, phase)
        base = self._steps_done

        def step_loss(idx: torch.Tensor, _step: int) -> tuple[torch.Tensor, None]:
            return loss_fn(to_device(take(data, idx), device), idx, gen, quant), None

        def end_of_pass(epoch: int, mean_loss: float, _sums: Any) -> bool:
            after_pass(phase, epoch, mean_loss, quant)
            self._tell(f"{label}, pass {epoch}/{passes}")
            return False

        def on_step(step: int) -> None:
            self._steps_done = base + step
            self._tell(f"{label}, pass {min(passes, 1 + (step - 1) // steps_per_pass)}/"
                       f"{passes}")

        adam_passes(self.network, params, step_loss, n_rows=n, batch_size=batch, passes=passes,
                    generator=gen, learning_rate=lr,
                    schedule=cosine_schedule(passes * steps_per_pass),
                    on_pass_end=end_of_pass, what=f"codec training ({phase} passes)",
                    on_step=None if self._progress is None else on_step)

    @torch.no_grad()
    def _standardize_latents(self, tensors: dict[str, torch.Tensor]) -> None:
        """Change latent coordinates so the training means have mean 0 and SD 1 per dimension.

        Quantization-aware training leaves the encoder free to spread its means; the
        prior is N(0, I), so a stretched latent space inflates the KL term (and
        :meth:`score`) by thousands of nats without changing the codec.  The affine map
        ``z = c + s * z'`` is folded into the encoder's mean outputs, the decoder's first
        layers and the quantizer, so codes and reconstructions stay the same (up to
        float rounding).
        """
        model = self.network
        mu = self.means(tensors)
        c = mu.mean(axis=0)
        s = mu.std(axis=0)
        s = np.where(s > 1e-12, s, 1.0)
        enc, dec, lat = model.encoder, model.decoder, model.latent_dim
        c_t = torch.from_numpy(c).float().to(enc.linear.weight.device)
        s_t = torch.from_numpy(s).float().to(enc.linear.weight.device)
        enc.linear.weight.div_(s_t[:, None])
        enc.linear.bias.sub_(c_t).div_(s_t)
        enc.head.weight[:lat].div_(s_t[:, None])
        enc.head.bias[:lat].div_(s_t)
        for layer in (dec.linear, dec.body[0]):
            layer.bias.add_(layer.weight @ c_t)
            layer.weight.mul_(s_t[None, :])
        q = self.quantizer
        self.quantizer = LatentQuantizer(
            bits=q.bits,
            lo=tuple(float(v) for v in (np.asarray(q.lo) - c) / s),
            step=tuple(float(v) for v in np.asarray(q.step) / s),
            center=tuple(float(v) for v in (np.asarray(q.center) - c) / s),
        )

    @torch.no_grad()
    def _calibrate_scales(self, tensors: dict[str, torch.Tensor]) -> None:
        """Make the likelihood and posterior describe the codec (so ``score`` means something).

        The decoder's scale outputs become constants per column (pixel): the RMS
        error of the coded training rows; the encoder's log-variance becomes the
        quantization noise ``step**2 / 12`` of each stored dimension (0 = the
        prior's for the others).  Neither changes the codes or the reconstructions.
        """
        model, q = self.network, self.quantizer
        device = self.device
        mu = self.means(tensors)
        z = torch.from_numpy(q.decode(q.encode(mu))).float()
        lat = model.latent_dim
        head = model.encoder.head
        bits = torch.tensor(q.bits) > 0
        step = torch.tensor(q.step, dtype=torch.float64)
        logvar = torch.where(bits, torch.log(step.pow(2) / 12.0 + 1e-12), torch.zeros(lat,
                             dtype=torch.float64))
        head.weight[lat:] = 0.0
        head.bias[lat:] = logvar.clamp(-15.0, 7.0).float().to(head.bias.device)
        lik = model.likelihood
        sq = None
        count = None
        for start in range(0, len(z), 1024):
            b = to_device({k: v[start:start + 1024] for k, v in tensors.items()}, device)
            params = model.decode(z[start:start + 1024].to(device))
            if self.kind == "image":
                err = (lik.mean(params)["x"] - b["x"]).pow(2).flatten(1)
                mask = torch.ones_like(err)
            else:
                err = (lik.split(params)[0] - b["num"]).pow(2) * b["num_mask"]
                mask = b["num_mask"]
            sq = err.sum(0).double() if sq is None else sq + err.sum(0).double()
            count = mask.sum(0).double() if count is None else count + mask.sum(0).double()
        rmse = (sq / count.clamp_min(1.0)).sqrt().cpu()
        dec_head = model.decoder.head
        n_out = model.decoder.n_out
        if self.kind == "image":
            target = rmse * math.sqrt(3.0) / math.pi  # logistic scale with that SD
            floor = torch.full_like(target, float(lik.min_scale))
        else:
            target = rmse
            floor = lik.min_scale.double().cpu()
        excess = (target - floor).clamp_min(1e-4)
        raw = torch.log(torch.expm1(excess))  # softplus^-1
        dec_head.weight[n_out:2 * n_out] = 0.0
        dec_head.bias[n_out:2 * n_out] = raw.float().to(dec_head.bias.device)
        # One summary record with the bound, as the VAE training's history has.
        ev = evaluate(model, tensors, torch.Generator().manual_seed(self.seed + 1), 4096,
                      device)
        self.history.append({"epoch": len(self.history), "phase": "calibrated",
                              "kept": self.kept_phase,
                              "train_elbo": ev["elbo"], "train_recon": ev["recon"],
                              "train_kl": ev["kl"]})


class VAECodecTuning(_CodecRoute):
    """Tune an ELBO-trained VAE for its quantized codes (the convolutional route).

    Parameters
    ----------
    train_config : TrainConfig
        The VAE training's settings (the tuning runs a share of its steps).
    vae_epochs : int
        Epochs the VAE training ran.
    latent_stats : dict
        The trained model's latent statistics (``posterior_sd``, ``kl``).
    """

    def __init__(self, network: VAE, kind: str, settings: CodecSettings, seed: int,
                 device: torch.device, *, train_config: TrainConfig, vae_epochs: int,
                 latent_stats: dict[str, list[float]],
                 progress: CodecProgress | None = None) -> None:
        super().__init__(network, kind, settings, seed, device, progress)
        self.train_config = train_config
        self.vae_epochs = int(vae_epochs)
        self.latent_stats = latent_stats

    def _fit_quantizer(self, tensors: dict[str, torch.Tensor]) -> LatentQuantizer:
        """Quantizer from the training means and ``latent_stats_`` (see the class doc)."""
        stats = self.latent_stats
        return self._budget_quantizer(self.means(tensors),
                                      np.asarray(stats["posterior_sd"]), np.asarray(stats["kl"]))

    @torch.no_grad()
    def _numeric_inv_var(self, tensors: dict[str, torch.Tensor]) -> torch.Tensor | None:
        """1 / (mean predicted variance) per numeric column over the training rows."""
        model, lik = self.network, self.network.likelihood
        if self.kind == "image" or not lik.n_numeric:
            return None
        with torch_threads(self.s.n_jobs):
            (scale,) = map_blocks(
                lambda b: (lik.split(model.decode(model.encode(b["x"])[0]))[1],),
                {"x": tensors["x"]}, self.device)
        return (1.0 / scale.pow(2).mean(dim=0)).float().to(self.device)

    def _tune_for_codes(self, tensors: dict[str, torch.Tensor],
                        inv_var: torch.Tensor | None) -> list[float]:
        """Fine-tune encoder and decoder for the quantized codes, on the training rows.

        Two mismatches between ELBO training and coding are fixed here:

        * the decoder saw means blurred by Gaussian noise of the posterior SD, but
          gets means rounded to the quantizer's steps, which at a small budget are
          several posterior SDs wide.  During tuning the latent input is the mean
          plus uniform noise of exactly one step (the quantization error's
          distribution; Balle et al., 2017), and 0-bit dimensions are fixed at
          their center;
        * the likelihood's per-row scale lets the model give up on rare values (a
          large predicted SD costs less than encoding the value): on cardio 6 of 21
          columns had a reconstruction RMSE of 0.6-1.0 SD after training.  Tuning
          scores numeric columns by squared error divided by each column's
          mean predicted variance (a homoscedastic version of the fitted
          likelihood) and pixels by squared error; binary and categorical columns
          keep their log-likelihood.

        Returns the mean loss of each pass (per row; nats for the discrete parts).
        """
        q = self.quantizer
        model, device = self.network, self.device
        bits = (torch.tensor(q.bits) > 0).to(device)
        step = torch.where(bits.cpu(), torch.tensor(q.step), torch.zeros(len(q.bits))).float()
        center = torch.tensor(q.center).float().to(device)

        def loss(b: dict[str, torch.Tensor], idx: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
            mu, _ = model.encode(b["x"])
            noise = (torch.rand(mu.shape, generator=gen) - 0.5) * step
            z = torch.where(bits, mu + noise.to(device), center)
            return self._code_loss(model.decode(z), b, inv_var)

        # A third of the training steps, at most _TUNE_STEPS: a tune-up, not a second run.
        return self._fine_tune(tensors, list(model.parameters()), loss, share=3, seed_offset=2,
                               phase="tuning for the codes")

    def _plan(self, n: int, share: int) -> tuple[int, int, int]:
        """(batch size, steps per pass, passes) of a :meth:`_fine_tune` run on ``n`` rows."""
        _, batch, _ = resolve_schedule(n, self.train_config)
        steps = max(1, math.ceil(n / batch))
        budget = min(_TUNE_STEPS, max(1, self.vae_epochs * steps // share))
        return batch, steps, max(1, math.ceil(budget / steps))

    def _fine_tune(self, tensors: dict[str, torch.Tensor], params: list[torch.nn.Parameter],
                   loss_fn: Any, *, share: int, seed_offset: int, phase: str) -> list[float]:
        """Adam passes over ``tensors`` minimising ``loss_fn(batch, index, generator)``.

        Runs ``1/share`` of the VAE training run's steps (at most ``_TUNE_STEPS``) at
        half its learning rate; returns the mean loss of each pass.
        """
        device = self.device
        n = len(tensors["x"])
        batch, _, passes = self._plan(n, share)
        gen = torch.Generator().manual_seed(self.seed + seed_offset)

        def step_loss(idx: torch.Tensor, _step: int) -> tuple[torch.Tensor, None]:
            return loss_fn(to_device(take(tensors, idx), device), idx, gen), None

        with torch_threads(self.s.n_jobs):
            return adam_passes(self.network, params, step_loss, n_rows=n, batch_size=batch,
                               passes=passes, generator=gen,
                               learning_rate=float(self.s.learning_rate) / 2,
                               what="codec tuning", on_step=self._step_hook(phase))

    def _code_loss(self, params: torch.Tensor, b: dict[str, torch.Tensor],
                   inv_var: torch.Tensor | None) -> torch.Tensor:
        """Loss of :meth:`_tune_for_codes` for a batch (mean per row).

        ``inv_var``: 1 / mean predicted variance per numeric column (tables).
        """
        lik = self.network.likelihood
        if self.kind == "image":
            return (lik.mean(params)["x"] - b["x"]).pow(2).flatten(1).sum(1).mean()
        loss = -lik.log_prob(params, b)[:, lik.n_numeric:].sum(dim=-1).mean()
        if inv_var is not None:
            err = (b["num"] - lik.split(params)[0]).pow(2) * b["num_mask"]
            loss = loss + 0.5 * (err * inv_var).sum(dim=-1).mean()
        return loss

    def _refine_decoder(self, tensors: dict[str, torch.Tensor],
                        inv_var: torch.Tensor | None) -> list[float]:
        """Decoder-only passes on the final quantizer's actual codes (same loss)."""
        q = self.quantizer
        model, device = self.network, self.device
        z_hat = torch.from_numpy(q.decode(q.encode(self.means(tensors)))).float()

        def loss(b: dict[str, torch.Tensor], idx: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
            return self._code_loss(model.decode(z_hat[idx].to(device)), b, inv_var)

        return self._fine_tune(tensors, list(model.decoder.parameters()), loss, share=5,
                               seed_offset=3, phase="training decoder")

    def run(self, tensors: dict[str, torch.Tensor], *, tune: bool,
            latent_statistics: Any) -> None:
        """Fit the quantizer; with ``tune``, tune for the codes first (see the class doc).

        ``latent_statistics(tensors)`` re-measures the statistics after the encoder
        moved (they size the refitted quantizer and are kept in ``latent_stats``).
        """
        self._tell("fitting quantizer")
        self.quantizer = self._fit_quantizer(tensors)
        if not tune:
            return
        n = len(tensors["x"])
        self._steps_planned = sum(p * s for _, s, p in (self._plan(n, 3), self._plan(n, 5)))
        inv_var = self._numeric_inv_var(tensors)
        self.tune_history = self._tune_for_codes(tensors, inv_var)
        # The encoder moved: measure its statistics again and size the
        # quantizer for the tuned means.
        self.latent_stats = latent_statistics(tensors)
        self._tell("refitting quantizer")
        self.quantizer = self._fit_quantizer(tensors)
        # Then teach the decoder the final quantizer's actual codes.
        self.tune_history += self._refine_decoder(tensors, inv_var)
        self._tell("done")
