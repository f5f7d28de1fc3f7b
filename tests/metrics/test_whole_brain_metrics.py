# moved from tests/test_whole_brain_metrics.py
"""Whole-brain metrics, losses and baselines on hand-made arrays."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from flyenv.metrics.whole_brain import (
    all_metrics,
    bin_accuracy,
    mse,
    next_frame_pairs,
    pearson,
    per_neuropil_pearson,
    rate_bins,
    zero_bin_accuracy,
)
from flyenv.training.whole_brain_fitting import (
    LinearAR,
    bin_interval_loss,
    persistence_closed_loop,
    rate_loss,
)


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread: on a busy 2-core machine more threads are many times slower."""
    torch.set_num_threads(1)


def test_bins_follow_the_seed_definition():
    bins = rate_bins(2.3, 0.5, 100.0)
    np.testing.assert_allclose(bins, [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 100.0])


def test_bin_accuracy_counts_entries_in_the_same_bin():
    bins = np.array([0.0, 1.0, 2.0, 100.0])
    true = np.array([[0.5, 1.5], [2.5, 0.2]])
    pred = np.array([[0.9, 2.1], [50.0, 0.0]])  # same, next bin, same (last), same
    assert bin_accuracy(pred, true, bins) == pytest.approx(0.75)
    assert bin_accuracy(true, true, bins) == 1.0


def test_mse_and_pearson():
    a = np.array([[1.0, 2.0], [3.0, 4.0]])
    assert mse(a, a + 2.0) == pytest.approx(4.0)
    assert pearson(a, 2 * a + 1) == pytest.approx(1.0)
    assert pearson(a, -a) == pytest.approx(-1.0)
    assert np.isnan(pearson(a, np.ones_like(a)))
    with pytest.raises(ValueError, match="shape"):
        mse(a, a[:1])
    m = all_metrics(a, a, rate_bins(4.0, 0.25))
    assert m == {
        "bin_accuracy": 1.0,
        "bin_accuracy_all_zero": 0.0,  # no entry of a lies in the first bin [0, 0.25)
        "mse": 0.0,
        "pearson": pytest.approx(1.0),
        "pearson_per_neuropil": pytest.approx(1.0),
    }


def test_per_neuropil_pearson_perfect_shuffled_and_constant():
    rng = np.random.default_rng(0)
    t = np.arange(2000)
    true = np.stack([np.sin(t / 7.0), np.cos(t / 13.0), rng.standard_normal(t.size)], 1)
    true = true + 10.0 * np.arange(3)  # different means per neuropil
    assert per_neuropil_pearson(true, true) == pytest.approx(1.0)
    assert per_neuropil_pearson(3 * true + 1, true) == pytest.approx(1.0)
    shuffled = true[rng.permutation(t.size)]
    assert abs(per_neuropil_pearson(shuffled, true)) < 0.05
    # the per-neuropil mean: no temporal information -> 0, yet the pooled Pearson is high
    const = np.repeat(true.mean(0)[None], t.size, axis=0)
    assert per_neuropil_pearson(const, true) == 0.0
    assert pearson(const, true) > 0.9
    assert np.isnan(per_neuropil_pearson(true, np.ones_like(true)))


def test_zero_bin_accuracy_counts_entries_of_the_first_bin():
    bins = np.array([0.0, 0.25, 0.5, 100.0])
    true = np.array([[0.0, 0.1], [0.3, 5.0]])
    assert zero_bin_accuracy(true, bins) == pytest.approx(0.5)
    assert zero_bin_accuracy(true, bins) == bin_accuracy(np.zeros_like(true), true, bins)


def test_next_frame_pairs_align_frame_t_with_t_plus_1():
    rates = np.arange(10.0)[:, None] * np.ones((1, 2))
    x, y = next_frame_pairs(rates, np.array([2, 5]))
    np.testing.assert_array_equal(x[:, 0], [2, 5])
    np.testing.assert_array_equal(y[:, 0], [3, 6])
    with pytest.raises(ValueError, match="next frame"):
        next_frame_pairs(rates, np.array([9]))


def test_bin_interval_loss_is_zero_inside_the_bin_and_grows_outside():
    bins = torch.tensor([0.0, 1.0, 2.0, 100.0])
    target = torch.tensor([1.5])
    assert float(bin_interval_loss(torch.tensor([1.2]), target, bins)) == 0.0
    below = float(bin_interval_loss(torch.tensor([0.5]), target, bins))
    far_below = float(bin_interval_loss(torch.tensor([-1.0]), target, bins))
    above = float(bin_interval_loss(torch.tensor([3.0]), target, bins))
    assert below == pytest.approx(0.25) and far_below == pytest.approx(4.0)
    assert above == pytest.approx(1.0)  # distance to the bin's upper edge 2.0
    assert far_below > below > 0  # the original's minimum(x, 0) would reward being far off


def test_rate_losses():
    a, b = torch.tensor([[1.0, 2.0]]), torch.tensor([[2.0, 0.0]])
    assert float(rate_loss(a, b, "mse")) == pytest.approx(2.5)
    assert float(rate_loss(a, b, "mae")) == pytest.approx(1.5)
    assert float(rate_loss(a, a, "cosine_distance")) == pytest.approx(0.0, abs=1e-6)
    assert float(rate_loss(a, b, "log_cosh")) == pytest.approx(
        np.mean(np.log(np.cosh([1.0, 2.0]))), rel=1e-5
    )
    assert float(rate_loss(a, b, "huber")) == pytest.approx((0.5 + 1.5) / 2)
    with pytest.raises(ValueError, match="loss_fn"):
        rate_loss(a, b, "l3")


def test_linear_ar_recovers_a_linear_system_and_runs_closed_loop():
    rng = np.random.default_rng(0)
    a_true = np.array([[0.8, 0.1], [-0.2, 0.7]])
    b_true = np.array([1.0, 2.0])
    r = np.zeros((300, 2))
    r[0] = [3.0, 3.0]
    for t in range(299):
        r[t + 1] = a_true @ r[t] + b_true + 0.01 * rng.standard_normal(2)
    ar = LinearAR.fit(r, np.arange(0, 200), ridge=0.0)
    np.testing.assert_allclose(ar.a, a_true, atol=0.05)
    pred = ar.closed_loop(r, 200, 300, 5)
    assert pred.shape == (95, 2)
    np.testing.assert_allclose(pred[0], ar.step(r[204]).clip(0, 100), rtol=1e-6)


def test_persistence_holds_the_last_warmup_frame():
    r = np.arange(20.0)[:, None]
    out = persistence_closed_loop(r, 10, 20, 3)
    assert out.shape == (7, 1) and np.all(out == 12.0)  # frames 13..19 predicted by frame 12


def test_stage2_epoch_trains_teacher_forced_and_through_the_surrogate_closed_loop():
    from flyenv.training.whole_brain_fitting import (
        RateDecoder,
        fit_spiking_surrogate,
        train_round2_epoch,
    )

    rng = np.random.default_rng(0)
    t = np.arange(80)
    rates = (5 + 3 * np.sin(2 * np.pi * t / 11.0)[:, None] + rng.uniform(0, 1, (80, 3))).astype(
        np.float32
    )
    simulated = (0.8 * rates[:-1] + 1.0).astype(np.float32)  # a net that predicts frame t+1
    train = np.arange(0, 60)
    sur = fit_spiking_surrogate(simulated, rates, train)
    np.testing.assert_allclose(sur.a, 0.8 * np.eye(3), atol=1e-2)  # recovers the linear map
    bins = torch.as_tensor(rate_bins(rates.max(), 0.25), dtype=torch.float32)
    torch.manual_seed(0)
    dec = RateDecoder(3, n_hidden=8)
    opt = torch.optim.Adam(dec.parameters(), lr=1e-2)
    losses = [
        train_round2_epoch(
            dec,
            opt,
            simulated,
            rates,
            train,
            bins,
            8,
            10,
            0.1,
            1.0,
            seed=e,
            rollout=5,
            surrogate=sur,
        )  # fmt: skip
        for e in range(15)
    ]
    assert losses[-1] < 0.5 * losses[0]
    with pytest.raises(ValueError, match="surrogate"):
        train_round2_epoch(dec, opt, simulated, rates, train, bins, 8, 10, 0.1, 1.0, 0, rollout=3)
