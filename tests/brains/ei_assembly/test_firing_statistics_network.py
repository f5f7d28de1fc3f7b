# moved from tests/test_firing_statistics_network.py
"""Conductance LIF + difference-of-exponentials synapses against hand-computed values;
fused backward vs the op-by-op reference; E/I assembly wiring, masks and scales."""

import math

import numpy as np
import pytest
import torch

from flyenv.brains.ei_assembly.conductance import (
    ConductanceLIFConfig,
    cond_step,
    cond_step_reference,
    init_state,
    make_constants,
    peak_normalisation,
)
from flyenv.brains.ei_assembly.network import (
    EIAssemblyConfig,
    EIAssemblyNetwork,
    build_wiring,
)

DT = 1.0
C_E = 1.35 * 85.0  # pF = g_L tau_m (seed values)


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def _one_e_cell(v0=-60.0):
    k = make_constants(ConductanceLIFConfig(dt_ms=DT), torch.tensor([True]))
    st = init_state(k, 1)
    return k, st._replace(v=torch.full((1, 1), v0))


def _zero():
    return torch.zeros(1, 1)


def test_leak_is_exact_exponential():
    k, st = _one_e_cell(-50.0)
    _, st, _ = cond_step(_zero(), _zero(), st, k)
    assert st.v.item() == pytest.approx(-60.0 + 10.0 * math.exp(-DT / 85.0), abs=1e-5)


def test_peak_normalisation_gives_unit_peak():
    for rise, decay in [(0.1, 5.0), (10.0, 70.0), (1.0, 6.0)]:
        n = peak_normalisation(rise, decay)
        t = np.linspace(0, 10 * decay, 200001)
        assert (n * (np.exp(-t / decay) - np.exp(-t / rise))).max() == pytest.approx(1.0, abs=1e-6)


def test_one_excitatory_kick_hand_computed():
    """Kick w=1 at step 0: g = 0 that step; next step g_AMPA + g_NMDA of the sampled
    difference of exponentials, and V moves by (dt/C) g (0 mV - V)."""
    k, st = _one_e_cell()
    _, st, _ = cond_step(torch.ones(1, 1), _zero(), st, k)
    assert st.v.item() == pytest.approx(-60.0, abs=1e-6)  # d - r = 0 at the kick
    _, st, _ = cond_step(_zero(), _zero(), st, k)
    g_a = 0.5 * peak_normalisation(0.1, 5.0) * (math.exp(-1 / 5.0) - math.exp(-1 / 0.1))
    g_n = 0.1 * peak_normalisation(10.0, 70.0) * (math.exp(-1 / 70.0) - math.exp(-1 / 10.0))
    expected = -60.0 - DT / C_E * (g_a + g_n) * (-60.0 - 0.0)
    assert st.v.item() == pytest.approx(expected, abs=1e-5)
    # traces follow the exact kernel at later grid points
    for _ in range(5):
        _, st, _ = cond_step(_zero(), _zero(), st, k)
    t = 6.0
    assert st.q[0].item() == pytest.approx(0.5 * math.exp(-t / 5.0), rel=1e-5)
    assert st.q[2].item() - st.q[3].item() == pytest.approx(
        0.1 * (math.exp(-t / 70.0) - math.exp(-t / 10.0)), rel=1e-5
    )


def test_gabaa_pulls_towards_its_reversal():
    k, st = _one_e_cell(-60.0)
    _, st, _ = cond_step(_zero(), torch.ones(1, 1), st, k)
    _, st, _ = cond_step(_zero(), _zero(), st, k)
    g = 2.0 * peak_normalisation(1.0, 6.0) * (math.exp(-1 / 6.0) - math.exp(-1 / 1.0))
    assert st.v.item() == pytest.approx(-60.0 - DT / C_E * g * (-60.0 + 70.0), abs=1e-5)
    assert st.v.item() < -60.0


def test_spike_reset_and_refractory_hold():
    k, st = _one_e_cell(-30.0)  # above theta = -38 after one leak step
    s, st, vt = cond_step(_zero(), _zero(), st, k)
    assert s.item() == 1.0 and st.v.item() == -60.0 and vt.item() > -38.0
    big = torch.full((1, 1), 1e3)
    for _ in range(8):  # tau_ref 8 ms: held at reset, no spike, whatever the input
        s, st, _ = cond_step(big, _zero(), st, k)
        assert s.item() == 0.0 and st.v.item() == -60.0
    s, st, _ = cond_step(_zero(), _zero(), st, k)  # free again: the built-up AMPA fires it
    assert s.item() == 1.0


def test_fused_step_matches_reference_values_and_gradients():
    torch.manual_seed(0)
    n, b, T = 12, 3, 60
    is_exc = torch.arange(n) < 9
    k = make_constants(ConductanceLIFConfig(), is_exc)
    xe = (torch.rand(T, n, b) * 8).requires_grad_()
    xi = (torch.rand(T, n, b) * 2).requires_grad_()
    outs = []
    for step in (cond_step, cond_step_reference):
        st = init_state(k, b, torch.full((n, b), -55.0))
        acc = 0.0
        for t in range(T):
            s, st, vt = step(xe[t], xi[t], st, k)
            acc = acc + (s * torch.arange(n)[:, None]).sum() + 0.01 * st.v.sum() + 0.1 * vt.sum()
        acc = acc + st.q.sum()
        ge, gi = torch.autograd.grad(acc, (xe, xi))
        outs.append((acc.detach(), ge, gi))
    assert outs[0][0] == pytest.approx(outs[1][0].item(), rel=1e-6)
    torch.testing.assert_close(outs[0][1], outs[1][1], rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(outs[0][2], outs[1][2], rtol=1e-4, atol=1e-6)
    assert outs[0][1].abs().sum() > 0


def test_wiring_probabilities_weights_and_assemblies():
    cfg = EIAssemblyConfig(compensate_in_degree=False)
    w = build_wiring(cfg)
    n, n_e = cfg.n_neurons, cfg.n_exc
    assert w.is_exc.sum() == n_e == 400
    assert np.bincount(w.assembly[w.is_exc]).tolist() == [40] * 10
    same = w.assembly[w.rec_pre] == w.assembly[w.rec_post]
    ee = w.is_exc[w.rec_pre] & w.is_exc[w.rec_post]
    ie = ~w.is_exc[w.rec_pre] & w.is_exc[w.rec_post]
    # E->E within: p 0.2 of 40 x 39 pairs per assembly; I->E within: p 0.4
    assert (ee & same).sum() / (10 * 40 * 39) == pytest.approx(0.2, abs=0.02)
    assert (ie & same).sum() / (10 * 10 * 40) == pytest.approx(0.4, abs=0.04)
    assert (ee & ~same).sum() / (400 * 360) == pytest.approx(0.02, abs=0.004)
    assert np.all(w.rec_pre != w.rec_post)
    # lognormal: E->E mean 0.4, sd 0.2
    assert w.rec_w[ee].mean() == pytest.approx(0.4, rel=0.05)
    assert w.rec_w[ee].std() == pytest.approx(0.2, rel=0.1)
    assert w.inp_w.mean() == pytest.approx(0.4, rel=0.1)
    assert (w.inp_pre.size / (cfg.n_inputs * n)) == pytest.approx(0.02, abs=0.004)


def test_in_degree_compensation_and_seed_size():
    small, seed = EIAssemblyConfig(), EIAssemblyConfig.seed_size()
    assert (seed.n_neurons, seed.n_assemblies, seed.n_inputs) == (5000, 20, 1500)
    w_small = build_wiring(small)
    ff = w_small.inp_w.mean()
    assert ff == pytest.approx(0.4 * 10, rel=0.1)  # 10x fewer inputs -> 10x the weight


def test_masks_fixed_learning_only_on_edges_and_pathway_scales():
    cfg = EIAssemblyConfig(n_neurons=60, n_assemblies=3, n_inputs=20, weight_mode="both")
    net = EIAssemblyNetwork(cfg)
    mask = net.dense_weights()[0] != 0
    b, T = 2, 80
    inputs = net.sample_inputs(T, b, torch.Generator().manual_seed(0))
    act, _ = net.run(inputs, net.init_state(b))
    (act.spikes.sum() + act.v.mean()).backward()
    assert net.log_pathway_scale.grad is not None and net.rec.log_magnitude.grad is not None
    with torch.no_grad():
        net.rec.log_magnitude += net.rec.log_magnitude.grad.sign() * 0.5
    assert torch.equal(net.dense_weights()[0] != 0, mask)  # no new or lost connections
    w_before = net.dense_weights()[0]
    net.set_pathway_scales(torch.tensor([2.0, 1, 1, 1, 1, 1]))
    w_after = net.dense_weights()[0]
    ee = net.is_exc[:, None] & net.is_exc[None, :]
    torch.testing.assert_close(w_after[ee], 2 * w_before[ee])
    torch.testing.assert_close(w_after[~ee], w_before[~ee])
    with pytest.raises(ValueError, match="weight_mode"):
        EIAssemblyConfig(weight_mode="all").validate()


def test_sparse_run_matches_dense_reference():
    cfg = EIAssemblyConfig(n_neurons=80, n_assemblies=4, n_inputs=30)
    net = EIAssemblyNetwork(cfg)
    inputs = net.sample_inputs(150, 3, torch.Generator().manual_seed(1))
    a, _ = net.run(inputs, net.init_state(3))
    r, _ = net.run_reference(inputs, net.init_state(3))
    assert a.spikes.sum() > 0
    torch.testing.assert_close(a.spikes, r.spikes)
    torch.testing.assert_close(a.v, r.v, rtol=1e-4, atol=1e-4)
    ga = torch.autograd.grad(a.spikes.sum() + a.v.mean(), net.log_pathway_scale)[0]
    gr = torch.autograd.grad(r.spikes.sum() + r.v.mean(), net.log_pathway_scale)[0]
    torch.testing.assert_close(ga, gr, rtol=1e-3, atol=1e-4)
