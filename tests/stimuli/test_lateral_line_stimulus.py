# moved from tests/test_lateral_line_stimulus.py
"""Dipole stimulus: field symmetry, decay with distance, noise statistics, chunking."""

import numpy as np
import pytest

from flyenv.stimuli.dipole import (
    ContinuousSweep,
    ContinuousSweepConfig,
    CorrelatedOUNoise,
    DipoleStimulusConfig,
    TrainingSweep,
    TrainingSweepConfig,
    dipole_velocity_cm_s,
)

R = 0.5


def test_field_is_mirror_symmetric_about_the_sphere():
    dx = np.linspace(0.1, 3.0, 30)
    x0 = 2.0
    ahead = dipole_velocity_cm_s(x0 + dx, x0, 1.0, 5.0, R)
    behind = dipole_velocity_cm_s(x0 - dx, x0, 1.0, 5.0, R)
    np.testing.assert_allclose(ahead, behind, rtol=1e-12)


def test_direction_flips_the_sign():
    xi = np.linspace(0, 4, 50)
    fwd = dipole_velocity_cm_s(xi, 1.3, 0.8, 5.0, R, direction=1.0)
    back = dipole_velocity_cm_s(xi, 1.3, 0.8, 5.0, R, direction=-1.0)
    np.testing.assert_allclose(fwd, -back)


def test_closed_form_at_closest_point_and_zero_crossing():
    d, u = 0.8, 5.0
    # dx = 0: v = -(U R^3 / 2)(-d^2)/d^5 = U R^3 / (2 d^3)
    v0 = dipole_velocity_cm_s(np.array([2.0]), 2.0, d, u, R)[0]
    assert v0 == pytest.approx(u * R**3 / (2 * d**3))
    # 2 dx^2 = d^2: the along-line component vanishes
    v_zero = dipole_velocity_cm_s(np.array([2.0 + d / np.sqrt(2)]), 2.0, d, u, R)[0]
    assert abs(v_zero) < 1e-12


def test_peak_decays_as_inverse_cube_of_distance():
    d = np.array([0.5, 1.0, 2.0, 4.0])
    peaks = np.array([dipole_velocity_cm_s(np.array([0.0]), 0.0, di, 5.0, R)[0] for di in d])
    assert np.all(np.diff(peaks) < 0)
    np.testing.assert_allclose(peaks[:-1] / peaks[1:], 8.0)


def test_velocity_scales_linearly_with_speed_and_radius_cubed():
    xi = np.linspace(0, 4, 11)
    base = dipole_velocity_cm_s(xi, 1.0, 1.0, 2.0, R)
    np.testing.assert_allclose(dipole_velocity_cm_s(xi, 1.0, 1.0, 4.0, R), 2 * base)
    np.testing.assert_allclose(dipole_velocity_cm_s(xi, 1.0, 1.0, 2.0, 2 * R), 8 * base)


def test_ou_noise_has_target_std_and_spatial_correlation():
    cfg = DipoleStimulusConfig(n_neuromasts=20)
    noise = CorrelatedOUNoise(cfg, 0.001, np.random.default_rng(0))
    noise.sample(500)  # burn-in
    eta = np.concatenate([noise.sample(5000) for _ in range(4)])
    assert eta.std() == pytest.approx(cfg.sigma_noise_hz, rel=0.2)
    c = np.corrcoef(eta.T)
    xi = cfg.neuromast_x_cm()
    near = c[0, 1]  # 0.21 cm apart
    far = c[0, np.argmin(np.abs(xi - 3.0))]  # 3 cm apart
    assert near > 0.9 and far < near - 0.5


def test_ou_chunking_is_continuous():
    cfg = DipoleStimulusConfig(n_neuromasts=5)
    a = CorrelatedOUNoise(cfg, 0.001, np.random.default_rng(1))
    whole = a.sample(300)
    b = CorrelatedOUNoise(cfg, 0.001, np.random.default_rng(1))
    # Same innovations are drawn in the same order only for equal chunking; check state
    # continuity instead: the lag-1 jump at a chunk border is as small as inside a chunk.
    parts = np.concatenate([b.sample(100) for _ in range(3)])
    assert np.abs(np.diff(parts, axis=0)).max() < 5 * np.abs(np.diff(whole, axis=0)).max()


def _train(total, **kw):
    stim = DipoleStimulusConfig()
    return TrainingSweep(stim, TrainingSweepConfig(**kw), total, seed=7)


def test_training_sweep_goes_forward_then_back_and_is_random_access():
    sw = _train(12_000, fixed_distance=False, distance_min_cm=0.8, distance_max_cm=1.8)
    whole = sw.window(0, 12_000)
    x = whole["x_cm"][:: sw.hold_steps]
    np.testing.assert_allclose(x[:100], np.linspace(0, 4, 100))
    np.testing.assert_allclose(x[100:200], np.linspace(4, 0, 100))
    d = whole["distance_cm"][:: sw.hold_steps]
    assert d.min() >= 0.8 and d.max() <= 1.8 and d.std() > 0.1
    chunks = list(sw.chunks(1_200))
    assert len(chunks) == 10
    np.testing.assert_array_equal(
        np.concatenate([c["rates_hz"] for c in chunks]), whole["rates_hz"]
    )
    mid = sw.window(5_025, 777)
    np.testing.assert_array_equal(mid["rates_hz"], whole["rates_hz"][5_025:5_802])


def test_training_margin_extends_the_held_positions_beyond_the_line():
    sw = _train(10_000, margin_cm=0.5)
    x = sw.window(0, 10_000)["x_cm"][:: sw.hold_steps]
    np.testing.assert_allclose(x[:100], np.linspace(-0.5, 4.5, 100))


def test_training_rates_peak_near_the_sphere():
    sw = _train(100_000, fixed_distance=False, distance_min_cm=0.8, distance_max_cm=0.8)
    rates, meta = sw.snapshot(5)
    xi = sw.xi_cm
    dx = np.abs(xi - meta["x_cm"])
    # The original's sign (docs/research_systems.md, lateral line):
    # flow along travel right beside the sphere (rate up), against it
    # beyond |dx| = d / sqrt(2) (rate down), back to baseline far away.
    assert rates[dx < 0.2].mean() > 100.0
    assert rates[(dx > 0.7) & (dx < 1.0)].mean() < 40.0
    assert 30.0 < rates[dx > 3.0].mean() < 40.0  # 1/r^3 tail: close to baseline
    assert rates.max() <= 200.0 and rates.min() >= 0.0


def test_chunked_generation_memory_is_bounded():
    sw = _train(10_000 * 1_200)  # 10,000 trials: 12 M steps, never allocated at once
    chunk = next(sw.chunks(1_200))
    assert chunk["rates_hz"].shape == (1_200, 100)


def test_continuous_sweep_crosses_the_line():
    sweep = ContinuousSweep(
        DipoleStimulusConfig(), ContinuousSweepConfig(distance_cm=0.8, path_cm=5.0), seed=3
    )
    x = sweep.x_cm()
    assert sweep.total_steps == 1000
    assert x[0] == pytest.approx(-0.5) and x[-1] == pytest.approx(4.495)
    parts = list(sweep.chunks(300))
    assert sum(p["x_cm"].size for p in parts) == 1000
    rates = np.concatenate([p["rates_hz"] for p in parts])
    assert np.all((rates >= 0) & (rates <= 200))
    back = ContinuousSweep(DipoleStimulusConfig(), ContinuousSweepConfig(direction=-1), seed=3)
    assert back.x_cm()[0] == pytest.approx(4.5) and np.all(np.diff(back.x_cm()) < 0)


@pytest.mark.parametrize(
    "bad",
    [
        lambda: DipoleStimulusConfig(n_neuromasts=0),
        lambda: ContinuousSweepConfig(distance_cm=0.0),
        lambda: ContinuousSweepConfig(direction=0.0),
        lambda: TrainingSweepConfig(hold_s=0.0),
        lambda: TrainingSweepConfig(direction=2.0),
        lambda: TrainingSweepConfig(margin_cm=-0.1),
    ],
)
def test_bad_stimulus_config_raises(bad):
    with pytest.raises(ValueError):
        bad()
