# moved from tests/test_whole_brain_model.py
"""Whole-brain LIF: event-driven connectome input, frame simulation, truncated BPTT."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from flyenv.brains.core.connectome_layer import ConnectomeLinear
from flyenv.brains.whole_brain.network import (
    WholeBrainConfig,
    WholeBrainLIF,
    window_from_etrace_decay,
)
from flyenv.training.whole_brain_fitting import rate_loss


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread: on a busy 2-core machine more threads are many times slower."""
    torch.set_num_threads(1)


def _model(n=60, p=4, frame_ms=6.0, seed=0, scale=0.05):
    rng = np.random.default_rng(seed)
    m = sp.random(n, n, density=0.15, random_state=seed, format="csr")
    m.data = np.round(m.data * 20 + 5) * np.where(rng.random(m.data.size) < 0.7, 1, -1)
    readout = rng.integers(0, 5, (p, n)).astype(float) + 0.1
    torch.manual_seed(seed)
    cfg = WholeBrainConfig(frame_ms=frame_ms, n_rank=3, scale_factor_mv=scale, poisson_rate_hz=400)
    model = WholeBrainLIF(m, readout, cfg)
    with torch.no_grad():
        model.encoder.bias.fill_(1.5)
        model.conn.lora_b.normal_(0, 0.5)
    return model


def test_event_driven_input_matches_the_sparse_product():
    m = sp.random(50, 40, density=0.2, random_state=1, format="csr")
    m.data = np.round(m.data * 10) - 5
    m.eliminate_zeros()
    layer = ConnectomeLinear(m, learnable=False, lora_rank=2)
    torch.nn.init.normal_(layer.lora_b)
    x = (torch.rand(50, 3, generator=torch.Generator().manual_seed(0)) < 0.3).float()
    torch.testing.assert_close(layer.forward_t_events(x), layer.forward_t(x))
    torch.testing.assert_close(layer.forward_t_events(torch.zeros(50, 3)), torch.zeros(40, 3))


def test_frame_simulation_is_seeded_and_reads_neuropil_rates():
    model = _model()
    x = torch.full((3, 4), 5.0)
    a = model.simulate_frame(x, torch.Generator().manual_seed(1))
    b = model.simulate_frame(x, torch.Generator().manual_seed(1))
    assert a.shape == (3, 4) and torch.equal(a, b)
    assert a.min() >= 0 and a.sum() > 0  # the drive makes neurons fire
    with pytest.raises(ValueError, match="n_neuropils=4"):
        model.simulate_frame(torch.zeros(2, 5))


def test_refractoriness_caps_the_rate():
    model = _model(frame_ms=20.0)
    with torch.no_grad():
        model.encoder.bias.fill_(50.0)  # every Poisson input spike fires the neuron
    model.config.poisson_rate_hz = 5000.0
    rates = model.simulate_frame(torch.zeros(1, 4), torch.Generator().manual_seed(0))
    assert rates.max() <= 1000.0 / model.config.refractory_ms + 1e-3


def test_truncated_bptt_with_a_full_window_equals_full_bptt():
    model = _model()
    cfg = model.config
    x, y = torch.full((2, 4), 4.0), torch.full((2, 4), 30.0)
    duration = (cfg.n_steps - cfg.n_warmup_steps) * cfg.dt_ms
    # reference: keep the graph of the whole recorded period and differentiate once
    model.zero_grad()
    gen = torch.Generator().manual_seed(3)
    w = model.poisson_weights(x)
    kept = []
    model._run(w, gen, cfg.n_steps, cfg.n_warmup_steps, cfg.n_steps, kept.append)
    loss_ref = rate_loss(model.neuropil_rates(kept[0], duration), y)
    loss_ref.backward()
    ref = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    loss, _ = model.train_frame(x, lambda r: rate_loss(r, y), cfg.n_steps, seed=3)
    assert float(loss) == pytest.approx(loss_ref.item(), rel=1e-5)
    for name, g in ref.items():
        torch.testing.assert_close(
            dict(model.named_parameters())[name].grad, g, rtol=1e-4, atol=1e-7
        )
    assert any(g.abs().sum() > 0 for g in ref.values())


def test_short_windows_reach_every_learnable_tensor():
    model = _model()
    x, y = torch.full((2, 4), 4.0), torch.full((2, 4), 30.0)
    loss, rates = model.train_frame(x, lambda r: rate_loss(r, y), window_steps=5, seed=0)
    assert rates.shape == (2, 4) and torch.isfinite(loss)
    learnable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert set(learnable) == {"conn.lora_a", "conn.lora_b", "encoder.weight", "encoder.bias"}
    for name, p in learnable.items():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_etrace_decay_window_mapping():
    assert window_from_etrace_decay(0.99) == 100
    assert window_from_etrace_decay(0.0) == 1
    with pytest.raises(ValueError):
        window_from_etrace_decay(1.0)


def test_config_errors_are_clear():
    with pytest.raises(ValueError, match="delay_ms"):
        WholeBrainConfig(delay_ms=0.1).validate()
    with pytest.raises(ValueError, match="square"):
        WholeBrainLIF(sp.csr_matrix((3, 4)), np.ones((2, 3)))


def test_fast_inference_paths_match_the_autograd_path():
    model = _model(frame_ms=30.0)
    w = model.poisson_weights(torch.full((3, 4), 5.0)).detach()
    cfg = model.config

    def run(backend, fast):
        model.config.backend = backend
        with torch.no_grad():
            return model._run(w, torch.Generator().manual_seed(5), cfg.n_steps, 10, fast=fast)

    slow = run("torch", False)
    assert slow.sum() > 0
    torch.testing.assert_close(run("torch", True), slow, rtol=0, atol=0)  # in-place twin
    # compiled kernel: same equations, same draws, same spikes
    torch.testing.assert_close(run("numba", True), slow, rtol=0, atol=0)
    assert model.backend() == "numba"


def test_bernoulli_positions_are_exact_trials():
    from flyenv.brains.whole_brain.network import bernoulli_positions

    gen = torch.Generator().manual_seed(0)
    counts = torch.zeros(1000)
    for _ in range(400):
        idx = bernoulli_positions(1000, 0.05, gen)
        assert idx.unique().numel() == idx.numel() and idx.min() >= 0 and idx.max() < 1000
        counts[idx] += 1
    assert abs(float(counts.mean()) / 400 - 0.05) < 0.003  # the success rate
    assert float(counts.std()) == pytest.approx((400 * 0.05 * 0.95) ** 0.5, rel=0.15)
