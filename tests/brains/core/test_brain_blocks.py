# moved from tests/test_brain_blocks.py
"""Spiking building blocks: surrogates, exact LIF integration, refractoriness, fused
backward vs. an op-by-op reference, ConnectomeLinear wiring/sign preservation."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from flyenv.brains.core.connectome_layer import ConnectomeLinear
from flyenv.brains.core.neurons import LIFConfig, LIFPopulation, exact_coefficients
from flyenv.brains.core.surrogate import spike

warnings.filterwarnings("ignore", message=".*Sparse.*")


@pytest.mark.parametrize(
    "name, expected",
    [
        ("fast_sigmoid", lambda x, k: 1.0 / (k * x.abs() + 1.0) ** 2),
        ("sigmoid", lambda x, k: k * torch.sigmoid(k * x) * (1 - torch.sigmoid(k * x))),
        ("triangle", lambda x, k: (1.0 - k * x.abs()).clamp_min(0.0)),
        ("relu", lambda x, k: (1.0 - k * x.abs()).clamp_min(0.0)),
    ],
)
def test_surrogate_gradients_by_name(name, expected):
    x = torch.linspace(-0.5, 0.5, 41, requires_grad=True)
    s = spike(x, name, slope=4.0)
    assert torch.equal(s, (x > 0).float())
    s.sum().backward()
    torch.testing.assert_close(x.grad, expected(x.detach(), 4.0))


def test_unknown_surrogate_is_named():
    with pytest.raises(ValueError, match="unknown surrogate 'tanh'"):
        spike(torch.zeros(2), "tanh")
    with pytest.raises(ValueError, match="surrogate"):
        LIFPopulation(3, LIFConfig(surrogate="nope"))


def _silent(**kw) -> LIFConfig:
    return LIFConfig(threshold_mv=1e6, tau_m_ms=10.0, tau_syn_ms=4.0, dt_ms=0.5, **kw)


def test_lif_exact_for_constant_current():
    lif = LIFPopulation(2, _silent())
    st = lif.init_state(1)
    e = torch.tensor([[1.5, -0.7]])
    for k in range(1, 101):
        _, st = lif.step(None, st, current=e)
        t = k * 0.5
        torch.testing.assert_close(st.v, e * (1 - math.exp(-t / 10.0)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("tau_syn", [4.0, 10.0])  # 10 = the equal-time-constant limit
def test_lif_exact_psp_of_one_kick(tau_syn):
    cfg = LIFConfig(threshold_mv=1e6, tau_m_ms=10.0, tau_syn_ms=tau_syn, dt_ms=0.5)
    lif = LIFPopulation(1, cfg)
    st = lif.init_state(1)
    w = 2.0
    for k in range(1, 80):
        _, st = lif.step(torch.full((1, 1), w if k == 1 else 0.0), st)
        t = k * 0.5
        if tau_syn == 10.0:
            v = w * t / 10.0 * math.exp(-t / 10.0)
        else:
            v = w * tau_syn / (tau_syn - 10.0) * (math.exp(-t / tau_syn) - math.exp(-t / 10.0))
        assert st.v.item() == pytest.approx(v, rel=1e-4, abs=1e-6)
        assert st.i.item() == pytest.approx(w * math.exp(-t / tau_syn), rel=1e-5)


def test_refractoriness_holds_reset_and_blocks_spikes():
    cfg = LIFConfig(threshold_mv=1.0, refractory_ms=3.0, dt_ms=1.0)
    lif = LIFPopulation(1, cfg)
    st = lif.init_state(1)
    spikes, volts = [], []
    for _ in range(200):
        s, st = lif.step(None, st, current=torch.full((1, 1), 50.0))
        spikes.append(s.item())
        volts.append(st.v.item())
    t = np.flatnonzero(spikes)
    assert len(t) > 10
    assert np.all(np.diff(t) >= 4)  # 3 refractory steps after each spike
    for k in t[:-1]:
        assert volts[k + 1] == volts[k + 2] == volts[k + 3] == 0.0
    # the strong input fires as soon as refractoriness ends: period = 1 + 3 steps
    assert np.all(np.diff(t)[1:] == 4)


def _reference_lif(x_seq, e, tau_m, tau_s, theta, dt, n_ref, detach_reset):
    """Op-by-op autograd version of the same discrete dynamics."""
    alpha, beta, c = exact_coefficients(tau_m, tau_s, dt)
    v = torch.zeros_like(x_seq[0])
    i = torch.zeros_like(x_seq[0])
    ref = torch.zeros_like(x_seq[0])
    out = []
    for x in x_seq:
        j = i + x
        active = (ref <= 0).float()
        vt = (alpha * v + c * j + (1 - alpha) * e) * active
        s = spike(vt - theta, "fast_sigmoid", 10.0) * active
        r = s.detach() if detach_reset else s
        v = vt * (1 - r)
        i = beta * j
        ref = torch.where(s > 0, float(n_ref), (ref - 1).clamp_min(0))
        out.append(s)
    return torch.stack(out), v


@pytest.mark.parametrize("detach_reset", [True, False])
def test_fused_lif_backward_matches_autograd_reference(detach_reset):
    torch.manual_seed(0)
    # surrogate_scale=1.0: the reference uses the undamped surrogate of spike()
    cfg = LIFConfig(
        refractory_ms=2.0, per_neuron_tau=True, detach_reset=detach_reset, surrogate_scale=1.0
    )
    lif = LIFPopulation(6, cfg)
    with torch.no_grad():
        lif.log_tau_m.add_(0.3 * torch.randn(6))
        lif.log_threshold.add_(0.2 * torch.randn(6))
    x = (0.6 * torch.rand(40, 3, 6)).requires_grad_()
    e = (0.5 * torch.rand(3, 6)).requires_grad_()
    st = lif.init_state(3)
    spikes = []
    for xt in x:
        s, st = lif.step(xt, st, current=e)
        spikes.append(s)
    loss = (torch.stack(spikes) * torch.linspace(0, 1, 40)[:, None, None]).sum() + st.v.sum()
    params = [x, e, lif.log_tau_m, lif.log_tau_syn, lif.log_threshold]
    g_fused = torch.autograd.grad(loss, params)
    s_ref, v_ref = _reference_lif(
        x, e, lif.tau_m_ms, lif.tau_syn_ms, lif.threshold_mv, 1.0, 2, detach_reset
    )
    assert torch.equal(torch.stack(spikes), s_ref)
    assert s_ref.sum() > 10
    loss_ref = (s_ref * torch.linspace(0, 1, 40)[:, None, None]).sum() + v_ref.sum()
    g_ref = torch.autograd.grad(loss_ref, params)
    for a, b in zip(g_fused, g_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
        assert a.abs().sum() > 0


def _random_signed(n_pre, n_post, density, seed):
    rng = np.random.default_rng(seed)
    m = sp.random(n_pre, n_post, density, random_state=rng, format="csr")
    m.data = np.ceil(m.data * 20)
    m = sp.diags(np.where(rng.random(n_pre) < 0.3, -1.0, 1.0)) @ m  # sign per presynapse
    return sp.csr_matrix(m)


def test_connectome_linear_equals_dense_masked_reference():
    counts = _random_signed(30, 50, 0.1, 1)
    lay = ConnectomeLinear(counts, init_gain=0.05)
    dense = torch.tensor(counts.toarray() * 0.05, dtype=torch.float32)
    torch.testing.assert_close(lay.dense_weight().detach(), dense)
    torch.testing.assert_close(lay.effective_weight().to_dense().detach(), dense)
    x = (torch.rand(7, 30) < 0.4).float().requires_grad_()
    y = lay(x, binary=True)
    g = torch.randn_like(y)
    (y * g).sum().backward()
    w = dense.clone().requires_grad_()
    x2 = x.detach().clone().requires_grad_()
    (x2 @ w * g).sum().backward()
    torch.testing.assert_close(y, x2 @ w)
    torch.testing.assert_close(x.grad, x2.grad)
    # chain rule through w = sign * exp(log_magnitude)
    torch.testing.assert_close(lay.log_magnitude.grad, w.grad[lay.pre, lay.post] * lay.values())


def test_connectome_linear_keeps_mask_and_sign_under_training():
    counts = _random_signed(40, 25, 0.15, 2)
    lay = ConnectomeLinear(counts, init_gain=0.1)
    before = lay.effective_weight().detach()
    opt = torch.optim.Adam(lay.parameters(), lr=0.5)
    for _ in range(20):
        x = torch.rand(8, 40)
        loss = (lay(x) - 3.0 * torch.randn(8, 25)).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = lay.effective_weight().detach()
    assert torch.equal(after.indices(), before.indices())
    assert torch.equal(torch.sign(after.values()), torch.sign(before.values()))
    assert not torch.allclose(after.values(), before.values())
    ref = torch.tensor(counts.toarray(), dtype=torch.float32)
    assert torch.equal(lay.mask(), ref != 0)


def test_connectome_linear_errors_name_the_problem():
    with pytest.raises(TypeError, match="scipy.sparse"):
        ConnectomeLinear(np.ones((3, 3)))
    lay = ConnectomeLinear(_random_signed(5, 4, 0.5, 3))
    with pytest.raises(ValueError, match="n_pre=5"):
        lay(torch.zeros(2, 4))


def test_lora_term_is_off_by_default_and_trainable_when_on():
    counts = _random_signed(10, 6, 0.3, 4)
    assert ConnectomeLinear(counts).lora_rank == 0
    lay = ConnectomeLinear(counts, lora_rank=2)
    x = torch.rand(4, 10)
    lay(x).sum().backward()
    assert lay.lora_b.grad.abs().sum() > 0
