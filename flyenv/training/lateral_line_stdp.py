"""STDP training and test of one lateral-line network (LL -> MON -> TS) for one seed.

``run_seed`` is the body of ``agents/lateral_line_stdp.py`` (the program: CLI, presets,
run layout, figures) and of the sweep cell ``flyenv.evaluation.lateral_line_cell``:
training trials with MON->TS (and optionally LL->MON) STDP on, weight statistics and the
PV map quality at checkpoints, a resumable ``mid_checkpoint.npz``, then the frozen-STDP
test sweeps and their map quality (docs/research_systems.md, lateral line).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from flyenv.brains.lateral_line.network import LateralLineNetwork, SpikeRecord
from flyenv.brains.lateral_line.params import NetworkParams
from flyenv.io import atomic_write
from flyenv.metrics import pv_map_quality
from flyenv.metrics.topography import topography_summary
from flyenv.stimuli.dipole import (
    ContinuousSweep,
    ContinuousSweepConfig,
    DipoleStimulusConfig,
    TrainingSweep,
    TrainingSweepConfig,
)

TAIL_TRIALS = 2  # training trials kept in full (rasters, train->test transition figure)


# --------------------------------------------------------------------------- stimulus
def stimulus_config(p: NetworkParams) -> DipoleStimulusConfig:
    return DipoleStimulusConfig(line_length_cm=p.ll_body_length_cm, n_neuromasts=p.n_ll)


def training_sweep(p: NetworkParams, total_steps: int, seed: int) -> TrainingSweep:
    cfg = TrainingSweepConfig(
        dt_s=p.dt_s,
        hold_s=p.training_position_hold_s,
        speed_cm_s=p.speed_cm_s,
        ordered_sweeps=p.training_ordered_sweeps,
        bidirectional=p.training_bidirectional,
        fixed_distance=p.training_fixed_distance,
        distance_min_cm=p.training_distance_min_cm,
        distance_max_cm=p.training_distance_max_cm,
        noise_scale_early=p.training_noise_scale_early,
        noise_scale_late=p.training_noise_scale_late,
        noise_switch_fraction=p.training_noise_switch_fraction,
        margin_cm=p.training_margin_cm,
    )
    return TrainingSweep(stimulus_config(p), cfg, total_steps, seed)


def test_stimulus(p: NetworkParams, sweep: int = 0) -> dict[str, np.ndarray]:
    """One whole test sweep (about 1 s: small), continuous or held snapshots; ``sweep``
    selects its noise (sweep 0 is the original's single test sweep)."""
    cfg = ContinuousSweepConfig(
        dt_s=p.dt_s,
        speed_cm_s=p.speed_cm_s,
        distance_cm=p.distance_cm,
        direction=p.direction,
        path_cm=p.test_path_cm,
        extra_noise_hz=p.test_ll_noise_hz,
    )
    noise_seed = p.seed + 999 + 7919 * sweep
    cs = ContinuousSweep(stimulus_config(p), cfg, seed=noise_seed)
    if not p.test_using_held_snapshots:
        return next(cs.chunks(cs.total_steps))
    held = training_sweep(p, cs.total_steps, noise_seed)
    return held.window(0, cs.total_steps)


# ---------------------------------------------------------------------------- helpers
def spike_counts(t: np.ndarray, i: np.ndarray, n_steps: int, n_cells: int) -> np.ndarray:
    counts = np.zeros((n_steps, n_cells), np.float32)
    np.add.at(counts, (t, i), 1.0)
    return counts


def atomic_savez(path: Path, **arrays: Any) -> None:
    atomic_write(path, lambda tmp: np.savez_compressed(tmp, **arrays))


def stabilization_time_s(t_s: np.ndarray, w_mean: np.ndarray) -> float | None:
    """First checkpoint after which the mean weight moved < 0.5% for 4 checkpoints."""
    if t_s.size < 6:
        return None
    rel = np.abs(np.diff(w_mean)) / max(abs(float(w_mean[-1])), 1e-12)
    for k in range(3, rel.size):
        if np.all(rel[k - 3 : k + 1] < 0.005):
            return float(t_s[k + 1])
    return None


SERIES = (
    "checkpoint_t_s",
    "w_mean_series",
    "w_std_series",
    "tracked_weight_series",
    "w_mean_abs_delta_series",
    "w_frac_delta_gt_1e3_series",
    "ts_ckpt_rate_series_hz",
    "pv_ckpt_t_s",
    "pv_sigma_theta_series",
    "pv_delta_trial_series",
    "trial_mon_rate_hz",
    "trial_ts_rate_hz",
)


# --------------------------------------------------------------------------- one seed
def run_seed(
    p: NetworkParams,
    checkpoint_path: Path | None = None,
    resume: dict[str, np.ndarray] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train for ``p.n_training_trials`` trials, then test; returns everything to plot."""
    wall0 = time.perf_counter()
    net = LateralLineNetwork(p)
    trial_steps = int(round(p.trial_duration_s / p.dt_s))
    n_trials = p.n_training_trials
    sweep = training_sweep(p, n_trials * trial_steps, p.seed)
    w_before = net.mon_ts_weights()
    topo_before = topography_summary(net.mon_ts_dense())
    tracked = np.random.default_rng(p.seed + 777).choice(
        w_before.size, size=min(24, w_before.size), replace=False
    )
    s: dict[str, list] = {k: [] for k in SERIES}
    s["checkpoint_t_s"].append(0.0)
    s["w_mean_series"].append(float(w_before.mean()))
    s["w_std_series"].append(float(w_before.std()))
    s["tracked_weight_series"].append(w_before[tracked])
    s["w_mean_abs_delta_series"].append(0.0)
    s["w_frac_delta_gt_1e3_series"].append(0.0)
    k_start = 0
    if resume is not None:
        k_start = int(resume["trial_idx"]) + 1
        net.load_state_dict({k[6:]: v for k, v in resume.items() if k.startswith("state_")})
        w_before = resume["w_before"]
        for k in SERIES:
            s[k] = list(resume[k])
        dense0 = np.zeros((p.n_mon, p.n_ts))
        np.add.at(dense0, (net.conn.mon_ts_i, net.conn.mon_ts_j), np.asarray(w_before).ravel())
        topo_before = topography_summary(dense0)
    # Window since the last checkpoint: TS spikes and stimulus x, for the training PV.
    win_ts_t: list[np.ndarray] = []
    win_ts_i: list[np.ndarray] = []
    win_x: list[np.ndarray] = []
    tail: list[tuple[SpikeRecord, dict[str, np.ndarray]]] = []
    every = max(1, p.checkpoint_trials)
    bar = tqdm(
        range(k_start, n_trials), desc=f"seed {p.seed} train", disable=not progress, unit="trial"
    )
    for k in bar:
        if p.ts_lateral_exc_sigma_start is not None:
            net.set_ts_lateral_exc(*p.ts_lateral_exc_at(k))
        chunk = sweep.window(k * trial_steps, trial_steps)
        rec = net.run(chunk["rates_hz"], plastic=True)
        s["trial_mon_rate_hz"].append(rec.mon_t.size / (p.n_mon * trial_steps * p.dt_s))
        s["trial_ts_rate_hz"].append(rec.ts_t.size / (p.n_ts * trial_steps * p.dt_s))
        off = sum(x.size for x in win_x)
        win_ts_t.append(rec.ts_t + off)
        win_ts_i.append(rec.ts_i)
        win_x.append(chunk["x_cm"])
        if k >= n_trials - TAIL_TRIALS:
            tail.append((rec, chunk))
        if (k + 1) % every == 0 or k + 1 == n_trials:
            t_cur = (k + 1) * p.trial_duration_s
            x_win = np.concatenate(win_x)
            ts_t, ts_i = np.concatenate(win_ts_t), np.concatenate(win_ts_i)
            s["ts_ckpt_rate_series_hz"].append(ts_t.size / (p.n_ts * x_win.size * p.dt_s))
            if len(s["ts_ckpt_rate_series_hz"]) % max(1, p.pv_eval_every_checkpoints) == 0:
                q = pv_map_quality(
                    spike_counts(ts_t, ts_i, x_win.size, p.n_ts),
                    x_win,
                    p.dt_s,
                    n_pos_bins=min(100, p.n_ts),
                )
                s["pv_ckpt_t_s"].append(t_cur)
                s["pv_sigma_theta_series"].append(q.sigma_theta)
                s["pv_delta_trial_series"].append(q.delta_trial)
                bar.set_postfix(
                    sigma_theta=f"{q.sigma_theta:.3f}", ts_hz=f"{s['trial_ts_rate_hz'][-1]:.2f}"
                )
            win_ts_t, win_ts_i, win_x = [], [], []
            wk = net.mon_ts_weights()
            dwk = np.abs(wk - w_before)
            s["checkpoint_t_s"].append(t_cur)
            s["w_mean_series"].append(float(wk.mean()))
            s["w_std_series"].append(float(wk.std()))
            s["tracked_weight_series"].append(wk[tracked])
            s["w_mean_abs_delta_series"].append(float(dwk.mean()))
            s["w_frac_delta_gt_1e3_series"].append(float(np.mean(dwk > 1e-3)))
            n_ck = len(s["checkpoint_t_s"]) - 1
            if (
                checkpoint_path is not None
                and n_ck % max(1, p.checkpoint_save_every_n_checkpoints) == 0
            ):
                atomic_savez(
                    checkpoint_path,
                    trial_idx=np.array(k),
                    seed=np.array(p.seed),
                    w_before=w_before,
                    mon_ts_w=wk,
                    **{k2: np.asarray(v) for k2, v in s.items()},
                    **{"state_" + k2: v for k2, v in net.state_dict().items()},
                )
        net.ts_threshold_homeostasis(np.bincount(rec.ts_i, minlength=p.n_ts), trial_steps * p.dt_s)
        if (k + 1) % max(1, p.mon_ts_homeo_every_trials) == 0 or (
            (k + 1) % max(1, p.ll_mon_homeo_every_trials) == 0
        ):
            net.homeostasis()
    train_wall_s = time.perf_counter() - wall0
    if p.ts_lateral_exc_sigma_start is not None:  # test with the final neighbourhood
        net.set_ts_lateral_exc(*p.ts_lateral_exc_at(n_trials))

    # The map is read after training (before any test-phase plasticity).
    topo_after = topography_summary(net.mon_ts_dense())
    # p.n_test_sweeps test sweeps, one after another (network state carries over, as in a
    # longer test); the figures show the first.
    ts_counts, ll_counts, xs, sweep_ids = [], [], [], []
    test, test_rec = None, None
    for j in range(p.n_test_sweeps):
        tj = test_stimulus(p, j)
        rj = net.run(tj["rates_hz"], plastic=bool(p.keep_mon_ts_stdp_during_test))
        nj = tj["x_cm"].size
        ts_counts.append(spike_counts(rj.ts_t, rj.ts_i, nj, p.n_ts))
        ll_counts.append(spike_counts(rj.ll_t, rj.ll_i, nj, p.n_ll))
        xs.append(tj["x_cm"])
        sweep_ids.append(np.full(nj, j, np.int64))
        if j == 0:
            test, test_rec = tj, rj
    n_test = test["x_cm"].size
    w_after = net.mon_ts_weights()
    x_all, sw_all = np.concatenate(xs), np.concatenate(sweep_ids)
    pv_kw = {
        "n_pos_bins": min(100, p.n_ts),
        "eval_x_min_cm": p.eval_x_min_cm,
        "eval_x_max_cm": p.eval_x_max_cm,
        "sweep_index": sw_all if p.n_test_sweeps > 1 else None,
    }
    ts_all = np.concatenate(ts_counts)
    q = pv_map_quality(ts_all, x_all, p.dt_s, **pv_kw)
    # The same decoder reading the ring the other way round (cell k at -2 pi k / n, up to a
    # constant rotation): how a mirrored map would decode if the readout knew its direction.
    q_mirror = pv_map_quality(ts_all[:, ::-1], x_all, p.dt_s, **pv_kw)
    pv_kw["n_pos_bins"] = min(100, p.n_ll)
    q_ll = pv_map_quality(np.concatenate(ll_counts), x_all, p.dt_s, **pv_kw)
    dw = np.abs(w_after - w_before)
    series = {k: np.asarray(v) for k, v in s.items()}
    return {
        "params": p,
        "net": net,
        "w_before": w_before,
        "w_after": w_after,
        "ll_mon_w_mV": net.ll_mon_weights_mV(),
        "tail": tail,
        "test": test,
        "test_rec": test_rec,
        "pv": q,
        "pv_ll": q_ll,
        "pv_sigma_theta": q.sigma_theta,
        "pv_delta_trial": q.delta_trial,
        "pv_valid_fraction": q.valid_fraction,
        "pv_sigma_theta_mirrored": q_mirror.sigma_theta,
        "ts_spikes_during_test_window": int(sum(c.sum() for c in ts_counts)),
        "n_test_sweeps": int(p.n_test_sweeps),
        "topography_before": topo_before,
        "topography_after": topo_after,
        "train_duration_s": n_trials * p.trial_duration_s,
        "test_duration_s": n_test * p.dt_s,
        "w_mean_abs_delta_final": float(dw.mean()),
        "w_frac_delta_gt_1e3_final": float(np.mean(dw > 1e-3)),
        "w_frac_at_wmax_final": float(np.mean(np.isclose(w_after, p.mon_ts_wmax))),
        "w_frac_at_zero_final": float(np.mean(np.isclose(w_after, 0.0))),
        "stabilization_time_s": stabilization_time_s(
            series["checkpoint_t_s"], series["w_mean_series"]
        ),
        "train_wall_s": train_wall_s,
        "wall_s": time.perf_counter() - wall0,
        **series,
    }
