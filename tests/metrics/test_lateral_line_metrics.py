# moved from tests/test_lateral_line_metrics.py
"""Lateral-line map-quality metrics (docs/research_systems.md, lateral line) on synthetic ring
populations with known answers."""

import numpy as np
import pytest

from flyenv.metrics import circular_mean, circular_std, pv_map_quality, wrap_to_pi
from flyenv.metrics.circular import circular_variance

N_CELLS, N_T = 100, 5000


def _sweep():
    return np.linspace(-0.5, 4.5, N_T)


def _poisson_map(cell_of_time, rate_hz=200.0, seed=0):
    rng = np.random.default_rng(seed)
    counts = np.zeros((N_T, N_CELLS))
    for shift in (-1, 0, 1):  # small bump of 3 cells
        idx = (cell_of_time + shift) % N_CELLS
        counts[np.arange(N_T), idx] += rng.random(N_T) < rate_hz * 1e-3
    return counts


def test_circular_helpers():
    assert circular_std(np.zeros(10)) == pytest.approx(0.0, abs=1e-6)
    assert circular_mean(np.array([0.1, -0.1])) == pytest.approx(0.0)
    assert circular_mean(np.array([np.pi - 0.1, -np.pi + 0.1])) == pytest.approx(
        np.pi, abs=1e-9
    ) or (circular_mean(np.array([np.pi - 0.1, -np.pi + 0.1])) == pytest.approx(-np.pi, abs=1e-9))
    # Mardia std of a von Mises-like spread: sqrt(-2 ln R)
    x = np.array([-0.5, 0.5])
    assert circular_std(x) == pytest.approx(np.sqrt(-2 * np.log(np.cos(0.5))))
    assert np.all(np.abs(wrap_to_pi(np.array([3 * np.pi, -3 * np.pi]))) <= np.pi)
    assert np.isnan(circular_std(np.array([])))


def test_perfect_map_has_near_zero_error():
    x = _sweep()
    cell = np.floor((x - x.min()) / (np.ptp(x) + 1e-12) * N_CELLS).astype(int)
    q = pv_map_quality(_poisson_map(cell), x)
    assert q.sigma_theta < 0.1
    assert q.valid_fraction > 0.95
    assert q.delta_trial < 0.5


def test_constant_offset_is_not_a_somatotopic_error():
    # A map rotated by a constant angle has bias but no *spread* of bias.
    x = _sweep()
    cell = (np.floor((x - x.min()) / (np.ptp(x) + 1e-12) * N_CELLS).astype(int) + 25) % N_CELLS
    q = pv_map_quality(_poisson_map(cell), x)
    assert q.sigma_theta < 0.1
    assert np.nanmean(np.abs(q.bias_theta)) == pytest.approx(np.pi / 2, abs=0.15)


def test_random_map_is_at_chance_or_worse():
    x = _sweep()
    rng = np.random.default_rng(1)
    perm = rng.permutation(N_CELLS)
    cell = perm[np.floor((x - x.min()) / (np.ptp(x) + 1e-12) * N_CELLS).astype(int)]
    q = pv_map_quality(_poisson_map(cell), x)
    assert q.sigma_theta >= np.pi / 2 - 0.2


def test_silent_population_has_no_valid_bins():
    x = _sweep()
    q = pv_map_quality(np.zeros((N_T, N_CELLS)), x)
    assert q.valid_fraction == 0.0
    assert q.sigma_theta == pytest.approx(np.pi)
    assert np.all(np.isnan(q.theta_hat))


def test_eval_window_restricts_valid_bins():
    x = _sweep()
    cell = np.floor((x - x.min()) / (np.ptp(x) + 1e-12) * N_CELLS).astype(int)
    q = pv_map_quality(_poisson_map(cell), x, eval_x_min_cm=0.0, eval_x_max_cm=4.0)
    # valid_fraction is over the window only (docs/research_systems.md,
    # lateral line: fraction of *test* bins): an active
    # map inside the window is fully valid; time outside it does not count as invalid.
    # (Before: the mean over the whole trace, capped at 0.8 = 4 of 5 cm.)
    assert q.valid_fraction > 0.99
    assert np.all(np.isnan(q.theta_true[x < 0.0]))
    # Silence inside the window lowers it; silence outside does not.
    counts = _poisson_map(cell)
    inside = (x >= 0.0) & (x <= 4.0)
    half = inside & (x < 2.0)
    quiet_in = counts.copy()
    quiet_in[half] = 0
    q_in = pv_map_quality(quiet_in, x, eval_x_min_cm=0.0, eval_x_max_cm=4.0)
    assert q_in.valid_fraction == pytest.approx(0.5, abs=0.03)
    quiet_out = counts.copy()
    quiet_out[~inside] = 0
    q_out = pv_map_quality(quiet_out, x, eval_x_min_cm=0.0, eval_x_max_cm=4.0)
    assert q_out.valid_fraction > 0.99


def test_circular_variance_known_answers():
    assert circular_variance(np.zeros(5)) == pytest.approx(0.0, abs=1e-12)
    assert circular_variance(np.array([0.0, np.pi])) == pytest.approx(1.0, abs=1e-12)
    x = np.array([-0.5, 0.5])
    assert circular_variance(x) == pytest.approx(1.0 - np.cos(0.5))


def test_delta_trial_is_across_sweeps_and_uses_circular_variance():
    """Ten sweeps of the same map, each shifted by its own constant decoding offset: within
    a sweep the error is constant, so all trial variability is across sweeps."""
    n_sw = 10
    x1 = _sweep()
    cell = np.floor((x1 - x1.min()) / (np.ptp(x1) + 1e-12) * N_CELLS).astype(int)
    offsets = np.linspace(-4, 5, n_sw).astype(int)  # cells; ring angle 2 pi / N_CELLS each
    counts = np.concatenate([np.eye(N_CELLS)[(cell + o) % N_CELLS] for o in offsets])
    x = np.tile(x1, n_sw)
    sw = np.repeat(np.arange(n_sw), N_T)
    q = pv_map_quality(counts, x, sweep_index=sw, smooth_s=0.001)
    off = 2 * np.pi * offsets / N_CELLS
    expected = np.sqrt(circular_variance(off - circular_mean(off)))
    assert q.delta_trial == pytest.approx(expected, rel=0.05)
    # Pooled without sweep labels (one long "sweep") the same spread is seen per bin.
    assert pv_map_quality(counts, x, smooth_s=0.001).delta_trial == pytest.approx(expected, rel=0.1)
    # One sweep alone: the error is constant within each bin -> no trial variability.
    assert pv_map_quality(counts[:N_T], x1, smooth_s=0.001).delta_trial < 0.02
    with pytest.raises(ValueError, match="sweep_index"):
        pv_map_quality(counts, x, sweep_index=sw[:10])


def test_smoothing_fills_gaps_between_sparse_spikes():
    x = _sweep()
    counts = np.zeros((N_T, N_CELLS))
    counts[::10, 0] = 1  # one spike every 10 ms
    assert pv_map_quality(counts, x, smooth_s=0.02).valid_fraction > 0.99
    assert pv_map_quality(counts, x, smooth_s=0.001).valid_fraction == pytest.approx(0.1)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"spike_counts": np.zeros(5)}, "2-D"),
        ({"x_cm": np.zeros(3)}, "x_cm"),
        ({"dt_s": 0.0}, "dt_s"),
        ({"eval_x_min_cm": 1.0}, "together"),
    ],
)
def test_bad_input_raises(kwargs, match):
    args = {"spike_counts": np.zeros((10, 4)), "x_cm": np.zeros(10)}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        pv_map_quality(**args)


def test_a_mirrored_map_decodes_only_when_the_ring_is_read_backwards():
    """Cell k of a mirrored map fires at the place the decoder assigns to cell n - 1 - k:
    sigma_theta is large; reversing the cell order (what the lateral-line cell's
    sigma_theta_oriented does for a negative topography index) recovers a small error."""
    n, T = 60, 3000
    x = np.linspace(0.0, 5.0, T, endpoint=False)
    place = (x / 5.0 * n).astype(int)
    counts = np.zeros((T, n))
    for d in (-1, 0, 1):
        counts[np.arange(T), (n - 1 - place + d) % n] = 1.0
    assert pv_map_quality(counts, x).sigma_theta > 1.0
    assert pv_map_quality(counts[:, ::-1], x).sigma_theta < 0.1
