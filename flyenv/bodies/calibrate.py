"""Calibrate the kinematic twin from the MuJoCo body.

Sweeps the 2-D descending drive over a grid (in the env's action units, [-1, 1]^2)
and, for several CPG start phases (seeds), walks NeuroMechFly under each constant
drive. Measures in the body frame:

* steady-state forward speed, lateral speed and turn rate (mean over the window
  after the start-up transient) and their trial-to-trial spread across seeds;
* the start-up transient: forward speed in 10 ms bins from rest, summarised as a
  two cascaded first-order lags (one time constant) fitted over all walking trials;
* where the four odor sensors sit relative to the thorax (body frame x/y, mm) and
  their height above the floor (z, mm).

The result is a small ``.npz`` shipped in ``flyenv/data/calibration/``; the twin
(``flyenv.bodies.kinematic_fly``) loads it and interpolates it smoothly.

    python -m flyenv.bodies.calibrate                      # regenerate the shipped file
    python -m flyenv.bodies.calibrate --grid 5 --seeds 2 --out /tmp/quick.npz
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

from flyenv.io import atomic_write  # noqa: E402

DEFAULT_CALIBRATION_PATH = (
    Path(__file__).resolve().parent.parent / "data" / "calibration" / "hybrid_turning_drive_map.npz"
)


@dataclass
class CalibrationConfig:
    grid_points: int = 9
    """Drive values per side, evenly spaced over the action range [-1, 1]."""
    seeds: int = 3
    """Trials per drive, each from different random CPG phases."""
    trial_s: float = 0.6
    transient_s: float = 0.2
    """Excluded from the steady-state means; used to fit the start-up lag."""
    bin_s: float = 0.01
    physics_timestep_s: float = 1e-4


def _run_trials(args: tuple[list[tuple[float, float]], int, CalibrationConfig]) -> list[dict]:
    """Worker: walk the fly under each (left, right) action for one seed."""
    actions, seed, cfg = args
    from flygym.arena import OdorArena

    from flyenv.bodies.hybrid_turning import action_to_drive
    from flyenv.bodies.mujoco_fly import MujocoFly, MujocoFlyConfig, PhysicsUnstableError

    body = MujocoFly(OdorArena(), MujocoFlyConfig(timestep_s=cfg.physics_timestep_s))
    rng = np.random.default_rng(seed)
    phases = rng.uniform(0, 2 * np.pi, 6)
    n_bins = int(round(cfg.trial_s / cfg.bin_s))
    steps_per_bin = int(round(cfg.bin_s / cfg.physics_timestep_s))
    out = []
    for action in actions:
        body.reset_pose(phases.copy(), heading_rad=0.0)
        drive = action_to_drive(np.array(action))
        xy = np.zeros((n_bins + 1, 2))
        heading = np.zeros(n_bins + 1)
        xy[0], heading[0] = body.thorax_position[:2], body.heading_rad
        sensors_body = []
        status = "ok"
        for b in range(n_bins):
            try:
                body.step_drive(drive, steps_per_bin)
            except PhysicsUnstableError:
                status = "unstable"
                break
            if body.is_flipped:
                status = "flipped"
                break
            xy[b + 1], heading[b + 1] = body.thorax_position[:2], body.heading_rad
            # xy relative to the thorax, z absolute (height above the floor).
            rel = body.odor_sensor_positions - body.thorax_position * np.array([1.0, 1.0, 0.0])
            c, s = np.cos(heading[b + 1]), np.sin(heading[b + 1])
            rot = np.array([[c, s, 0], [-s, c, 0], [0, 0, 1.0]])  # world -> body
            sensors_body.append(rel @ rot.T)
        out.append(
            {
                "action": action,
                "seed": seed,
                "status": status,
                "xy": xy,
                "heading": heading,
                "sensors_body": np.mean(sensors_body, axis=0) if sensors_body else None,
            }
        )
    return out


def body_frame_velocities(xy: np.ndarray, heading: np.ndarray, dt: float) -> np.ndarray:
    """Per-bin (forward, leftward, yaw rate) from positions and headings."""
    d = np.diff(xy, axis=0) / dt
    c, s = np.cos(heading[:-1]), np.sin(heading[:-1])
    forward = c * d[:, 0] + s * d[:, 1]
    left = -s * d[:, 0] + c * d[:, 1]
    yaw = np.angle(np.exp(1j * np.diff(heading))) / dt
    return np.stack([forward, left, yaw], axis=1)


def fit_cascade_lag(t: np.ndarray, response: np.ndarray, bin_s: float) -> float:
    """Fit two cascaded first-order lags with one time constant to a start-up.

    ``response`` is the forward speed per bin divided by the steady-state speed. The
    per-bin speed swings with every stride, so the fit uses its running integral
    (distance walked / steady speed), for which the model is
    x(t) = t - 2 tau + (2 tau + t) exp(-t / tau). Returns tau in s (grid search).

    Two stages reproduce the S-shaped start (the fly lands, the CPG amplitude grows)
    without a dead time, so every action keeps an influence on later motion.
    """
    t_end = t + bin_s / 2  # bin ends
    walked = np.cumsum(response) * bin_s
    taus = np.arange(0.002, 0.2, 0.0005)[:, None]
    model = t_end - 2 * taus + (2 * taus + t_end) * np.exp(-t_end / taus)
    err = np.mean((model - walked[None, :]) ** 2, axis=1)
    return float(taus[np.argmin(err), 0])


IDENTIFICATION_SEED = 100
"""Drive sequences used to identify the response time constant; the transfer check
(``flyenv.bodies.transfer``) validates on other seeds (0 by default)."""


def identify_response_tau(
    calibration_path: Path, n_sequences: int = 10, seed: int = IDENTIFICATION_SEED
) -> tuple[float, np.ndarray, np.ndarray]:
    """Pick the twin's lag time constant that best reproduces MuJoCo under changing drives.

    Walks the MuJoCo fly through ``n_sequences`` random 1 s drive sequences (new
    drive every 100 ms), then replays them on the twin for a grid of time constants
    and keeps the one with the smallest mean final-position error relative to path
    length. (The start-up from rest alone under-estimates the lag of drive changes,
    which is set by the CPG amplitude convergence.)

    Returns (best tau, taus tried, mean relative error of each).
    """
    import torch

    from flyenv.bodies.kinematic_fly import KinematicFly, KinematicFlyConfig
    from flyenv.bodies.transfer import compare_twin_to_mujoco, random_action_sequences

    ref = compare_twin_to_mujoco(n_sequences, seed=seed, calibration_path=str(calibration_path))
    actions = torch.as_tensor(random_action_sequences(n_sequences, 1.0, 0.1, 0.01, seed))
    taus = np.arange(0.005, 0.1001, 0.005)
    errors = []
    for tau in taus:
        fly = KinematicFly(
            n_sequences,
            KinematicFlyConfig(calibration_path=str(calibration_path)),
            dtype=torch.float64,
        )
        fly.tau_s = float(tau)
        fly.reset(
            torch.as_tensor(ref.mujoco_xy[:, 0]), torch.zeros(n_sequences, dtype=torch.float64)
        )
        with torch.no_grad():
            for t in range(actions.shape[1]):
                fly.step(actions[:, t], 0.01)
        err = np.linalg.norm(fly.xy.numpy() - ref.mujoco_xy[:, -1], axis=1) / ref.path_length_mm
        errors.append(float(err.mean()))
    errors = np.array(errors)
    return float(taus[np.argmin(errors)]), taus, errors


def summarise(trials: list[dict], cfg: CalibrationConfig, grid: np.ndarray) -> dict:
    n = len(grid)
    n_tr = int(round(cfg.transient_s / cfg.bin_s))
    per = {k: np.full((n, n, cfg.seeds), np.nan) for k in ("forward", "lateral", "turn")}
    curves, sensors = [], []
    failures = 0
    index = {float(v): i for i, v in enumerate(grid)}
    for tr in trials:
        if tr["status"] != "ok":
            failures += 1
            continue
        i, j = index[float(tr["action"][0])], index[float(tr["action"][1])]
        vel = body_frame_velocities(tr["xy"], tr["heading"], cfg.bin_s)
        steady = vel[n_tr:]
        # Displacement over the window, in the body frame of each bin, averaged.
        per["forward"][i, j, tr["seed"]] = steady[:, 0].mean()
        per["lateral"][i, j, tr["seed"]] = steady[:, 1].mean()
        unwrapped = np.unwrap(tr["heading"][n_tr:])
        per["turn"][i, j, tr["seed"]] = (
            (unwrapped[-1] - unwrapped[0]) / (len(unwrapped) - 1) / cfg.bin_s
        )
        v_ss = steady[:, 0].mean()
        if v_ss > 3.0:  # clearly walking forward: use its start-up for the lag fit
            curves.append(vel[:n_tr, 0] / v_ss)
        sensors.append(tr["sensors_body"])
    t = (np.arange(n_tr) + 0.5) * cfg.bin_s
    mean_curve = np.mean(curves, axis=0) if curves else np.zeros(n_tr)
    tau = fit_cascade_lag(t, mean_curve, cfg.bin_s)
    if np.isnan(per["forward"]).all(axis=2).any():
        raise RuntimeError("some drives failed on every seed; cannot build the drive map")
    return {
        "action_grid": grid,
        "forward_speed_mm_s": np.nanmean(per["forward"], axis=2),
        "forward_speed_std_mm_s": np.nanstd(per["forward"], axis=2),
        "lateral_speed_mm_s": np.nanmean(per["lateral"], axis=2),
        "lateral_speed_std_mm_s": np.nanstd(per["lateral"], axis=2),
        "turn_rate_rad_s": np.nanmean(per["turn"], axis=2),
        "turn_rate_std_rad_s": np.nanstd(per["turn"], axis=2),
        "startup_time_s": t,
        "startup_forward_fraction": mean_curve,
        "startup_tau_s": np.array(tau),
        "response_tau_s": np.array(tau),  # replaced by identify_response_tau in main()
        "sensor_offsets_body_mm": np.mean(sensors, axis=0),
        "failed_trials": np.array(failures),
    }


def calibrate(cfg: CalibrationConfig, workers: int = 1, progress: bool = True) -> dict:
    grid = np.linspace(-1.0, 1.0, cfg.grid_points)
    actions = [(float(a), float(b)) for a in grid for b in grid]
    # Split the grid into chunks so the progress bar moves and both cores work.
    chunk = max(1, len(actions) // 6)
    jobs = [
        (actions[k : k + chunk], seed, cfg)
        for seed in range(cfg.seeds)
        for k in range(0, len(actions), chunk)
    ]
    trials = []
    bar = tqdm(
        total=len(actions) * cfg.seeds,
        desc="calibration trials",
        unit="trial",
        disable=not progress,
    )
    if workers > 1:
        with get_context("spawn").Pool(workers) as pool:
            for res in pool.imap_unordered(_run_trials, jobs):
                trials.extend(res)
                bar.update(len(res))
    else:
        for job in jobs:
            res = _run_trials(job)
            trials.extend(res)
            bar.update(len(res))
    bar.close()
    return summarise(trials, cfg, grid)


def save_calibration(path: Path, result: dict, cfg: CalibrationConfig, wall_s: float) -> None:
    import flygym

    meta = {
        "config": asdict(cfg),
        "flygym_version": getattr(flygym, "__version__", "1.2.1"),
        "python": platform.python_version(),
        "wall_time_s": round(wall_s, 1),
        "command": "python -m flyenv.bodies.calibrate "
        + " ".join(
            f"--{k.replace('_', '-')} {v}"
            for k, v in (("grid", cfg.grid_points), ("seeds", cfg.seeds), ("trial-s", cfg.trial_s))
        ),
    }

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, metadata=np.array(json.dumps(meta)), **result)

    atomic_write(path, write)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--grid", type=int, default=CalibrationConfig.grid_points)
    p.add_argument("--seeds", type=int, default=CalibrationConfig.seeds)
    p.add_argument("--trial-s", type=float, default=CalibrationConfig.trial_s)
    p.add_argument("--transient-s", type=float, default=CalibrationConfig.transient_s)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument(
        "--identify-sequences",
        type=int,
        default=10,
        help="random drive sequences for the lag identification (0: use the start-up fit)",
    )
    p.add_argument("--out", type=Path, default=DEFAULT_CALIBRATION_PATH)
    args = p.parse_args(argv)
    if args.grid < 4:
        p.error("--grid must be >= 4 (bicubic interpolation needs 4 points per axis)")
    if not 0 < args.transient_s < args.trial_s:
        p.error("--transient-s must be positive and shorter than --trial-s")
    cfg = CalibrationConfig(args.grid, args.seeds, args.trial_s, args.transient_s)
    t0 = time.time()
    result = calibrate(cfg, workers=args.workers)
    wall = time.time() - t0
    save_calibration(args.out, result, cfg, wall)
    # Second stage: the lag under changing drives, identified on random sequences.
    tau, taus, errors = identify_response_tau(args.out)
    result.update(
        response_tau_s=np.array(tau), identification_taus_s=taus, identification_errors=errors
    )
    save_calibration(args.out, result, cfg, time.time() - t0)
    g = result["action_grid"]
    print(f"wrote {args.out} ({wall:.0f} s, {int(result['failed_trials'])} failed trials)")
    print(
        f"lag: two cascaded stages of {float(result['response_tau_s']) * 1e3:.0f} ms each "
        f"(identified on random drive sequences; start-up alone fits "
        f"{float(result['startup_tau_s']) * 1e3:.0f} ms)"
    )
    print(
        "forward speed mm/s (rows: left action, cols: right action "
        + ", ".join(f"{v:+.2f}" for v in g)
        + ")"
    )
    print(
        np.array2string(
            result["forward_speed_mm_s"], precision=1, suppress_small=True, max_line_width=200
        )
    )
    print("turn rate rad/s (+ = counter-clockwise)")
    print(
        np.array2string(
            result["turn_rate_rad_s"], precision=2, suppress_small=True, max_line_width=200
        )
    )


if __name__ == "__main__":
    main()
