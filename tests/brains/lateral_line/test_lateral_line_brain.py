# moved from tests/test_lateral_line_brain.py
"""LL->MON->TS network: connectivity, neuron semantics, STDP bounds, determinism, resume."""

from dataclasses import replace

import numpy as np
import pytest

from flyenv.brains.lateral_line.connectivity import (
    build_connectivity,
    ring_inhibition_kernel_mV,
    ts_lateral_kernel_mV,
)
from flyenv.brains.lateral_line.network import LateralLineNetwork
from flyenv.brains.lateral_line.params import NetworkParams, apply_model_mode

SMALL = NetworkParams(
    n_ll=20,
    n_mon=200,
    n_ts=30,
    ll_to_mon_in_degree=10,
    ll_mon_w_mean_mV=11.5,
    mon_ts_gain_mV=200.0,
    seed=3,
)


def _rates(n_steps=300, n_ll=20, hz=120.0):
    return np.full((n_steps, n_ll), hz)


def test_presets_and_bad_values():
    p = apply_model_mode(NetworkParams(), "ll_thesis")
    assert (p.n_ll, p.n_mon, p.n_ts) == (100, 3200, 300)
    assert p.distance_cm == 0.8 and p.test_path_cm == 5.0
    pol, selforg = (apply_model_mode(NetworkParams(), m) for m in ("ll_polarity", "ll_selforg"))
    assert pol.ts_threshold_homeo_mV_per_hz == 0.03 and selforg.ts_threshold_homeo_mV_per_hz == 0
    assert (pol.mon_to_ts_topography_strength, pol.mon_to_ts_sigma) == (0.0625, 30.0)
    assert replace(pol, mon_to_ts_topography_strength=0.0, mon_to_ts_sigma=selforg.mon_to_ts_sigma,
                   ts_threshold_homeo_mV_per_hz=0.0) == selforg  # fmt: skip
    f = apply_model_mode(NetworkParams(), "LL_FAST")
    assert (f.n_mon, f.n_ts, f.n_training_trials) == (800, 80, 40)
    with pytest.raises(ValueError, match="Unknown mode"):
        apply_model_mode(NetworkParams(), "thesis")
    with pytest.raises(ValueError, match="n_mon"):
        NetworkParams(n_mon=0)
    with pytest.raises(ValueError, match="ll_rate_mode"):
        NetworkParams(ll_rate_mode="log")
    with pytest.raises(ValueError, match="together"):
        NetworkParams(eval_x_min_cm=0.5)


def test_connectivity_degrees_and_topography():
    p = apply_model_mode(NetworkParams(), "ll_thesis")
    c = build_connectivity(p)
    assert c.mon_ts_i.size == p.n_mon * p.mon_to_ts_out_degree
    assert np.all(np.bincount(c.ll_mon_j, minlength=p.n_mon) == p.ll_to_mon_in_degree)
    assert c.mon_ts_mult.sum() == c.mon_ts_i.size
    # Fully topographic wiring follows the diagonal; fully random does not.
    topo = build_connectivity(replace(p, mon_to_ts_topography_strength=1.0, mon_to_ts_sigma=10.0))
    rnd = build_connectivity(replace(p, mon_to_ts_topography_strength=0.0))
    expected = topo.mon_ts_i / (p.n_mon - 1) * (p.n_ts - 1)
    assert np.abs(topo.mon_ts_j - expected).mean() < 15
    assert np.abs(rnd.mon_ts_j - expected).mean() > 60


def test_ring_kernel_is_triangular_symmetric_and_periodic():
    k = ring_inhibition_kernel_mV(20, 4, 1.0)
    np.testing.assert_allclose(k, k.T)
    assert np.all(np.diag(k) == 0)
    assert k[0, 1] == pytest.approx(0.75) and k[0, 19] == pytest.approx(0.75)
    assert k[0, 4] == 0 and k[0, 5] == 0


def test_mexican_hat_kernel_excites_near_inhibits_far():
    n, radius, inh, exc, sig = 60, 20, 1.0, 2.0, 4.0
    k = ts_lateral_kernel_mV(n, radius, inh, exc, sig)
    np.testing.assert_allclose(k, k.T)
    assert np.all(np.diag(k) == 0)
    np.testing.assert_allclose(k, np.roll(np.roll(k, 7, 0), 7, 1))  # ring-invariant
    d = np.arange(1, n // 2)
    expected = inh * np.clip(1 - d / radius, 0, None) - exc * np.exp(-0.5 * (d / sig) ** 2)
    np.testing.assert_allclose(k[0, d], expected, rtol=1e-6, atol=1e-6)
    assert k[0, 1] < 0 and k[0, 2] < 0  # neighbours excite (negative = excitatory)
    assert k[0, 15] > 0  # further out: net inhibition (Mexican hat)
    assert np.all(k[0, radius + 1 : n - radius] == pytest.approx(0.0, abs=1e-5))
    np.testing.assert_array_equal(
        ts_lateral_kernel_mV(n, radius, inh, 0.0, sig), ring_inhibition_kernel_mV(n, radius, inh)
    )
    with pytest.raises(ValueError, match="ts_lateral_exc_sigma"):
        ts_lateral_kernel_mV(n, radius, inh, 1.0, 0.0)


def test_open_chain_kernel_has_no_interaction_across_the_ends():
    n, radius, inh, exc, sig = 60, 20, 1.0, 2.0, 4.0
    ring = ts_lateral_kernel_mV(n, radius, inh, exc, sig)
    chain = ts_lateral_kernel_mV(n, radius, inh, exc, sig, periodic=False)
    np.testing.assert_allclose(chain, chain.T)
    assert ring[0, n - 1] != 0 and chain[0, n - 1] == 0  # the ends do not touch
    np.testing.assert_allclose(chain[30, 20:41], ring[30, 20:41])  # same away from the ends
    flat = ring_inhibition_kernel_mV(n, 10 * n, 1.0, periodic=False)  # near-uniform
    off = flat[~np.eye(n, dtype=bool)]
    assert off.min() > 0.9 and off.max() <= 1.0


def test_shrinking_neighbourhood_schedule_and_network_kernel_update():
    p = replace(
        SMALL,
        n_training_trials=100,
        ts_lateral_exc_peak_mV=2.0,
        ts_lateral_exc_sigma=4.0,
        ts_lateral_exc_sigma_start=16.0,
        ts_lateral_anneal_fraction=0.5,
    )
    assert p.ts_lateral_exc_at(0) == (2.0, 16.0)
    assert p.ts_lateral_exc_at(25) == (2.0, pytest.approx(8.0))  # geometric halfway
    assert p.ts_lateral_exc_at(50) == (2.0, pytest.approx(4.0))
    assert p.ts_lateral_exc_at(99) == (2.0, pytest.approx(4.0))
    assert replace(p, ts_lateral_exc_sigma_start=None).ts_lateral_exc_at(0) == (2.0, 4.0)
    net = LateralLineNetwork(p)
    net.set_ts_lateral_exc(2.0, 16.0)
    np.testing.assert_allclose(
        net.conn.ts_lateral_mV,
        ts_lateral_kernel_mV(p.n_ts, p.ts_lateral_radius, p.ts_local_inh_peak_mV, 2.0, 16.0),
    )
    with pytest.raises(ValueError, match="ts_lateral_exc_sigma_start"):
        replace(p, ts_lateral_exc_sigma_start=0.0)
    with pytest.raises(ValueError, match="ts_lateral_anneal_fraction"):
        replace(p, ts_lateral_anneal_fraction=0.0)


def test_fixed_target_normalisation_is_exact_with_a_large_step():
    p = replace(
        SMALL,
        mon_ts_apre=0.01,
        mon_ts_apost=-0.006,
        mon_ts_wmax=0.5,
        mon_ts_homeo_eta=1.0,
        mon_ts_homeo_fixed_target=True,
        mon_ts_homeo_max_step=10.0,
    )
    net = LateralLineNetwork(p)
    before = net._mt_incoming().copy()
    net.run(_rates(), plastic=True)
    assert not np.allclose(net._mt_incoming(), before)  # STDP changed the totals
    net.homeostasis()
    np.testing.assert_allclose(net._mt_incoming(), net.mt_homeo_target, rtol=1e-4)
    # per cell: each TS cell back to its own initial total (homeostasis alone is a no-op)
    cell = LateralLineNetwork(replace(p, mon_ts_homeo_per_cell=True))
    cell.run(_rates(), plastic=True)
    cell.homeostasis()
    np.testing.assert_allclose(cell._mt_incoming(), before, rtol=1e-4)
    assert np.ptp(before) > 0.01 * before.mean()  # the two targets differ
    # dual: each MON cell's outgoing total is restored too
    dual = LateralLineNetwork(replace(p, mon_ts_homeo_per_cell=True, mon_ts_norm_presynaptic=True))
    out0 = dual.mt_w.sum(axis=1, dtype=np.float64)
    dual.run(_rates(), plastic=True)
    assert not np.allclose(dual.mt_w.sum(axis=1), out0)
    dual.homeostasis()
    np.testing.assert_allclose(dual.mt_w.sum(axis=1), out0, rtol=1e-4)


def test_membrane_relaxes_to_rest_without_input():
    p = replace(SMALL, bg_rate_mon_hz=0.0, bg_rate_ts_hz=0.0)
    net = LateralLineNetwork(p)
    u0 = net.mon.u.copy()
    rec = net.run(np.zeros((30, p.n_ll)))
    assert rec.mon_t.size == 0 and rec.ts_t.size == 0
    np.testing.assert_allclose(net.mon.u, u0 * 0.9**30, rtol=1e-4)  # Euler, dt/tau_m = 0.1


def test_refractory_clamps_two_steps_and_rates_are_plausible():
    net = LateralLineNetwork(SMALL)
    rec = net.run(_rates(hz=200.0))
    assert rec.mon_t.size > 0
    # No MON cell fires on consecutive or every-other step (2 ms refractory at 1 ms).
    for cell in np.unique(rec.mon_i)[:50]:
        isi = np.diff(rec.mon_t[rec.mon_i == cell])
        assert np.all(isi >= 3)


def test_stdp_moves_weights_within_bounds_and_freezes():
    net = LateralLineNetwork(SMALL)
    w0 = net.mon_ts_weights()
    rec = net.run(_rates(600), plastic=True)
    assert rec.ts_t.size > 0
    w1 = net.mon_ts_weights()
    assert np.abs(w1 - w0).max() > 1e-3
    assert w1.min() >= 0.0 and w1.max() <= SMALL.mon_ts_wmax + 1e-7
    net.run(_rates(300), plastic=False)
    np.testing.assert_array_equal(net.mon_ts_weights(), w1)
    # disabled increments (the --disable-all-stdp control) never change weights
    ctrl = LateralLineNetwork(replace(SMALL, mon_ts_apre=0.0, mon_ts_apost=0.0))
    wc = ctrl.mon_ts_weights()
    ctrl.run(_rates(300))
    np.testing.assert_array_equal(ctrl.mon_ts_weights(), wc)


def test_ll_mon_stdp_stays_bounded():
    p = replace(SMALL, ll_mon_use_stdp=True)
    net = LateralLineNetwork(p)
    w0 = net.ll_mon_weights_mV()
    net.run(_rates(400))
    w1 = net.ll_mon_weights_mV()
    assert not np.array_equal(w0, w1)
    assert w1.min() >= 0.0 and w1.max() <= p.ll_mon_wmax_mV + 1e-5


def test_same_seed_same_spikes_and_exact_resume():
    a = LateralLineNetwork(SMALL)
    ra1, ra2 = a.run(_rates(200)), a.run(_rates(200))
    b = LateralLineNetwork(SMALL)
    rb1 = b.run(_rates(200))
    np.testing.assert_array_equal(ra1.ts_i, rb1.ts_i)
    state = {k: np.array(v, copy=True) for k, v in b.state_dict().items()}
    c = LateralLineNetwork(SMALL)
    c.load_state_dict(state)
    rc2 = c.run(_rates(200))
    np.testing.assert_array_equal(ra2.mon_t, rc2.mon_t)
    np.testing.assert_array_equal(ra2.ts_i, rc2.ts_i)
    np.testing.assert_array_equal(a.mon_ts_weights(), c.mon_ts_weights())
    d = LateralLineNetwork(replace(SMALL, seed=4))
    assert not np.array_equal(d.run(_rates(200)).mon_i, ra1.mon_i)


def test_ts_threshold_homeostasis_known_answer_and_resume():
    """Intrinsic plasticity: offset += eta * (rate - mean rate), clipped; off at eta 0;
    a raised threshold silences the cell; the offsets survive save / restore."""
    counts = np.zeros(SMALL.n_ts)
    counts[0], counts[1] = 12.0, 3.0  # 1.2 s trial: 10 Hz and 2.5 Hz, mean 0.4167 Hz
    off = LateralLineNetwork(SMALL)
    off.ts_threshold_homeostasis(counts, 1.2)
    assert not off.ts_th_offset.any()  # eta 0 (the default): no change
    p = replace(SMALL, ts_threshold_homeo_mV_per_hz=0.5, ts_threshold_homeo_max_mV=3.0)
    net = LateralLineNetwork(p)
    net.ts_threshold_homeostasis(counts, 1.2)
    rate = counts / 1.2
    expected = np.clip(0.5 * (rate - rate.mean()), -3.0, 3.0)
    np.testing.assert_allclose(net.ts_th_offset, expected, rtol=1e-6)
    assert net.ts_th_offset[0] == pytest.approx(3.0)  # 0.5 * 9.58 clipped at 3 mV
    assert net.ts_th_offset[2] < 0  # silent cells become more excitable
    with pytest.raises(ValueError, match="shape"):
        net.ts_threshold_homeostasis(counts[:5], 1.2)
    with pytest.raises(ValueError, match="duration_s"):
        net.ts_threshold_homeostasis(counts, 0.0)
    with pytest.raises(ValueError, match="ts_threshold_homeo"):
        NetworkParams(ts_threshold_homeo_mV_per_hz=-1.0)
    # A threshold far above the drive silences a cell; the others keep firing.
    loud = LateralLineNetwork(replace(SMALL, mon_ts_apre=0.0, mon_ts_apost=0.0))
    loud.ts_th_offset[:5] = 1000.0
    rec = loud.run(_rates(300))
    assert not np.isin(rec.ts_i, np.arange(5)).any() and rec.ts_i.size > 0
    state = {k: np.array(v, copy=True) for k, v in net.state_dict().items()}
    back = LateralLineNetwork(p)
    back.load_state_dict(state)
    np.testing.assert_array_equal(back.ts_th_offset, net.ts_th_offset)
    del state["ts_th_offset"]  # a state saved before intrinsic plasticity existed
    back.load_state_dict(state)
    assert not back.ts_th_offset.any()


def test_ts_threshold_homeostasis_equalises_rates_and_keeps_their_mean():
    """Driven by the same input for 20 trials of 1 s, the TS cells' rates differ by ~20 %
    (random MON->TS wiring); with intrinsic plasticity after each trial the spread falls
    several-fold while the population's mean rate stays where it was."""
    rates = np.full((1000, SMALL.n_ll), 70.0)

    def last_trials(eta):
        p = replace(
            SMALL,
            mon_ts_apre=0.0,
            mon_ts_apost=0.0,
            mon_ts_gain_mV=100.0,
            ts_threshold_homeo_mV_per_hz=eta,
        )
        net = LateralLineNetwork(p)
        total = np.zeros(p.n_ts)
        for k in range(20):
            c = np.bincount(net.run(rates).ts_i, minlength=p.n_ts)
            total += c if k >= 15 else 0
            net.ts_threshold_homeostasis(c, 1.0)
        return total / 5

    off, on = last_trials(0.0), last_trials(0.1)
    assert off.std() / off.mean() > 0.1
    assert on.std() / on.mean() < 0.25 * off.std() / off.mean()
    assert on.mean() == pytest.approx(off.mean(), rel=0.1)


def test_bad_rates_raise():
    net = LateralLineNetwork(SMALL)
    with pytest.raises(ValueError, match="shape"):
        net.run(np.zeros((10, 3)))
    bad = _rates(5)
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        net.run(bad)


# ------------------------------------------------------------ numba kernel vs numpy
def _assert_same_state(a, b):
    for name in ("mt_w", "x_pre_mon", "x_post_ts", "inh"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    for st in ("mon", "ts"):
        for f in ("u", "g", "ref"):
            np.testing.assert_array_equal(
                getattr(getattr(a, st), f), getattr(getattr(b, st), f), err_msg=f"{st}.{f}"
            )


@pytest.mark.parametrize("feedback", [False, True])
def test_numba_kernel_matches_numpy_reference_spike_for_spike(feedback):
    """Both paths draw the same input events from the same Generator and do the same
    float32 arithmetic in the same order, so spikes, weights and state are identical."""
    p = replace(
        SMALL,
        mon_ts_apre=0.01,
        mon_ts_apost=-0.006,
        use_ts_feedback_inh=feedback,
        ts_to_global_inh_p=0.3,
        global_inh_to_ts_mV=2.0,
        # the Mexican-hat kernel and a non-default STDP time constant on one of the two
        ts_lateral_exc_peak_mV=1.5 if feedback else 0.0,
        mon_ts_stdp_tau_ms=30.0 if feedback else 20.0,
    )
    rates = np.random.default_rng(0).uniform(0.0, 200.0, (250, p.n_ll))
    a = LateralLineNetwork(p, backend="numpy")
    b = LateralLineNetwork(p, backend="numba")
    if feedback:  # per-cell TS thresholds (intrinsic plasticity) on one of the two
        off = np.random.default_rng(1).uniform(-2.0, 2.0, p.n_ts).astype(np.float32)
        a.ts_th_offset[:] = off
        b.ts_th_offset[:] = off
    n_ts_spikes = 0
    for plastic in (True, True, False):  # chunk boundaries, then frozen STDP
        ra, rb = a.run(rates, plastic=plastic), b.run(rates, plastic=plastic)
        for f in ("ll_t", "ll_i", "mon_t", "mon_i", "ts_t", "ts_i", "mon_count", "ts_count"):
            np.testing.assert_array_equal(getattr(ra, f), getattr(rb, f), err_msg=f)
        n_ts_spikes += ra.ts_t.size
        _assert_same_state(a, b)
    assert n_ts_spikes > 100 and ra.mon_t.size > 1000  # the comparison is not vacuous
    assert not np.array_equal(a.mt_w.ravel(), LateralLineNetwork(p).mon_ts_weights())


def test_bad_backend_raises():
    with pytest.raises(ValueError, match="backend"):
        LateralLineNetwork(SMALL, backend="cuda")


def test_bernoulli_grid_events_statistics():
    from flyenv.brains.lateral_line.network import bernoulli_grid_events

    rng = np.random.default_rng(1)
    t, i = bernoulli_grid_events(rng, 2000, 50, 0.02)
    assert np.all(np.diff(t * 50 + i) > 0)  # sorted by step then cell, no duplicates
    assert t.min() >= 0 and t.max() < 2000 and i.min() >= 0 and i.max() < 50
    n = 2000 * 50
    assert abs(t.size - 0.02 * n) < 5 * np.sqrt(0.02 * n)
    per_cell = np.bincount(i, minlength=50)  # every cell at the same rate
    assert per_cell.min() > 15 and per_cell.max() < 70
    e, _ = bernoulli_grid_events(rng, 10, 5, 0.0)
    assert e.size == 0
    t1, _ = bernoulli_grid_events(rng, 10, 5, 1.0)
    assert t1.size == 50
