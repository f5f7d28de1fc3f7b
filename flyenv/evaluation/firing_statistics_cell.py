"""Sweep cells for the firing-statistics controls (``flyenv sweep``; docs/results/firing_statistics.md).

``statistics_cell(config, seed, run_dir)``: one statistics-mode training run
(:class:`FiringStatisticsTrainer`) and an evaluation of the trained net on its own random
stream. ``config["cv_weight"]`` sets the CV loss weight (0 = the ablation of the CV term);
``epochs = 0`` evaluates the untrained network (the start every row shares).

``teacher_cell(config, seed, run_dir)``: one teacher-student run with a teacher drawn from
the seed (:func:`draw_teacher`), trained with teacher forcing (``train = true``) or left at
its start (``train = false``: the control), then evaluated **free-running** (no teacher
forcing; :func:`free_running_comparison`).

Teacher distribution (documented, drawn by ``numpy.random.default_rng(seed)``): wiring seed =
``seed``; teacher pathway scales = ``TEACHER_BASE_SCALES`` x exp(U(-0.25, 0.25)) per pathway
(independent, log-uniform, +-28 %); student start = teacher x ``START_PERTURBATION`` (fixed,
the one of scenarios/firing_statistics_teacher.toml). So every seed is another teacher.
"""

from __future__ import annotations

import json
import pathlib
import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from flyenv.brains.ei_assembly.network import PATHWAYS, EIAssemblyConfig, EIAssemblyNetwork
from flyenv.metrics.firing_statistics import (
    NO_SPIKE,
    LossWeights,
    RunningStats,
    Targets,
    van_rossum_distance,
)
from flyenv.training.firing_statistics_trainer import FiringStatisticsTrainer, TrainConfig

# E->E E->I I->E I->I in->E in->I; the teacher of scenarios/firing_statistics_teacher.toml
TEACHER_BASE_SCALES = (0.6, 0.6, 1.5, 1.5, 0.6, 0.6)
TEACHER_LOG_HALF_WIDTH = 0.25
START_PERTURBATION = (1.3, 0.75, 0.8, 1.25, 0.8, 1.3)

_TRAIN_KEYS = (
    "epochs",
    "accumulation_interval",
    "batch_size",
    "epoch_ms",
    "chunk_ms",
    "warmup_ms",
    "learning_rate",
    "lr_decay",
)
_NET_KEYS = ("n_neurons", "n_assemblies", "n_inputs")


def draw_teacher(seed: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(teacher pathway scales, student start scales) of ``seed`` (module docstring)."""
    rng = np.random.default_rng(seed)
    f = np.exp(rng.uniform(-TEACHER_LOG_HALF_WIDTH, TEACHER_LOG_HALF_WIDTH, 6))
    teacher = tuple(float(b * x) for b, x in zip(TEACHER_BASE_SCALES, f, strict=True))
    start = tuple(float(t * p) for t, p in zip(teacher, START_PERTURBATION, strict=True))
    return teacher, start


def _train_config(config: dict[str, Any], seed: int, mode: str, **network: Any) -> TrainConfig:
    """TrainConfig from a sweep row: trainer keys at top level, network size overrides."""
    base = TrainConfig()
    kw = {k: type(getattr(base, k))(config[k]) for k in _TRAIN_KEYS if k in config}
    kw.setdefault("checkpoint_interval", kw.get("accumulation_interval", 2))
    net = replace(
        EIAssemblyConfig(),
        seed=int(seed),
        **{k: int(config[k]) for k in _NET_KEYS if k in config},
        **network,
    )
    return TrainConfig(seed=int(seed), mode=mode, network=net, **kw)


def _write(run_dir: pathlib.Path, payload: dict[str, Any]) -> None:
    run_dir = pathlib.Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "results.json").write_text(json.dumps(payload, indent=2))


# ---------------------------------------------------------------------- statistics mode
def statistics_cell(config: dict[str, Any], seed: int, run_dir: pathlib.Path) -> dict[str, Any]:
    """Train to the target statistics with CV weight ``config["cv_weight"]`` (default
    0.5), evaluate for ``eval_ms`` x ``batch_size`` trials. The reported ``loss_intact`` is
    the loss with the *intact* weights (CV 0.5), so rows are comparable."""
    torch.set_num_threads(1)
    t_start = time.time()
    n_epochs = int(config.get("epochs", TrainConfig().epochs))
    # TrainConfig wants epochs >= 1; epochs = 0 only skips the training loop below
    cfg = _train_config({**config, "epochs": max(1, n_epochs)}, seed, "statistics")
    cfg.weights = LossWeights(cv=float(config.get("cv_weight", LossWeights().cv)))
    trainer = FiringStatisticsTrainer(cfg)
    for _ in range(n_epochs):
        trainer.run_epoch()
    ev = trainer.evaluate(float(config.get("eval_ms", 4000.0)), seed=10_000 + int(seed))
    terms = ev["loss_terms"]
    intact = LossWeights()
    out = {
        "rate_E_hz": ev["rate_E_hz"],
        "rate_I_hz": ev["rate_I_hz"],
        "cv_mean": ev["cv_mean"],
        "cv_E": ev["cv_E"],
        "cv_I": ev["cv_I"],
        "cv_abs_error": abs(ev["cv_mean"] - cfg.targets.cv),
        "silent_fraction": ev["silent_fraction"],
        "loss": {k: float(v) for k, v in terms.items()},
        "loss_intact": float(sum(getattr(intact, k) * v for k, v in terms.items())),
        "cv_weight": cfg.weights.cv,
        "epochs": trainer.epoch,
        "wall_s": time.time() - t_start,
    }
    _write(run_dir, {**out, "evaluation": ev, "history": trainer.history, "config": config})
    return out


# ---------------------------------------------------------------------- teacher mode
@dataclass
class FreeRunConfig:
    duration_ms: float = 2000.0
    warmup_ms: float = 300.0
    batch: int = 8
    van_rossum_tau_ms: float = 20.0


def free_run(
    net: EIAssemblyNetwork, inputs: torch.Tensor, state, chunk_steps: int = 500
) -> torch.Tensor:
    """Spikes (T, n, B) of ``net`` driven only by ``inputs`` and its own recurrent spikes
    (``presyn=None``: no teacher forcing), from ``state``."""
    out = []
    with torch.no_grad():
        for c in range(0, inputs.shape[0], chunk_steps):
            act, state = net.run(inputs[c : c + chunk_steps], state, record_v=False)
            out.append(act.spikes)
    return torch.cat(out)


def _warm_state(net: EIAssemblyNetwork, cfg: FreeRunConfig, gen: torch.Generator):
    """A state reached from rest by ``warmup_ms`` of inputs from ``gen``."""
    state = net.init_state(cfg.batch)
    steps = int(round(cfg.warmup_ms / net.dt_ms))
    if steps > 0:
        with torch.no_grad():
            _, state = net.run(net.sample_inputs(steps, cfg.batch, gen), state, record_v=False)
    return state


def spike_statistics(spikes: torch.Tensor, dt_ms: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-neuron rate (Hz, pooled over trials) and CV of ISIs (NaN: < 2 intervals)."""
    n_t, n, b = spikes.shape
    stats = RunningStats(n, b, dt_ms)
    stats.add(spikes, None, torch.full((n, b), NO_SPIKE), 0)
    cv, n_isi = stats.cv()
    return stats.rates_hz(), torch.where(n_isi >= 2, cv, torch.tensor(float("nan")))


def compare_spikes(
    a: torch.Tensor, b: torch.Tensor, dt_ms: float, tau_ms: float
) -> dict[str, float]:
    """Spike statistics of ``a`` (e.g. student) against ``b`` (teacher), same shape."""
    ra, cva = spike_statistics(a, dt_ms)
    rb, cvb = spike_statistics(b, dt_ms)
    corr = float(np.corrcoef(ra.numpy(), rb.numpy())[0, 1]) if ra.std() > 0 else float("nan")
    duration_s = a.shape[0] * dt_ms * 1e-3
    return {
        "rate_corr": corr,
        "rate_error_rel": float((ra - rb).abs().mean() / rb.mean().clamp_min(1e-9)),
        "cv_diff": float(abs(np.nanmean(cva.numpy()) - np.nanmean(cvb.numpy()))),
        # D^2 per neuron and trial, per second of activity (D^2 grows with duration)
        "van_rossum_per_s": float(van_rossum_distance(a, b, tau_ms, dt_ms)) / duration_s,
        "rate_hz": float(ra.mean()),
        "reference_rate_hz": float(rb.mean()),
    }


def free_running_comparison(
    teacher: EIAssemblyNetwork,
    student: EIAssemblyNetwork,
    cfg: FreeRunConfig,
    seed: int,
    same_initial_state: bool = False,
) -> dict[str, dict[str, float]]:
    """Teacher and student free-running (no teacher forcing) on new input spikes.

    - ``shared``: both on the same input spikes, from independent states (each warmed up
      on its own input draw; ``same_initial_state`` = both from the teacher's state);
    - ``fresh``: the student on an independent input draw (statistics only: spike-for-spike
      numbers are at chance level by construction);
    - ``floor_shared`` / ``floor_fresh``: the teacher against itself from an independent
      state, on the shared / on an independent input draw: what a perfect student scores
      (state and input noise alone)."""
    g = [torch.Generator().manual_seed(int(seed) * 7 + i) for i in range(7)]
    steps = int(round(cfg.duration_ms / teacher.dt_ms))
    inputs = teacher.sample_inputs(steps, cfg.batch, g[0])
    s_teacher = _warm_state(teacher, cfg, g[1])
    s_student = s_teacher if same_initial_state else _warm_state(student, cfg, g[2])
    y_teacher = free_run(teacher, inputs, s_teacher)
    y_student = free_run(student, inputs, s_student)
    tau, dt = cfg.van_rossum_tau_ms, teacher.dt_ms
    out = {"shared": compare_spikes(y_student, y_teacher, dt, tau)}
    fresh = free_run(student, teacher.sample_inputs(steps, cfg.batch, g[3]), s_student)
    out["fresh"] = compare_spikes(fresh, y_teacher, dt, tau)
    s_floor = _warm_state(teacher, cfg, g[4])
    out["floor_shared"] = compare_spikes(free_run(teacher, inputs, s_floor), y_teacher, dt, tau)
    y_floor = free_run(teacher, teacher.sample_inputs(steps, cfg.batch, g[5]), s_floor)
    out["floor_fresh"] = compare_spikes(y_floor, y_teacher, dt, tau)
    return out


def teacher_cell(config: dict[str, Any], seed: int, run_dir: pathlib.Path) -> dict[str, Any]:
    """Teacher of ``seed``; student trained with teacher forcing for ``epochs`` if
    ``train`` (default true), else left at its start; then free-running comparison."""
    torch.set_num_threads(1)
    t_start = time.time()
    teacher_scales, start = draw_teacher(seed)
    cfg = _train_config(config, seed, "teacher", weight_mode="pathway", init_pathway_scales=start)
    cfg.teacher_scales = teacher_scales
    cfg.teacher_forcing = True
    cfg.weights = LossWeights(van_rossum=float(config.get("van_rossum_weight", 1.0)))
    cfg.targets = Targets()
    trainer = FiringStatisticsTrainer(cfg)
    train = bool(config.get("train", True))
    if train:
        for _ in range(cfg.epochs):
            trainer.run_epoch()
    err = np.array(trainer.scale_errors())
    fr_cfg = FreeRunConfig(
        duration_ms=float(config.get("free_run_ms", 2000.0)),
        batch=int(config.get("free_run_batch", 8)),
    )
    fr = free_running_comparison(trainer.teacher, trainer.net, fr_cfg, seed)
    out = {
        "scale_error_mean": float(err.mean()),
        "scale_error_max": float(err.max()),
        "scale_error": dict(zip(PATHWAYS, err.tolist(), strict=True)),
        "free_run": fr,
        "epochs_trained": trainer.epoch,
        "wall_s": time.time() - t_start,
    }
    _write(
        run_dir,
        {
            **out,
            "teacher_scales": teacher_scales,
            "start_scales": start,
            "final_scales": trainer.net.pathway_scales.detach().tolist(),
            "history": trainer.history,
            "config": config,
        },
    )
    return out
