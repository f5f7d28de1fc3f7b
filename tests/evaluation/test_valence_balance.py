"""The avoid_weight calibration (flyenv.evaluation.valence_balance): positive and seeded."""

import math

from flyenv.evaluation.valence_balance import balanced_avoid_weight


def test_balanced_avoid_weight_is_positive_and_seeded():
    kw = {"n_flies": 4, "seed": 3, "protocol": {"cs_duration_s": 0.2, "gap_s": 0.1, "test_s": 0.1}}
    k = balanced_avoid_weight(**kw)
    assert math.isfinite(k) and k > 0
    assert balanced_avoid_weight(**kw) == k
