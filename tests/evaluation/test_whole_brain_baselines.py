# moved from tests/test_whole_brain_baselines.py
"""Whole-brain baselines: known answers on hand-made processes, and the sweep cell."""

from __future__ import annotations

import numpy as np
import pytest

from flyenv.evaluation.whole_brain_baselines import (
    MeanBaseline,
    Persistence,
    RidgeAR,
    RidgeARSelection,
    evaluate_predictor,
    select_ridge_ar,
)
from flyenv.metrics.whole_brain import rate_bins


def _ar2_process(n: int = 3000, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a1 = np.array([[0.5, 0.2], [0.0, 0.4]])
    a2 = np.array([[0.3, 0.0], [-0.1, 0.3]])
    b = np.array([2.0, 3.0])
    r = np.zeros((n, 2))
    r[:2] = 10.0
    for t in range(2, n):
        r[t] = b + a1 @ r[t - 1] + a2 @ r[t - 2] + 0.3 * rng.standard_normal(2)
    return r, np.concatenate([a1, a2], 1), b


def test_ridge_ar_recovers_the_coefficients_of_a_known_ar2():
    r, w_true, b_true = _ar2_process()
    m = RidgeAR.fit(r, np.arange(2, 2500), order=2, ridge=0.0)
    np.testing.assert_allclose(m.w, w_true, atol=0.04)
    np.testing.assert_allclose(m.b, b_true, atol=0.5)


def test_validation_picks_the_true_order_and_never_reads_test_frames():
    r, _, _ = _ar2_process()
    n_train = 2000
    sel = RidgeARSelection(orders=(1, 2, 5), ridges=(0.0, 1.0), criterion="one_step")
    m, scores = select_ridge_ar(r, n_train, 10, sel)
    assert m.order >= 2 and m.ridge == 0.0  # order 1 cannot express the lag-2 term
    assert scores["1,0"] > scores["2,0"]
    poisoned = r.copy()
    poisoned[n_train:] = 1e6  # changing test frames must not change the fit
    m2, scores2 = select_ridge_ar(poisoned, n_train, 10, sel)
    assert scores2 == scores
    np.testing.assert_array_equal(m2.w, m.w)


def test_ridge_ar_closed_loop_uses_only_warmup_frames_and_aligns_t_plus_1():
    r, _, _ = _ar2_process(400)
    m = RidgeAR.fit(r, np.arange(2, 300), 2, 0.0)
    start, end, w = 300, 400, 5
    cl = m.predict(r, start, end, w)
    assert cl.shape == (end - start - w, 2)  # frames start+w .. end-1
    np.testing.assert_allclose(cl[0], m.step(r[start + w - 2 : start + w]), rtol=1e-5)
    later = r.copy()
    later[start + w :] = 0.0  # frames after the warm-up are never read in closed loop
    np.testing.assert_array_equal(m.predict(later, start, end, w), cl)
    earlier = r.copy()
    earlier[:start] = 0.0  # nor frames before the window: history is the training mean
    np.testing.assert_array_equal(m.predict(earlier, start, end, w), cl)
    one = m.predict(r, start, end, None)  # one step: prediction of frame t+1 from t, t-1
    assert one.shape == (end - start - 1, 2)
    np.testing.assert_allclose(one[5], m.step(r[start + 4 : start + 6]), rtol=1e-5)


def test_mean_and_persistence_known_answers():
    r = np.arange(40.0)[:, None] * np.ones((1, 3))
    mean = MeanBaseline.fit(r, 20)
    np.testing.assert_allclose(mean.mean_hz, 9.5)
    assert mean.predict(r, 25, 40, 4).shape == (11, 3)
    p = Persistence()
    np.testing.assert_array_equal(p.predict(r, 25, 40, None)[:, 0], np.arange(25, 39))
    np.testing.assert_array_equal(p.predict(r, 25, 40, 4)[:, 0], 28.0)  # frame start+w-1
    bins = rate_bins(r.max(), 0.25)
    m = evaluate_predictor(p, r, 25, 40, 4, bins)
    assert m["one_step"]["mse"] == pytest.approx(1.0)  # off by exactly one frame
    assert m["one_step"]["pearson_per_neuropil"] == pytest.approx(1.0)
    assert m["closed_loop"]["pearson_per_neuropil"] == 0.0  # a constant


def test_bad_windows_are_named():
    r = np.ones((30, 2))
    with pytest.raises(ValueError, match="warmup"):
        Persistence().predict(r, 10, 30, 20)
    with pytest.raises(ValueError, match="order"):
        RidgeAR.fit(r, np.arange(1, 20), order=3, ridge=0.0)
    with pytest.raises(ValueError, match="criterion"):
        RidgeARSelection(criterion="test")


@pytest.mark.slow
def test_cell_ridge_ar_beats_persistence_and_the_mean_in_closed_loop(tmp_path, monkeypatch):
    """The claim of docs/results/whole_brain.md on one synthetic seed (2,000 neurons)."""
    from flyenv.evaluation.whole_brain_baselines import baselines_cell

    monkeypatch.setenv("FLYENV_CACHE", str(tmp_path))
    out = {
        n: baselines_cell({"predictor": n}, 1000, tmp_path)
        for n in ("ridge_ar", "persistence", "train_mean")
    }
    ar = out["ridge_ar"]["closed_loop"]
    for other in ("persistence", "train_mean"):
        assert ar["mse"] < out[other]["closed_loop"]["mse"]
        assert ar["pearson_per_neuropil"] > out[other]["closed_loop"]["pearson_per_neuropil"]
