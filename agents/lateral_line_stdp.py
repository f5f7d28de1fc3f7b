"""STDP baseline agent for the fish lateral line (LL -> MON -> TS somatotopic map).

A readable, single-file program (CleanRL style) with the CLI, presets and run layout of
the original Brian2 script (../shared/seeds/lateral_line.md):

    python agents/lateral_line_stdp.py --mode ll_fast --run-name smoke
    python agents/lateral_line_stdp.py --mode ll_thesis --multi-seed 3 --with-control

``--with-control`` also runs, on the same seeds, wiring and initial weights, a control
with no plasticity at all and one with homeostatic scaling only.

Outputs under Runs/<name>/: params.json, run_summary.json, figures/*.png,
artifacts/<save-tag>_seed_<seed>.npz + _params.json (and mid_checkpoint.npz, from which
``--resume-from Runs/<name>`` continues a killed run exactly).

Training: the sphere is held 50 ms at each neuromast position, sweeping forward then
back; MON->TS (and optionally LL->MON) STDP is on. Test: STDP frozen, the sphere crosses
the line once at constant speed with OU noise; the population vector of TS gives the
map quality (sigma_theta, delta_trial, valid_fraction; SPEC section 9).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere

from flyenv.brains.lateral_line.network import LateralLineNetwork, SpikeRecord  # noqa: E402
from flyenv.brains.lateral_line.params import MODES, NetworkParams, apply_model_mode  # noqa: E402
from flyenv.metrics import pv_map_quality  # noqa: E402
from flyenv.metrics.topography import topography_summary  # noqa: E402
from flyenv.stimuli.dipole import (  # noqa: E402
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
    )
    return TrainingSweep(stimulus_config(p), cfg, total_steps, seed)


def test_stimulus(p: NetworkParams, sweep: int = 0) -> dict[str, np.ndarray]:
    """One whole test sweep (about 1 s: small), continuous or held snapshots; ``sweep``
    selects its noise (sweep 0 is the seed's single test sweep)."""
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
    tmp = path.with_name("_tmp_" + path.name)  # ends in .npz so numpy keeps the name
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)


def atomic_write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name("_tmp_" + path.name)
    tmp.write_text(json.dumps(obj, indent=2), encoding="utf-8")
    os.replace(tmp, path)


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
        if (k + 1) % max(1, p.mon_ts_homeo_every_trials) == 0 or (
            (k + 1) % max(1, p.ll_mon_homeo_every_trials) == 0
        ):
            net.homeostasis()
    train_wall_s = time.perf_counter() - wall0

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
    q = pv_map_quality(np.concatenate(ts_counts), x_all, p.dt_s, **pv_kw)
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


def save_learning_artifacts(
    result: dict[str, Any], out_dir: Path, tag: str, mode: str
) -> tuple[Path, Path]:
    """Weights + connectivity (same arrays as the original) and a small params sidecar."""
    out_dir.mkdir(parents=True, exist_ok=True)
    net: LateralLineNetwork = result["net"]
    weights_path = out_dir / f"{tag}.npz"
    atomic_savez(
        weights_path,
        mon_ts_w=result["w_after"],
        mon_ts_i=net.conn.mon_ts_i,
        mon_ts_j=net.conn.mon_ts_j,
        ll_mon_i=net.conn.ll_mon_i,
        ll_mon_j=net.conn.ll_mon_j,
        ll_mon_w_mV=result["ll_mon_w_mV"],
    )
    p: NetworkParams = result["params"]
    params_path = out_dir / f"{tag}_params.json"
    keys = (
        "n_ll n_mon n_ts speed_cm_s distance_cm direction training_noise_scale_early "
        "training_noise_scale_late mon_ts_apre mon_ts_apost mon_ts_wmax"
    ).split()
    atomic_write_json(params_path, {"mode": mode, **{k: getattr(p, k) for k in keys}})
    return weights_path, params_path


def seed_summary(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "seed": int(r["params"].seed),
        "ts_spikes_during_test_window": int(r["ts_spikes_during_test_window"]),
        "pv_map_quality": {
            "sigma_theta_rad": float(r["pv_sigma_theta"]),
            "delta_trial_rad": float(r["pv_delta_trial"]),
            "valid_fraction": float(r["pv_valid_fraction"]),
        },
        "n_test_sweeps": int(r["n_test_sweeps"]),
        "mon_ts_topography": {
            "before_training": r["topography_before"],
            "after_training": r["topography_after"],
        },
    }


# ------------------------------------------------------------------------------- CLI
# (flag, NetworkParams field, type, transform) for every scalar override of the original.
_POS = lambda x: max(1, int(x))  # noqa: E731
_NN = lambda x: float(max(0.0, x))  # noqa: E731


def _POSF(x: float) -> float:
    if not x > 0:
        raise ValueError(f"expected a value > 0 (ms or TS indices), got {x}")
    return float(x)


_P01 = lambda x: float(np.clip(x, 0.0, 1.0))  # noqa: E731
OVERRIDES: list[tuple[str, str, type, Any, str]] = [
    ("--n-ll", "n_ll", int, _POS, "Number of LL afferents (one per neuromast)."),
    ("--n-mon", "n_mon", int, _POS, "Number of MON neurons."),
    ("--n-ts", "n_ts", int, _POS, "Number of TS neurons."),
    ("--dt-s", "dt_s", float, lambda x: float(max(1e-6, x)), "Integration time step (s)."),
    (
        "--trial-duration-s",
        "trial_duration_s",
        float,
        lambda x: float(max(1e-3, x)),
        "Duration of a training trial (s).",
    ),
    (
        "--n-test-sweeps",
        "n_test_sweeps",
        int,
        _POS,
        "Test sweeps after training (delta_trial is their across-sweep spread; default 10).",
    ),
    (
        "--n-training-trials",
        "n_training_trials",
        int,
        lambda x: max(0, int(x)),
        "Number of training trials (>= 0).",
    ),
    (
        "--checkpoint-trials",
        "checkpoint_trials",
        int,
        _POS,
        "Record weight statistics every N trials.",
    ),
    (
        "--pv-eval-every-checkpoints",
        "pv_eval_every_checkpoints",
        int,
        _POS,
        "PV map quality every N checkpoints.",
    ),
    (
        "--checkpoint-save-every-n",
        "checkpoint_save_every_n_checkpoints",
        int,
        _POS,
        "Write mid_checkpoint.npz every N checkpoints.",
    ),
    (
        "--training-position-hold-s",
        "training_position_hold_s",
        float,
        lambda x: float(max(1e-4, x)),
        "Hold time per training position (s).",
    ),
    (
        "--training-noise-early",
        "training_noise_scale_early",
        float,
        _NN,
        "LL noise scale in early training.",
    ),
    (
        "--training-noise-late",
        "training_noise_scale_late",
        float,
        _NN,
        "LL noise scale in late training.",
    ),
    (
        "--training-noise-switch",
        "training_noise_switch_fraction",
        float,
        _P01,
        "Training fraction where noise switches.",
    ),
    (
        "--test-ll-noise-hz",
        "test_ll_noise_hz",
        float,
        _NN,
        "Extra Gaussian LL noise during the test (Hz SD).",
    ),
    (
        "--training-distance-min-cm",
        "training_distance_min_cm",
        float,
        _NN,
        "Min training distance (cm).",
    ),
    (
        "--training-distance-max-cm",
        "training_distance_max_cm",
        float,
        _NN,
        "Max training distance (cm).",
    ),
    ("--speed-cm-s", "speed_cm_s", float, lambda x: float(max(1e-6, x)), "Sphere speed (cm/s)."),
    ("--direction", "direction", float, float, "Test sweep direction (+1 forward, -1 backward)."),
    ("--distance-cm", "distance_cm", float, None, "Test distance Y (cm), must be > 0."),
    (
        "--ll-body-length-cm",
        "ll_body_length_cm",
        float,
        lambda x: float(max(0.1, x)),
        "Lateral line length (cm).",
    ),
    (
        "--test-path-cm",
        "test_path_cm",
        float,
        lambda x: float(max(1e-9, x)),
        "Length of the test sweep (cm).",
    ),
    ("--ll-rate-mode", "ll_rate_mode", str, str, "raw or modulation (LL drive)."),
    (
        "--ll-baseline-subtract-hz",
        "ll_rate_baseline_subtract_hz",
        float,
        _NN,
        "Extra LL baseline subtraction (Hz).",
    ),
    ("--ll-rate-gain", "ll_rate_gain", float, _NN, "Multiplicative gain on LL rates."),
    ("--vth-mv", "vth_mV", float, float, "Spike threshold (mV)."),
    ("--vreset-mv", "vreset_mV", float, float, "Reset potential (mV)."),
    ("--el-mv", "el_mV", float, float, "Leak potential (mV)."),
    ("--tau-ref-ms", "tau_ref_ms", float, _NN, "Refractory period (ms)."),
    ("--tau-m-ms", "tau_m_ms", float, lambda x: float(max(0.1, x)), "Membrane time constant (ms)."),
    ("--tau-s-ms", "tau_s_ms", float, lambda x: float(max(0.1, x)), "Synaptic time constant (ms)."),
    ("--p-ll-to-mon", "p_ll_to_mon", float, _P01, "LL->MON probability (when topography is 0)."),
    ("--ll-mon-in-degree", "ll_to_mon_in_degree", int, _POS, "LL inputs per MON neuron."),
    (
        "--ll-mon-sigma",
        "ll_to_mon_sigma",
        float,
        lambda x: float(max(1e-6, x)),
        "LL->MON topographic spread (LL indices).",
    ),
    (
        "--ll-mon-topo",
        "ll_to_mon_topography_strength",
        float,
        _NN,
        "ll_to_mon_topography_strength.",
    ),
    ("--ll-mon-w-mean-mv", "ll_mon_w_mean_mV", float, _NN, "Fixed LL->MON mean weight (mV)."),
    ("--ll-mon-w-jitter-mv", "ll_mon_w_jitter_mV", float, _NN, "Fixed LL->MON weight jitter (mV)."),
    ("--ll-mon-apre", "ll_mon_apre", float, float, "LL->MON pre trace increment."),
    ("--ll-mon-apost", "ll_mon_apost", float, float, "LL->MON post trace increment."),
    ("--ll-mon-wmax-mv", "ll_mon_wmax_mV", float, _NN, "LL->MON weight ceiling (mV)."),
    (
        "--ll-mon-w-init-mv",
        "ll_mon_w_init_mV",
        float,
        _NN,
        "Initial mean LL->MON weight (mV) with STDP.",
    ),
    (
        "--ll-mon-w-jitter-stdp-mv",
        "ll_mon_w_jitter_stdp_mV",
        float,
        _NN,
        "Initial LL->MON jitter (mV) with STDP.",
    ),
    ("--ll-mon-homeo-eta", "ll_mon_homeo_eta", float, float, "LL->MON homeostatic scaling rate."),
    (
        "--ll-mon-homeo-every-trials",
        "ll_mon_homeo_every_trials",
        int,
        _POS,
        "LL->MON homeostasis period (trials).",
    ),
    (
        "--mon-ts-topo",
        "mon_to_ts_topography_strength",
        float,
        _NN,
        "mon_to_ts_topography_strength.",
    ),
    (
        "--mon-ts-sigma",
        "mon_to_ts_sigma",
        float,
        lambda x: float(max(1e-6, x)),
        "Weak-topography spread (TS index units).",
    ),
    (
        "--mon-ts-out-degree",
        "mon_to_ts_out_degree",
        int,
        _POS,
        "MON->TS out-degree per MON neuron.",
    ),
    ("--mon-ts-apre", "mon_ts_apre", float, float, "MON->TS pre trace increment (LTP)."),
    ("--mon-ts-apost", "mon_ts_apost", float, float, "MON->TS post trace increment (LTD)."),
    ("--mon-ts-wmax", "mon_ts_wmax", float, _NN, "MON->TS weight ceiling."),
    ("--mon-ts-w-init", "mon_ts_w_init", float, _NN, "MON->TS initial mean weight."),
    ("--mon-ts-w-jitter", "mon_ts_w_jitter", float, _NN, "MON->TS initial weight jitter."),
    ("--mon-ts-homeo-eta", "mon_ts_homeo_eta", float, float, "MON->TS homeostatic scaling rate."),
    (
        "--mon-ts-homeo-every-trials",
        "mon_ts_homeo_every_trials",
        int,
        _POS,
        "MON->TS homeostasis period (trials).",
    ),
    (
        "--mon-ts-homeo-max-step",
        "mon_ts_homeo_max_step",
        float,
        _NN,
        "Largest relative change of one MON->TS homeostatic step (original 0.1).",
    ),
    (
        "--mon-ts-stdp-tau-ms",
        "mon_ts_stdp_tau_ms",
        float,
        _POSF,
        "MON->TS STDP trace time constant (ms; original 20).",
    ),
    ("--mon-ts-gain-mv", "mon_ts_gain_mV", float, _NN, "MON->TS EPSP gain (mV per unit weight)."),
    ("--mon-global-inh-p", "mon_to_global_inh_p", float, _P01, "MON->inhibitory cell probability."),
    (
        "--mon-global-inh-drive-mv",
        "mon_to_global_inh_drive_mV",
        float,
        _NN,
        "MON->inhibitory cell drive (mV).",
    ),
    ("--mon-global-inh-mv", "global_inh_to_mon_mV", float, _NN, "Global inhibition onto MON (mV)."),
    (
        "--ts-lateral-radius",
        "ts_lateral_radius",
        int,
        _POS,
        "TS lateral inhibition radius (indices).",
    ),
    (
        "--ts-local-inh-peak-mv",
        "ts_local_inh_peak_mV",
        float,
        _NN,
        "TS lateral inhibition peak (mV).",
    ),
    (
        "--ts-lateral-exc-peak-mv",
        "ts_lateral_exc_peak_mV",
        float,
        _NN,
        "TS-TS short-range excitation peak (mV; 0 = off, as the original).",
    ),
    (
        "--ts-lateral-exc-sigma",
        "ts_lateral_exc_sigma",
        float,
        _POSF,
        "TS-TS excitation spread (Gaussian sigma, TS indices).",
    ),
    (
        "--ts-feedback-p",
        "ts_to_global_inh_p",
        float,
        _P01,
        "TS->global-inh connection probability in [0, 1].",
    ),
    (
        "--ts-feedback-drive-mv",
        "ts_to_global_inh_drive_mV",
        float,
        _NN,
        "TS->global-inh drive strength (mV).",
    ),
    ("--ts-feedback-inh-mv", "global_inh_to_ts_mV", float, _NN, "Global-inh->TS strength (mV)."),
    ("--bg-rate-mon-hz", "bg_rate_mon_hz", float, _NN, "MON background Poisson rate (Hz)."),
    ("--bg-rate-ts-hz", "bg_rate_ts_hz", float, _NN, "TS background Poisson rate (Hz)."),
    ("--bg-w-mon-mv", "bg_w_mon_mV", float, _NN, "MON background synaptic weight (mV)."),
    ("--bg-w-ts-mv", "bg_w_ts_mV", float, _NN, "TS background synaptic weight (mV)."),
]
STORE_TRUE = [
    ("--use-ll-mon-stdp", "ll_mon_use_stdp", "Enable STDP on LL->MON."),
    (
        "--use-ts-feedback-inh",
        "use_ts_feedback_inh",
        "Enable TS activity-dependent feedback inhibition.",
    ),
    (
        "--keep-mon-ts-stdp-during-test",
        "keep_mon_ts_stdp_during_test",
        "Do not freeze MON->TS STDP for the test.",
    ),
    (
        "--test-using-held-snapshots",
        "test_using_held_snapshots",
        "Test on held snapshots instead of the continuous sweep.",
    ),
]
BOOL_OPT = [
    (
        "--training-ordered-sweeps",
        "training_ordered_sweeps",
        "Forward/backward sweeps (else shuffled).",
    ),
    (
        "--training-fixed-distance",
        "training_fixed_distance",
        "Fix the training distance at its mean.",
    ),
    ("--training-bidirectional", "training_bidirectional", "Alternate direction each snapshot."),
    (
        "--mon-ts-homeo-fixed-target",
        "mon_ts_homeo_fixed_target",
        "MON->TS homeostasis towards the initial total (normalisation) instead of the mean.",
    ),
    (
        "--mon-ts-homeo-per-cell",
        "mon_ts_homeo_per_cell",
        "With a fixed target: each TS cell towards its own initial total.",
    ),
    (
        "--mon-ts-norm-presynaptic",
        "mon_ts_norm_presynaptic",
        "Also hold each MON cell's outgoing MON->TS total at its initial value.",
    ),
]


def make_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description="Lateral-line MON/TS STDP model (flyenv, numpy).")
    ap.add_argument("--mode", type=str, default="ll_thesis", help=f"Preset: {' or '.join(MODES)}.")
    ap.add_argument(
        "--run-name", type=str, default=None, help="Folder under Runs/ (default: timestamp)."
    )
    ap.add_argument("--save-tag", type=str, default="latest", help="Base name of artifacts/*.npz.")
    ap.add_argument("--multi-seed", type=int, default=1, help="Number of consecutive seeds.")
    ap.add_argument("--seed-start", type=int, default=123, help="First seed.")
    ap.add_argument(
        "--save-weights-dir",
        type=str,
        default="SavedModels/ll_thesis_no_noise",
        help="Also copy the learned-weight artifacts here (primary outputs stay in Runs/.../artifacts).",
    )
    ap.add_argument("--runs-dir", type=str, default="Runs", help="Parent folder of run folders.")
    ap.add_argument(
        "--resume-from",
        type=str,
        default=None,
        help="Run folder to resume (artifacts/mid_checkpoint.npz).",
    )
    ap.add_argument(
        "--disable-all-stdp",
        action="store_true",
        help="Control: zero all STDP increments (homeostatic scaling still runs).",
    )
    ap.add_argument(
        "--disable-all-plasticity",
        action="store_true",
        help="Control: no weight changes at all (STDP increments and homeostasis zeroed).",
    )
    ap.add_argument(
        "--with-control",
        action="store_true",
        help="Also run both controls on the same seeds (no plasticity at all; homeostasis "
        "only) from the same initial weights, and plot learned vs controls.",
    )
    ap.add_argument("--no-progress", action="store_true", help="Hide the progress bar.")
    ap.add_argument(
        "--scenario", type=str, default=None, help="scenarios/*.toml with [run]/[overrides] flags."
    )
    ap.add_argument(
        "--eval-x-min",
        "--eval-x-min-cm",
        type=float,
        default=None,
        dest="eval_x_min_cm",
        help="PV window start (cm).",
    )
    ap.add_argument(
        "--eval-x-max",
        "--eval-x-max-cm",
        type=float,
        default=None,
        dest="eval_x_max_cm",
        help="PV window end (cm).",
    )
    for flag, _field, typ, _tr, hlp in OVERRIDES:
        ap.add_argument(flag, type=typ, default=None, help=hlp)
    for flag, _field, hlp in STORE_TRUE:
        ap.add_argument(flag, action="store_true", help=hlp)
    for flag, _field, hlp in BOOL_OPT:
        ap.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=hlp)
    return ap


def params_from_args(args: argparse.Namespace) -> NetworkParams:
    """Preset first, then every flag the user gave (as the original)."""
    if args.mode not in MODES:
        raise ValueError(f"--mode must be one of {', '.join(MODES)}, got {args.mode!r}")
    if args.distance_cm is not None and not args.distance_cm > 0:
        raise ValueError(f"--distance-cm must be > 0, got {args.distance_cm}")
    if args.ll_rate_mode is not None and args.ll_rate_mode not in ("raw", "modulation"):
        raise ValueError(f"--ll-rate-mode must be raw or modulation, got {args.ll_rate_mode!r}")
    if (args.eval_x_min_cm is None) != (args.eval_x_max_cm is None):
        raise ValueError("--eval-x-min and --eval-x-max must be given together")
    if args.eval_x_min_cm is not None and not args.eval_x_max_cm > args.eval_x_min_cm:
        raise ValueError("--eval-x-max must be greater than --eval-x-min")
    if args.multi_seed < 1:
        raise ValueError(f"--multi-seed must be >= 1, got {args.multi_seed}")
    over: dict[str, Any] = {"seed": args.seed_start}
    for flag, field_name, _typ, transform, _h in OVERRIDES:
        val = getattr(args, flag.lstrip("-").replace("-", "_"))
        if val is not None:
            over[field_name] = transform(val) if transform is not None else val
    for flag, field_name, _h in STORE_TRUE:
        if getattr(args, flag.lstrip("-").replace("-", "_")):
            over[field_name] = True
    for flag, field_name, _h in BOOL_OPT:
        val = getattr(args, flag.lstrip("-").replace("-", "_"))
        if val is not None:
            over[field_name] = bool(val)
    if args.eval_x_min_cm is not None:
        over["eval_x_min_cm"] = float(args.eval_x_min_cm)
        over["eval_x_max_cm"] = float(args.eval_x_max_cm)
    if args.disable_all_stdp or args.disable_all_plasticity:
        over.update(NO_STDP)
    if args.disable_all_plasticity:
        over.update(NO_HOMEOSTASIS)
    return replace(apply_model_mode(NetworkParams(), args.mode), **over)


NO_STDP = {"ll_mon_apre": 0.0, "ll_mon_apost": 0.0, "mon_ts_apre": 0.0, "mon_ts_apost": 0.0}
NO_HOMEOSTASIS = {"mon_ts_homeo_eta": 0.0, "ll_mon_homeo_eta": 0.0}
# --with-control: label -> overrides. Same wiring, initial weights, inputs and seeds as the
# learned run; only plasticity differs.
CONTROLS = {
    "control": {**NO_STDP, **NO_HOMEOSTASIS},  # no weight change at all
    "control_homeo": dict(NO_STDP),  # homeostatic scaling only (also plasticity)
}


def figure_suffix(p: NetworkParams, seeded: bool) -> str:
    s = f"u_{p.speed_cm_s:.1f}_nMON_{p.n_mon}_nTS_{p.n_ts}"
    return s + (f"_seed_{p.seed}" if seeded else "")


def scenario_argv(path: str | Path) -> list[str]:
    """Flags from a scenarios/*.toml file: every key of [run] and [overrides] is a CLI
    flag (underscores -> dashes); true booleans become bare flags, false ones --no-X."""
    import tomllib

    path = Path(path)
    if not path.exists():
        raise ValueError(f"scenario file {path} not found (see scenarios/lateral_line_*.toml)")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"malformed scenario {path}: {exc}") from None
    unknown = set(data) - {"run", "overrides", "description"}
    if unknown:
        raise ValueError(
            f"scenario {path}: unknown table(s) {sorted(unknown)}; use [run] and [overrides]"
        )
    out: list[str] = []
    for table in ("run", "overrides"):
        for key, val in data.get(table, {}).items():
            flag = "--" + key.replace("_", "-")
            if val is True:
                out.append(flag)
            elif val is False:
                out.append("--no-" + key.replace("_", "-"))
            else:
                out += [flag, str(val)]
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--scenario" in argv:  # scenario flags first, so explicit flags win
        k = argv.index("--scenario")
        if k + 1 >= len(argv):
            raise SystemExit("error: --scenario needs a path")
        try:
            argv = scenario_argv(argv[k + 1]) + argv[:k] + argv[k + 2 :]
        except ValueError as exc:
            raise SystemExit(f"error: {exc}") from None
    args = make_parser().parse_args(argv)
    try:
        params = params_from_args(args)
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None
    from flyenv.viz import lateral_line_plots as plots  # matplotlib only when running

    name = (args.run_name or "").strip().replace("/", "_").replace("\\", "_")
    name = name or datetime.now().strftime("%Y%m%d_%H%M%S")
    run_dir = Path(args.runs_dir) / name
    resume = None
    if args.resume_from:
        run_dir = Path(args.resume_from)
        ck = run_dir / "artifacts" / "mid_checkpoint.npz"
        if ck.exists():
            with np.load(ck) as z:
                resume = {k: z[k] for k in z.files}
            print(
                f"[resume] from trial {int(resume['trial_idx']) + 1} of seed {int(resume['seed'])}"
            )
        else:
            print(f"WARNING: no {ck}; starting from scratch")
    figures_dir, artifacts_dir = run_dir / "figures", run_dir / "artifacts"
    figures_dir.mkdir(parents=True, exist_ok=True)
    artifacts_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(
        run_dir / "params.json",
        {
            "mode": args.mode,
            "seed_start": args.seed_start,
            "multi_seed": args.multi_seed,
            "run_folder": run_dir.name,
            "network_params": params.to_dict(),
        },
    )
    print(f"Run directory: {run_dir.resolve()}")

    def run_all(base: NetworkParams, label: str) -> list[dict[str, Any]]:
        out = []
        for k in range(args.multi_seed):
            p = replace(base, seed=args.seed_start + k)
            res = None
            if resume is not None and int(resume["seed"]) == p.seed and label == "learned":
                res = resume
            ckpt = artifacts_dir / (
                "mid_checkpoint.npz" if label == "learned" else f"mid_checkpoint_{label}.npz"
            )
            r = run_seed(p, checkpoint_path=ckpt, resume=res, progress=not args.no_progress)
            out.append(r)
            print(
                f"[{label}] seed {p.seed}: sigma_theta={r['pv_sigma_theta']:.4f} rad, "
                f"delta_trial={r['pv_delta_trial']:.4f} rad, valid_fraction={r['pv_valid_fraction']:.3f}, "
                f"TS test spikes={r['ts_spikes_during_test_window']}, wall={r['wall_s']:.1f}s"
            )
        return out

    is_control = args.disable_all_stdp or args.disable_all_plasticity
    results = run_all(params, "control" if is_control else "learned")
    for r in results:
        p = r["params"]
        if args.multi_seed > 1:
            plots.save_all_run_figures(r, figures_dir, figure_suffix(p, seeded=True))
        w_path, p_path = save_learning_artifacts(
            r, artifacts_dir, f"{args.save_tag}_seed_{p.seed}", args.mode
        )
        atomic_write_json(
            artifacts_dir / f"seed_{p.seed}_results.json",
            {
                **seed_summary(r)["pv_map_quality"],
                "seed": int(p.seed),
                "distance_cm": p.distance_cm,
                "sigma_theta_ll_rad": r["pv_ll"].sigma_theta,
                "delta_trial_ll_rad": r["pv_ll"].delta_trial,
                "n_training_trials": p.n_training_trials,
                "train_wall_s": r["train_wall_s"],
                "wall_s": r["wall_s"],
            },
        )
        if args.save_weights_dir:
            dst = Path(args.save_weights_dir)
            dst.mkdir(parents=True, exist_ok=True)
            shutil.copy2(w_path, dst / w_path.name)
            shutil.copy2(p_path, dst / p_path.name)
    first = results[0]
    paths = plots.save_all_run_figures(first, figures_dir, figure_suffix(params, seeded=False))
    if args.mode == "ll_thesis":
        shutil.copy2(paths["summary"], figures_dir / "LL_THESIS_BASELINE_ACTIVE_latest.png")
        shutil.copy2(paths["test_only"], figures_dir / "LL_THESIS_BASELINE_TEST_ONLY_latest.png")
    if args.multi_seed > 1:
        plots.save_multiseed_summary(
            results, figures_dir / f"brian2_multiseed_summary_n{args.multi_seed}.png"
        )

    summary: dict[str, Any] = {
        "ll_mon_topo": float(params.ll_to_mon_topography_strength),
        "mon_ts_topo": float(params.mon_to_ts_topography_strength),
        "mon_ts_sigma": float(params.mon_to_ts_sigma),
        "mon_ts_gain_mV": float(params.mon_ts_gain_mV),
    }
    per = [seed_summary(r) for r in results]
    if args.multi_seed == 1:
        summary.update(per[0])
    else:
        summary["runs"] = per
    atomic_write_json(run_dir / "run_summary.json", summary)

    controls: dict[str, list[dict[str, Any]]] = {}
    if args.with_control and not is_control:
        for label, over in CONTROLS.items():
            controls[label] = run_all(replace(params, **over), label)
        plots.save_learned_vs_control(
            results,
            {"no plasticity": controls["control"], "homeostasis only": controls["control_homeo"]},
            figures_dir / f"learned_vs_control_n{len(results)}.png",
        )
        atomic_write_json(
            run_dir / "control_summary.json",
            {
                "learned": per,
                **{lab: [seed_summary(r) for r in runs] for lab, runs in controls.items()},
                "control_definitions": {
                    "control": "no weight changes: STDP increments and homeostasis zeroed",
                    "control_homeo": "STDP increments zeroed, homeostatic scaling kept",
                },
                "n_training_trials": params.n_training_trials,
                "learned_wall_s": [r["wall_s"] for r in results],
            },
        )
    ckpt = artifacts_dir / "mid_checkpoint.npz"
    sig = np.array([r["pv_sigma_theta"] for r in results])
    dtr = np.array([r["pv_delta_trial"] for r in results])
    print(f"Mode: {args.mode}, trials={params.n_training_trials}, seeds={args.multi_seed}")
    print(
        f"PV map quality (seed {first['params'].seed}): sigma_theta={first['pv_sigma_theta']:.4f} rad, "
        f"delta_trial={first['pv_delta_trial']:.4f} rad, valid_fraction={first['pv_valid_fraction']:.3f}"
    )
    if args.multi_seed > 1:
        print(
            f"Multi-seed: sigma_theta={sig.mean():.4f}+-{sig.std():.4f}, delta_trial={dtr.mean():.4f}+-{dtr.std():.4f}"
        )
    print(f"Checkpoint: {ckpt if ckpt.exists() else 'none'}")
    print(f"Run directory: {run_dir.resolve()}")
    return {"run_dir": run_dir, "results": results, "controls": controls}


if __name__ == "__main__":
    main()
