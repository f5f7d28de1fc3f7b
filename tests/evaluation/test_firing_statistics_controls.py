# moved from tests/test_firing_statistics_controls.py
"""The firing-statistics control cells (flyenv/evaluation/firing_statistics_cell.py):
metrics returned, the CV-weight-0 ablation really drops the CV term, the free-running
evaluation really runs without teacher forcing, and (slow) training beats the untrained
start free-running."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from flyenv.brains.ei_assembly.network import EIAssemblyConfig, EIAssemblyNetwork
from flyenv.evaluation.firing_statistics_cell import (
    START_PERTURBATION,
    FreeRunConfig,
    draw_teacher,
    free_running_comparison,
    statistics_cell,
    teacher_cell,
)
from flyenv.metrics.firing_statistics import LossWeights, Targets
from flyenv.training.firing_statistics_trainer import FiringStatisticsTrainer, TrainConfig

SMALL = {"n_neurons": 100, "n_assemblies": 4, "n_inputs": 40}
FAST = {**SMALL, "batch_size": 2, "epoch_ms": 200.0, "chunk_ms": 100.0, "warmup_ms": 50.0}


def test_statistics_cell_returns_metrics(tmp_path):
    out = statistics_cell(
        {**FAST, "epochs": 2, "accumulation_interval": 1, "cv_weight": 0.0, "eval_ms": 200.0},
        0,
        tmp_path,
    )
    for k in ("rate_E_hz", "rate_I_hz", "cv_mean", "cv_abs_error", "silent_fraction"):
        assert isinstance(out[k], float)
    assert set(out["loss"]) >= {"firing_rate", "cv", "silent_penalty", "membrane_variance"}
    assert out["cv_weight"] == 0.0 and out["epochs"] == 2
    assert (tmp_path / "results.json").exists()


def test_statistics_cell_untrained_start(tmp_path):
    out = statistics_cell({**FAST, "epochs": 0, "eval_ms": 200.0}, 0, tmp_path)
    assert out["epochs"] == 0
    assert math.isfinite(out["loss_intact"])


def _loss_and_grad(cv_weight: float, cv_target: float) -> tuple[float, torch.Tensor]:
    """Loss and pathway-scale gradient of one chunk, same net, state and inputs."""
    cfg = TrainConfig(
        epochs=1,
        accumulation_interval=1,
        checkpoint_interval=1,
        batch_size=2,
        epoch_ms=200.0,
        chunk_ms=200.0,
        warmup_ms=50.0,
        network=replace(EIAssemblyConfig(**SMALL), weight_mode="pathway"),
        weights=LossWeights(cv=cv_weight),
        targets=Targets(cv=cv_target),
    )
    trainer = FiringStatisticsTrainer(cfg)
    rec = trainer.run_epoch()
    return rec.loss, trainer.net.log_pathway_scale.grad.clone()


def test_cv_weight_zero_removes_cv_term():
    # with weight 0, moving the CV target far must change neither loss nor gradient ...
    l_a, g_a = _loss_and_grad(0.0, 1.0)
    l_b, g_b = _loss_and_grad(0.0, 3.0)
    assert l_a == pytest.approx(l_b, abs=0.0)
    assert torch.equal(g_a, g_b)
    # ... while with the intact weight it changes both (the test would be vacuous otherwise)
    l_c, g_c = _loss_and_grad(0.5, 1.0)
    l_d, g_d = _loss_and_grad(0.5, 3.0)
    assert l_c != l_d
    # the rate terms dominate the gradient (~1e4), the CV term's share is small but real
    assert (g_c - g_d).abs().max() > 1e-3


def _nets(student_scales):
    cfg = replace(EIAssemblyConfig(**SMALL), weight_mode="pathway")
    teacher_scales, _ = draw_teacher(3)
    teacher = EIAssemblyNetwork(replace(cfg, init_pathway_scales=teacher_scales))
    student = EIAssemblyNetwork(replace(cfg, init_pathway_scales=student_scales or teacher_scales))
    return teacher, student, teacher_scales


def test_free_running_student_equal_to_teacher_reproduces_it_exactly():
    teacher, student, _ = _nets(None)
    fr = free_running_comparison(
        teacher, student, FreeRunConfig(300.0, 50.0, 2), seed=1, same_initial_state=True
    )
    assert fr["shared"]["van_rossum_per_s"] == 0.0
    assert fr["shared"]["rate_error_rel"] == 0.0


def test_free_running_uses_no_teacher_forcing():
    # with teacher forcing the student's recurrent input would be the teacher's spikes; a
    # free-running student with other scales must produce other spikes
    _, start = draw_teacher(3)
    teacher, student, _ = _nets(start)
    fr = free_running_comparison(
        teacher, student, FreeRunConfig(300.0, 50.0, 2), seed=1, same_initial_state=True
    )
    assert fr["shared"]["van_rossum_per_s"] > 0.0
    assert fr["shared"]["rate_error_rel"] > 0.0


def test_teachers_differ_per_seed_and_start_is_perturbed():
    t0, s0 = draw_teacher(1000)
    t1, _ = draw_teacher(1001)
    assert t0 != t1
    np.testing.assert_allclose(np.array(s0) / np.array(t0), START_PERTURBATION, rtol=1e-6)
    assert draw_teacher(1000) == (t0, s0)  # deterministic in the seed


def test_teacher_cell_returns_metrics(tmp_path):
    cfg = {**FAST, "epochs": 1, "accumulation_interval": 1, "free_run_ms": 200.0}
    out = teacher_cell({**cfg, "free_run_batch": 2, "train": False}, 5, tmp_path)
    assert out["epochs_trained"] == 0
    # untrained: the error is the fixed perturbation's
    expected = np.abs(np.array(START_PERTURBATION) - 1.0)
    np.testing.assert_allclose(list(out["scale_error"].values()), expected, rtol=1e-5)
    for part in ("shared", "fresh", "floor_shared", "floor_fresh"):
        assert {"rate_corr", "rate_error_rel", "cv_diff", "van_rossum_per_s"} <= set(
            out["free_run"][part]
        )
    assert math.isfinite(out["free_run"]["shared"]["van_rossum_per_s"])


@pytest.mark.slow
def test_training_beats_untrained_start_free_running(tmp_path):
    # headline claim on a small config (not the reporting seeds)
    cfg = {
        **SMALL,
        "epochs": 30,
        "accumulation_interval": 1,
        "batch_size": 4,
        "epoch_ms": 500.0,
        "chunk_ms": 500.0,
        "warmup_ms": 200.0,
        "learning_rate": 0.05,
        "lr_decay": 0.97,
        "free_run_ms": 1000.0,
        "free_run_batch": 4,
    }
    trained = teacher_cell({**cfg, "train": True}, 1, tmp_path / "t")
    start = teacher_cell({**cfg, "train": False}, 1, tmp_path / "u")
    assert trained["scale_error_mean"] < 0.5 * start["scale_error_mean"]
    a, b = trained["free_run"]["shared"], start["free_run"]["shared"]
    assert a["rate_error_rel"] < b["rate_error_rel"]
    assert a["van_rossum_per_s"] < b["van_rossum_per_s"]
