"""KC-code separation of the conditioning panel (flyenv.evaluation.kc_codes)."""

import numpy as np
import pytest

from flyenv.evaluation.kc_codes import kc_class_activity, kc_codes, margin, overlap


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


def test_kc_class_activity_splits_the_code_by_class():
    """Per-class summary: the three FlyWire KC classes, shares of spikes summing to 1, and
    the documented fact that alpha'beta' KCs get few olfactory PN inputs in the shipped
    data and hardly respond to the panel (docs/results/mushroom_body_learning.md)."""
    odors = ["ethyl acetate", "benzaldehyde", "1-hexanol"]
    cfg = {"lateral_horn": False}
    table = kc_class_activity(kc_codes(odors, 0.01, cfg, duration_ms=200.0), cfg)
    assert set(table) == {"γ", "α'β'", "αβ"}
    assert sum(r["n_kc"] for r in table.values()) > 2000
    assert sum(r["share_of_spikes"] for r in table.values()) == pytest.approx(1.0)
    apbp, gamma = table["α'β'"], table["γ"]
    assert apbp["pn_inputs_per_kc"] < 0.5 * gamma["pn_inputs_per_kc"]
    assert apbp["share_of_spikes"] < 0.1 * gamma["share_of_spikes"]
    with pytest.raises(ValueError, match="shape"):
        kc_class_activity(np.zeros((1, 5)), cfg)
