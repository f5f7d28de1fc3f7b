# moved from tests/test_whole_brain_baselines.py
"""Whole-brain baselines: known answers on hand-made processes, and the sweep cell."""

from __future__ import annotations

import numpy as np
import pytest

from flyenv.evaluation.whole_brain_baselines import (
    GRUBaseline,
    GRUSelection,
    MeanBaseline,
    Persistence,
    RidgeAR,
    RidgeARSelection,
    evaluate_predictor,
    select_gru,
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


def _waves(n: int = 300) -> np.ndarray:
    """Six neuropils: phase-shifted deterministic waves of period 12 frames around 10 Hz."""
    t = np.arange(n)[:, None]
    return (10.0 + 5.0 * np.sin(2 * np.pi * t / 12.0 + np.arange(6))).astype(np.float32)


def test_gru_alone_learns_a_known_deterministic_sequence_and_never_reads_ahead():
    """The GRU alone, fitted on frames 0-199 with its size and epochs chosen on 160-199,
    continues deterministic waves in closed loop far better than the training mean; in
    closed loop it reads no frame after the warm-up nor before the window."""
    import torch

    torch.set_num_threads(1)
    r = _waves()
    sel = GRUSelection(hidden=(16,), epochs=(3, 40), lr=1e-2, noise_hz=0.1, seq_len=16)
    model, scores = select_gru(r, 200, 10, sel)
    assert set(scores) == {"16,3", "16,40"} and model.epochs == 40  # 3 epochs: not yet
    bins = rate_bins(r.max(), 0.25)
    got = evaluate_predictor(model, r, 200, 300, 10, bins)
    mean = evaluate_predictor(MeanBaseline.fit(r, 200), r, 200, 300, 10, bins)
    assert got["closed_loop"]["mse"] < 0.2 * mean["closed_loop"]["mse"]
    assert got["closed_loop"]["pearson_per_neuropil"] > 0.8
    cl = model.predict(r, 200, 300, 10)
    assert cl.shape == (90, 6)
    poisoned = r.copy()
    poisoned[210:] = 1e4
    poisoned[:200] = -1e4
    np.testing.assert_array_equal(model.predict(poisoned, 200, 300, 10), cl)
    one = model.predict(r, 200, 300, None)  # one step: frames 201 .. 299
    assert one.shape == (99, 6)


def test_gru_fit_returns_one_model_per_epoch_checkpoint():
    import torch

    torch.set_num_threads(1)
    models = GRUBaseline.fit(_waves(80), 60, 8, (1, 3), GRUSelection(seq_len=8, rollout=4))
    assert [m.epochs for m in models] == [1, 3]
    a, b = (m.decoder.out.weight.detach() for m in models)
    assert not torch.equal(a, b)  # copies, not the same module


def test_paired_differences_known_answer(tmp_path):
    """Per-seed differences over the seeds where both rows are ok; a constant difference
    has a zero-width CI."""
    from flyenv.sweep.aggregate import paired_differences, paired_markdown

    csv = tmp_path / "cells.csv"
    lines = ["config,seed,status,closed_loop.mse"]
    for s in range(5):
        lines += [f"a,{s},ok,{1.0 + s}", f"b,{s},ok,{3.0 + s}"]
    lines += ["c,0,ok,0.5", "c,1,failed,"]
    csv.write_text("\n".join(lines) + "\n")
    d = paired_differences(csv, "a", ["b", "c"], ["closed_loop.mse"])
    assert d[0]["n"] == 5 and d[0]["mean"] == d[0]["low"] == d[0]["high"] == -2.0
    assert d[1]["n"] == 1 and d[1]["mean"] == 0.5
    assert "| b | 5 | -2.000 [-2.000, -2.000] |" in paired_markdown(d, "a")


def test_teacher_oracle_rebuilds_the_teacher_and_controls_change_it(tmp_path):
    """TeacherOracle carries the teacher's saved parameters; with no hidden drive and the
    clean rates as input the mean of its copies predicts the next clean frame better than
    one copy, and its shuffled-wiring twin predicts differently."""
    from dataclasses import replace

    import torch

    from flyenv.connectome.synthetic_whole_brain import SCALES, generate
    from flyenv.connectome.whole_brain_data import load_whole_brain_data
    from flyenv.evaluation.whole_brain_baselines import TeacherOracle

    torch.set_num_threads(1)
    cfg = replace(SCALES["tiny"], n_frames=60, drive_hz=0.0, seed=3, frame_ms=100.0)
    folder = generate(tmp_path / "b", cfg, progress=False)
    data = load_whole_brain_data(folder, "630", "synthetic")
    t = np.load(folder / "teacher_synthetic.npz")
    oracle = TeacherOracle.load(folder, data, "true", 0)
    np.testing.assert_array_equal(oracle.model.encoder.weight.detach().numpy(), t["drive_weights"])
    clean = data.teacher_rates_hz
    bins = rate_bins(clean.max(), 0.25)
    got = evaluate_predictor(oracle, clean, 36, 60, 5, bins)["one_step"]
    mean = evaluate_predictor(MeanBaseline.fit(clean, 36), clean, 36, 60, 5, bins)["one_step"]
    one = TeacherOracle.load(folder, data, "true", 0, replicas=1)
    single = evaluate_predictor(one, clean, 36, 60, 5, bins)["one_step"]
    # the mean of 8 copies beats one noisy sample: with no drive the activity is mostly
    # spiking noise around a fixed point, which one sample adds once more
    assert got["mse"] < 0.7 * single["mse"] and got["mse"] < 1.5 * mean["mse"]
    shuffled = TeacherOracle.load(folder, data, "shuffled", 0)
    assert not np.allclose(
        shuffled.predict(clean, 36, 60, None), oracle.predict(clean, 36, 60, None)
    )


def test_student_cell_passes_the_encoder_and_rank_to_the_agent(monkeypatch, tmp_path):
    """The sweep keys ``encoder`` and ``n_rank`` reach the agent's flags; without them the
    agent's defaults (free encoder, rank 20) apply."""
    import flyenv.evaluation.whole_brain_baselines as wb

    calls: list[list[str]] = []

    class FakeAgent:
        @staticmethod
        def main(argv):
            calls.append(list(argv))
            scores = {"mse": 1.0}
            return {
                "main_predictor": "spiking net alone",
                "teacher_forced_one_step": {"spiking net alone": scores},
                "closed_loop": {"spiking net alone": scores},
                "recovery": {"drive_weights_r": 0.5},
            }

    monkeypatch.setattr(wb, "_load_agent", lambda: FakeAgent)
    config = {"encoder": "home_tied", "n_rank": 0, "connectome": "shuffled"}
    out = wb._student_metrics(config, 3, tmp_path, tmp_path / "data", 10, 0.6)
    argv = calls[-1]
    assert argv[argv.index("--encoder") + 1] == "home_tied"
    assert argv[argv.index("--n_rank") + 1] == "0"
    assert argv[argv.index("--connectome") + 1] == "shuffled"
    assert out["recovery"] == {"drive_weights_r": 0.5}
    wb._student_metrics({}, 3, tmp_path, tmp_path / "data", 10, 0.6)
    assert "--n_rank" not in calls[-1]
    assert calls[-1][calls[-1].index("--encoder") + 1] == "free"
    assert calls[-1][calls[-1].index("--train_replicas") + 1] == "1"
    assert calls[-1][calls[-1].index("--init") + 1] == "default"
