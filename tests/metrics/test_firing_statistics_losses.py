# moved from tests/test_firing_statistics_losses.py
"""Firing-statistics losses: hand-computed values, exact ISI CV, and the direction of the
differentiable CV term's gradient."""

import math

import numpy as np
import pytest
import torch

from flyenv.brains.ei_assembly.network import EIAssemblyConfig, EIAssemblyNetwork
from flyenv.metrics.firing_statistics import (
    NO_SPIKE,
    RunningStats,
    cv_loss,
    firing_rate_loss,
    membrane_ratio,
    membrane_variance_loss,
    population_rate_loss,
    silent_penalty,
    spike_times,
    van_rossum_distance,
)


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def test_rate_silent_and_membrane_terms_by_hand():
    r = torch.tensor([0.0, 0.5, 2.0, 4.0])
    target = torch.tensor([0.5, 0.5, 2.0, 2.0])
    assert firing_rate_loss(r, target).item() == pytest.approx((0.25 / 0.5 + 0 + 0 + 4 / 2) / 4)
    groups = torch.tensor([True, True, False, False])
    assert population_rate_loss(r, target, groups).item() == pytest.approx(
        (0.25 - 0.5) ** 2 / 0.5 + (3.0 - 2.0) ** 2 / 2.0
    )
    assert silent_penalty(r, 1.0).item() == pytest.approx(np.mean(np.exp(-r.numpy())))
    ratio = membrane_ratio(torch.tensor([-50.0]), torch.tensor([2.0]), -60.0, -38.0)
    assert ratio.item() == pytest.approx(12.0 / 22.0)
    assert membrane_variance_loss(ratio, 0.8).item() == pytest.approx((12 / 22 - 0.8) ** 2)


def test_van_rossum_single_spike_and_identity():
    T, tau, dt = 400, 20.0, 1.0
    a = torch.zeros(T, 1, 1)
    a[10] = 1.0
    d2 = van_rossum_distance(a, torch.zeros_like(a), tau, dt).item()
    m = np.arange(T - 10)
    assert d2 == pytest.approx(np.sum(np.exp(-2 * m * dt / tau)) * dt / tau, rel=1e-5)
    assert d2 == pytest.approx(0.5, abs=0.03)  # continuous limit 1/2
    assert van_rossum_distance(a, a, tau, dt).item() == 0.0
    b = torch.zeros_like(a)
    b[12] = 1.0  # a 2 ms shift is closer than a missing spike
    assert van_rossum_distance(a, b, tau, dt).item() < d2


def test_isi_cv_is_exact_across_chunks():
    rng = np.random.default_rng(0)
    T, n, B = 3000, 5, 3
    s = (rng.random((T, n, B)) < np.linspace(0.005, 0.05, n)[None, :, None]).astype(np.float32)
    stats = RunningStats(n, B, dt_ms=0.5)
    last = torch.full((n, B), NO_SPIKE)
    for t0 in (0, 1000, 2000):  # three chunks, state carried
        last = stats.add(torch.from_numpy(s[t0 : t0 + 1000]), None, last, t0)
    cv, n_isi = stats.cv()
    for i in range(n):
        isis = np.concatenate([np.diff(np.flatnonzero(s[:, i, b])) for b in range(B)]) * 0.5
        assert n_isi[i].item() == isis.size
        assert cv[i].item() == pytest.approx(isis.std() / isis.mean(), rel=1e-4)
    assert stats.rates_hz()[0].item() == pytest.approx(s[:, 0].sum() / (T * B * 0.5e-3), rel=1e-6)


def test_spike_time_interpolation_by_hand():
    spikes = torch.tensor([0.0, 1.0])[:, None, None]
    v = torch.tensor([-40.0, -60.0])[:, None, None]  # after reset
    v_pre = torch.tensor([-40.0, -36.0])[:, None, None]
    tau = spike_times(spikes, v_pre, v, torch.full((1, 1), -45.0), torch.tensor([-38.0]), 10)
    assert tau.shape == (1,)  # one value per spike event
    assert tau[0].item() == pytest.approx(11 - 1 + 0.5)  # crossed halfway from -40 to -36


def _measured_cv(net, seed=7, steps=1500, batch=8, grad=False):
    gen = torch.Generator().manual_seed(seed)
    st = net.init_state(batch)
    with torch.set_grad_enabled(grad):
        act, _ = net.run(net.sample_inputs(steps, batch, gen), st)
        stats = RunningStats(net.n, batch, net.dt_ms)
        none = torch.full((net.n, batch), NO_SPIKE)
        stats.add(act.spikes, act.v, none, 0, act.v_pre, st.cond.v, net.consts.theta[:, 0])
        cv, n_isi = stats.cv()
    return cv, n_isi


@pytest.mark.parametrize("target", [0.5, 3.0])
def test_cv_term_alone_moves_weights_towards_the_target(target):
    """A feedforward E/I population (recurrence scaled to ~0) whose CV rises with the
    input drive (measured by finite differences, 0.19 per unit log scale). One step
    against the gradient of the CV term alone must move the measured CV (same input
    spikes) towards the target, for a target below and one above."""
    cfg = EIAssemblyConfig(
        n_neurons=100,
        n_assemblies=2,
        n_inputs=60,
        weight_mode="pathway",
        init_pathway_scales=(1e-3, 1e-3, 1e-3, 1e-3, 2.0, 2.0),
    )
    net = EIAssemblyNetwork(cfg)
    cv, n_isi = _measured_cv(net, grad=True)
    loss = cv_loss(cv, n_isi, target, 2, net.is_exc)
    loss.backward()
    grad = net.log_pathway_scale.grad.clone()
    assert torch.all(torch.isfinite(grad)) and grad[4:].abs().sum() > 0
    before = cv[(n_isi >= 2) & net.is_exc].mean().item()
    with torch.no_grad():
        net.log_pathway_scale -= 0.3 * grad / grad.abs().max()
        cv2, n2 = _measured_cv(net)
        after = cv2[(n2 >= 2) & net.is_exc].mean().item()
        new_loss = cv_loss(cv2, n2, target, 2, net.is_exc).item()
    print(f"CV {before:.3f} -> {after:.3f} (target {target})")
    assert abs(after - target) < abs(before - target)
    assert new_loss < loss.item()
    assert math.isfinite(after)
