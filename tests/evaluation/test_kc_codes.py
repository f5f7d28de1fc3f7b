"""KC-code separation of the conditioning panel (flyenv.evaluation.kc_codes)."""

import numpy as np
import pytest

from flyenv.evaluation.kc_codes import kc_codes, margin, overlap


def test_overlap_and_margin_known_answers():
    a, b = np.array([1.0, 0, 0, 2]), np.array([0, 3.0, 1, 0])
    same = np.stack([a, a])
    orthogonal = np.stack([a, b])
    assert overlap(same, [(0, 1)]) == pytest.approx(1.0)
    assert overlap(orthogonal, [(0, 1)]) == pytest.approx(0.0)
    # codes recognised at the test concentration and orthogonal to the other odor: margin 1
    assert margin(orthogonal, [orthogonal, 2 * orthogonal], [(0, 1)]) == pytest.approx(1.0)
    # the two odors give the same code: nothing tells them apart
    assert margin(same, [same], [(0, 1)]) == pytest.approx(0.0)
    # at test each odor evokes the other's trained code: margin -1
    assert margin(orthogonal, [orthogonal[::-1]], [(0, 1)]) == pytest.approx(-1.0)


def test_kc_codes_are_sparse_mirror_symmetric_and_odor_specific():
    odors = ["ethyl acetate", "benzaldehyde"]
    codes = kc_codes(odors, 0.01, {"lateral_horn": False}, duration_ms=200.0)
    n_kc = codes.shape[1] // 2
    assert codes.shape == (2, 2 * n_kc) and n_kc > 1000
    level = (codes > 0).mean(axis=1)
    assert np.all(level > 0.005) and np.all(level < 0.3)  # sparse, but the odor is coded
    # both antennae get the same input and the hemispheres share weights: same code
    np.testing.assert_allclose(codes[:, :n_kc], codes[:, n_kc:])
    assert overlap(codes, [(0, 1)]) < 0.9


def test_kc_codes_reject_a_negative_concentration():
    with pytest.raises(ValueError, match="concentration"):
        kc_codes(["ethyl acetate"], -1.0)
