"""flyenv's OdorTaxis-v0 vs flygym 1.2.1's own HybridTurningController loop.

Both simulate the same NeuroMechFly model in an odor arena at the same physics
timestep, from the same start (pose, CPG phases), under the same drive sequence
(a new random drive every 10 ms). Reported: physics steps per wall second of each
(flyenv's figure includes its whole env step: observation, reward, info), raw
``mj_step`` on the same model for reference, and the distance between the two end
positions (fidelity). Each repeat runs both loops back to back (order swapped every
repeat) and gives one ratio. Last line:
``ratio=<median flyenv / flygym steps per second> min=.. max=.. repeats=N load=..``.

    python benchmarks/bench_odor_taxis.py --sim-time-s 1.0 [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym  # noqa: E402
import mujoco  # noqa: E402
import numpy as np  # noqa: E402
from _repeat import check_repeats, load_average, report  # noqa: E402
from flygym import Fly  # noqa: E402
from flygym.arena import OdorArena  # noqa: E402
from flygym.examples.locomotion import HybridTurningController  # noqa: E402

import flyenv  # noqa: E402, F401
from flyenv.bodies.hybrid_turning import LEGS  # noqa: E402
from flyenv.bodies.mujoco_fly import CONTACT_SENSOR_SEGMENTS  # noqa: E402

SOURCE_MM = 50.0  # far away: nothing ends the episode early


def drive_sequence(n_decisions: int, seed: int) -> np.ndarray:
    """Random left/right drives in flygym's range, biased to walk forward."""
    rng = np.random.default_rng(seed)
    return rng.uniform(0.2, 1.4, size=(n_decisions, 2))


def run_flygym(drives, phases, steps_per_decision, timestep):
    sensors = [f"{leg}{seg}" for leg in LEGS for seg in CONTACT_SENSOR_SEGMENTS]
    fly = Fly(
        spawn_pos=(0, 0, 0.2),
        contact_sensor_placements=sensors,
        enable_olfaction=True,
        enable_adhesion=True,
    )
    arena = OdorArena(
        odor_source=np.array([[SOURCE_MM, 0, 0]]), peak_odor_intensity=np.array([[1.0]])
    )
    sim = HybridTurningController(fly=fly, cameras=[], arena=arena, timestep=timestep)
    obs, _ = sim.reset(seed=0, init_phases=phases.copy())
    t0 = time.perf_counter()
    for drive in drives:
        for _ in range(steps_per_decision):
            obs, *_ = sim.step(drive)
    wall = time.perf_counter() - t0
    end = obs["fly"][0][:2].astype(float)
    # Raw mj_step on the same compiled model, continuing from the walking state with
    # the last joint targets held (a fresh reset would measure a collapsing fly).
    m, d = sim.physics.model.ptr, sim.physics.data.ptr
    n_raw = min(3000, len(drives) * steps_per_decision)
    t0 = time.perf_counter()
    for _ in range(n_raw):
        mujoco.mj_step(m, d)
    raw_rate = n_raw / (time.perf_counter() - t0)
    return wall, end, raw_rate


def run_flyenv(drives, phases, control_period_s, timestep):
    env = gym.make(
        "flyenv/OdorTaxis-v0",
        control_period_s=control_period_s,
        physics_timestep_s=timestep,
        time_limit_s=len(drives) * control_period_s + 1.0,
    )
    env.reset(
        seed=0,
        options={
            "init_phases": phases.copy(),
            "start_heading_rad": 0.0,
            "source_distance_mm": SOURCE_MM,
        },
    )
    t0 = time.perf_counter()
    for drive in drives:
        # float64 on purpose: rounding the drive to float32 (1e-8) alone moves the end
        # position by up to ~0.5 mm after 1 s, because leg contacts amplify tiny differences.
        _, _, terminated, truncated, info = env.step(drive - 0.5)
        assert not (terminated or truncated), info
    wall = time.perf_counter() - t0
    return wall, np.asarray(info["position_mm"], dtype=float)


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--sim-time-s", type=float, default=1.0)
    p.add_argument("--control-period-s", type=float, default=0.01)
    p.add_argument("--timestep-s", type=float, default=1e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeats", type=int, default=3, help="alternating runs of both loops")
    args = p.parse_args()
    check_repeats(args.repeats)
    print(f"load average at start: {load_average()}")

    n_decisions = int(round(args.sim_time_s / args.control_period_s))
    steps_per_decision = int(round(args.control_period_s / args.timestep_s))
    n_steps = n_decisions * steps_per_decision
    drives = drive_sequence(n_decisions, args.seed)
    phases = np.random.default_rng(args.seed).uniform(0, 2 * np.pi, 6)

    ours_walls, ref_walls, raw_rates, ratios = [], [], [], []
    for k in range(args.repeats):
        if k % 2 == 0:
            ours_wall, ours_end = run_flyenv(drives, phases, args.control_period_s, args.timestep_s)
            ref_wall, ref_end, raw = run_flygym(drives, phases, steps_per_decision, args.timestep_s)
        else:
            ref_wall, ref_end, raw = run_flygym(drives, phases, steps_per_decision, args.timestep_s)
            ours_wall, ours_end = run_flyenv(drives, phases, args.control_period_s, args.timestep_s)
        ours_walls.append(ours_wall)
        ref_walls.append(ref_wall)
        raw_rates.append(raw)
        ratios.append(ref_wall / ours_wall)
    ref_rate = n_steps / statistics.median(ref_walls)
    ours_rate = n_steps / statistics.median(ours_walls)
    raw_rate = statistics.median(raw_rates)
    err_mm = float(np.linalg.norm(ours_end - ref_end))
    path_mm = float(np.linalg.norm(ref_end))

    print(
        f"{args.sim_time_s:.2f} s simulated = {n_steps} physics steps of {args.timestep_s:g} s, "
        f"drive changed every {args.control_period_s * 1e3:.0f} ms; both loops step the same "
        "NeuroMechFly model with the same controller (median of repeats)"
    )
    print(f"{'loop':<42}{'steps/s':>10}{'x real time':>13}{'wall s':>9}")
    for name, rate in (
        ("flygym HybridTurningController + OdorArena", ref_rate),
        ("flyenv OdorTaxis-v0 (whole env.step)", ours_rate),
        ("raw mujoco.mj_step, same model", raw_rate),
    ):
        print(f"{name:<42}{rate:>10.0f}{rate * args.timestep_s:>13.3f}{n_steps / rate:>9.2f}")
    print(
        f"end position flygym ({ref_end[0]:.3f}, {ref_end[1]:.3f}) mm, "
        f"flyenv ({ours_end[0]:.3f}, {ours_end[1]:.3f}) mm, "
        f"difference {err_mm * 1e3:.1f} um over a {path_mm:.1f} mm displacement"
    )
    report(ratios, "steps per second flyenv / flygym (same physics)")


if __name__ == "__main__":
    main()
