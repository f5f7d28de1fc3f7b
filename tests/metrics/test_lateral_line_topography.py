# moved from tests/test_lateral_line_topography.py
"""Known answers of the MON->TS topography index (flyenv.metrics.topography)."""

import numpy as np
import pytest

from flyenv.metrics.topography import fisher_lee_correlation, topography_index

N_PRE, N_POST = 800, 80


def _map(sigma_cells=3.0, degree=16, seed=0):
    """Each presynaptic cell projects to TS cells around its own place on the ring."""
    rng = np.random.default_rng(seed)
    w = np.zeros((N_PRE, N_POST))
    centre = np.arange(N_PRE) / N_PRE * N_POST
    tgt = np.rint(rng.normal(centre[:, None], sigma_cells, (N_PRE, degree))).astype(int) % N_POST
    np.add.at(w, (np.repeat(np.arange(N_PRE), degree), tgt.ravel()), 0.02)
    return w


def test_perfect_map_scores_one_and_decays_with_distance():
    t = topography_index(_map())
    assert t["index"] > 0.95
    assert t["alignment"] > 0.95
    prof = t["profile_mean_weight"]
    assert prof[0] > 5 * np.nanmean(prof[-5:])  # weight concentrated at short distance


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_and_row_shuffled_maps_score_near_zero(seed):
    rng = np.random.default_rng(seed)
    rand = np.zeros((N_PRE, N_POST))
    np.add.at(rand, (np.repeat(np.arange(N_PRE), 16), rng.integers(0, N_POST, N_PRE * 16)), 0.02)
    assert abs(topography_index(rand)["index"]) < 0.2
    shuffled = _map(seed=seed)[:, rng.permutation(N_POST)]  # TS cells' input rows shuffled
    assert abs(topography_index(shuffled)["index"]) < 0.2
    prof = topography_index(shuffled)["profile_mean_weight"]
    assert prof[0] < 2.0


def test_mirrored_map_and_rotation():
    assert topography_index(_map()[:, ::-1])["index"] < -0.9
    assert topography_index(np.roll(_map(), 7, axis=1))["index"] > 0.95  # rotation-invariant
    a = np.linspace(0, 2 * np.pi, 50, endpoint=False)
    assert fisher_lee_correlation(a, a) == pytest.approx(1.0)


def test_bad_input():
    with pytest.raises(ValueError, match="2-D"):
        topography_index(np.zeros(5))
    with pytest.raises(ValueError, match=">= 0"):
        topography_index(-np.ones((4, 4)))
    with pytest.raises(ValueError, match="pre_angle_rad"):
        topography_index(np.ones((4, 4)), pre_angle_rad=np.zeros(3))


def test_local_order_separates_a_folded_map_from_no_map():
    """A map folded onto the ring (the line mapped out and back) has high local order but
    an index near 0; a random or TS-shuffled matrix has neither."""
    assert topography_index(_map())["local_order"] > 0.9
    rng = np.random.default_rng(3)
    shuffled = _map(seed=3)[:, rng.permutation(N_POST)]
    assert abs(topography_index(shuffled)["local_order"]) < 0.2
    # Fold: TS cell k and N_POST - 1 - k receive the same inputs (the line twice around).
    w = np.zeros((N_PRE, N_POST))
    half = N_POST // 2
    place = np.arange(N_PRE) / N_PRE * half
    for k in range(half):
        src = np.abs(place - k) < 1.0
        w[src, k] = w[src, N_POST - 1 - k] = 0.02
    t = topography_index(w)
    assert t["local_order"] > 0.9
    assert abs(t["index"]) < 0.2
