"""The latent quantizer and bit allocation (vaekit.codec.quantize)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vaekit.codec.quantize import (
    KL_MIN,
    LatentQuantizer,
    allocate_bits,
    fit_quantizer,
    payload_bytes_per_row,
)


def _stats(d: int = 6):
    rng = np.random.default_rng(0)
    scale = rng.uniform(0.5, 2.0, d)
    precision = rng.uniform(0.01, 0.3, d)
    return np.zeros(d), scale, precision


@settings(max_examples=60, deadline=None)
@given(bits=st.lists(st.integers(0, 16), min_size=1, max_size=8),
       seed=st.integers(0, 2**31 - 1))
def test_encode_decode_error_is_at_most_half_a_step(bits, seed):
    d = len(bits)
    center, scale, _ = np.zeros(d), np.ones(d), None
    q = LatentQuantizer.from_bits(bits, center, scale)
    rng = np.random.default_rng(seed)
    lo, step = np.asarray(q.lo), np.asarray(q.step)
    hi = lo + step * np.exp2(bits)
    mu = rng.uniform(lo, hi, size=(50, d))
    codes = q.encode(mu)
    assert codes.min() >= 0 and (codes < np.exp2(bits)).all()
    back = q.decode(codes)
    b = np.asarray(bits) > 0
    assert (np.abs(back - mu)[:, b] <= step[b] / 2 * (1 + 1e-9)).all()
    assert (back[:, ~b] == 0.0).all()  # 0-bit dims decode to the center


def test_out_of_range_values_clip_to_the_end_codes():
    q = LatentQuantizer.from_bits([3], np.zeros(1), np.ones(1))
    assert q.encode(np.array([[-100.0], [100.0]])).ravel().tolist() == [0, 7]


def test_params_round_trip_exactly_through_json():
    center, scale, precision = _stats()
    q = fit_quantizer(center=center + 0.1, scale=scale, precision=precision, bytes_per_row=3)
    again = LatentQuantizer.from_dict(json.loads(json.dumps(q.to_dict())))
    assert again == q


def test_collapsed_dimensions_cost_nothing():
    center, scale, precision = _stats()
    kl = np.array([3.0, KL_MIN / 2, 1.0, 0.0, 2.0, 0.5])
    for kwargs in ({}, {"bytes_per_row": 4}, {"bits": 5}):
        q = fit_quantizer(center=center, scale=scale, precision=precision, kl=kl, **kwargs)
        assert q.bits[1] == 0 and q.bits[3] == 0
        assert all(b > 0 for j, b in enumerate(q.bits) if j not in (1, 3))


def test_greedy_allocation_spends_the_budget_where_precision_is_finest():
    scale = np.ones(3)
    precision = np.array([0.01, 0.1, 1.0])
    bits = allocate_bits(scale, precision, np.ones(3, bool), total_bits=12)
    assert bits.sum() == 12
    assert bits[0] > bits[1] > bits[2]  # the most precisely pinned-down dim gets most bits


def test_default_allocation_matches_steps_to_posterior_sd():
    center, scale, precision = _stats()
    q = fit_quantizer(center=center, scale=scale, precision=precision)
    step = np.asarray(q.step)
    assert (step <= precision).all()
    coarser = LatentQuantizer.from_bits(np.asarray(q.bits) - 1, center, scale)
    assert (np.asarray(coarser.step) > precision).all()  # and not one bit more


def test_budget_is_met_on_the_measured_entropy_coded_size():
    rng = np.random.default_rng(1)
    center, scale, precision = _stats()
    sample = rng.normal(center, scale, size=(3000, len(scale)))
    for budget in (1, 2.5, 6):
        q = fit_quantizer(center=center, scale=scale, precision=precision,
                          bytes_per_row=budget, sample=sample)
        size = payload_bytes_per_row(q, sample)
        assert size <= budget
        # entropy coding lets it use more raw bits than the budget alone would
        assert q.total_bits >= int(8 * budget) - 8


def test_fitting_is_deterministic():
    rng = np.random.default_rng(2)
    center, scale, precision = _stats()
    sample = rng.normal(center, scale, size=(2000, len(scale)))
    a = fit_quantizer(center=center, scale=scale, precision=precision, bytes_per_row=3,
                      sample=sample)
    b = fit_quantizer(center=center, scale=scale, precision=precision, bytes_per_row=3,
                      sample=sample.copy())
    assert a.to_dict() == b.to_dict()


def test_bad_params_are_refused():
    with pytest.raises(ValueError):
        LatentQuantizer.from_dict({"version": 99, "method": "uniform"})
    with pytest.raises(ValueError):
        LatentQuantizer(bits=(17,), lo=(0.0,), step=(1.0,), center=(0.0,))
    with pytest.raises(ValueError):
        fit_quantizer(center=np.zeros(3), scale=np.ones(3), precision=np.ones(3), bits=[1, 2])


def test_coarsened_quantizers_keep_the_range_and_halve_per_bit():
    q = LatentQuantizer(bits=(5, 2, 0, 3), lo=(-2.0, -1.0, 0.0, 0.5),
                        step=(0.125, 0.5, 1.0, 0.25), center=(0.0, 0.0, 0.3, 0.0))
    assert q.coarsened(0) is q
    c = q.coarsened(2)
    assert c.bits == (3, 0, 0, 1)
    assert c.step[0] == 0.5 and c.step[3] == 1.0  # the same range in 2^r times wider cells
    assert c.center[1] == -1.0 + 0.5 * 4 / 2 and c.center[2] == 0.3  # middle; unchanged
    rng = np.random.default_rng(0)
    means = rng.uniform(-3, 3, size=(500, 4))
    for r in range(0, 8):
        cq = q.coarsened(r)
        codes = cq.encode(means)
        assert codes.min() >= 0 and (codes < 2 ** np.asarray(cq.bits)).all()
        back = cq.decode(codes)
        inside = (means >= np.asarray(q.lo)) & (means <= np.asarray(q.lo)
                                                 + np.asarray(q.step) * 2.0 ** np.asarray(q.bits))
        for j in np.flatnonzero(np.asarray(cq.bits) > 0):
            err = np.abs(back[:, j] - means[:, j])[inside[:, j]]
            assert (err <= cq.step[j] / 2 + 1e-12).all()
        assert (back[:, np.asarray(cq.bits) == 0] == np.asarray(cq.center)[
            np.asarray(cq.bits) == 0]).all()


def test_a_coarsening_that_overflows_is_refused():
    q = LatentQuantizer(bits=(4, 2), lo=(0.0, -1e308), step=(1e308, 1e307),
                        center=(0.0, 0.0))
    with pytest.raises(ValueError, match="not finite"):
        q.coarsened(2)
