"""Kinematic twin vs MuJoCo body: fly-steps per wall second, and the cost of BPTT.

One fly-step = one agent step (10 ms of simulated time) of one fly. In one run:
the twin's native vector env at B = 1, 64 and 4096 (``gym.make_vec``), the MuJoCo
env ``flyenv/OdorTaxis-v0``, and a forward + backward pass through a 5,000-step
episode at B = 64 on the differentiable core.

The two sides do DIFFERENT work: the twin is a kinematic model (a few tensor ops per
fly-step: position and heading integrated from the drive, calibrated to the MuJoCo
fly), the MuJoCo env is a physics simulation (100 contact-rich physics steps of the
NeuroMechFly body per fly-step). The ratio is throughput of the cheap substitute over
the expensive body, not a speed-up of one computation; how well the twin stands in
for the body is ``bench_twin_transfer.py``. Each repeat times the twin at B = 4096 and
the MuJoCo env back to back (order swapped every repeat). Last line:
``twin_over_mujoco=<median twin B=4096 fly-steps/s / MuJoCo fly-steps/s> min=.. max=..``.

    python benchmarks/bench_kinematic.py [--threads 1] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import gymnasium as gym
import numpy as np
import torch
from _repeat import check_repeats, load_average, report

import flyenv  # noqa: F401
from flyenv.envs.walking_episodes import WalkingEpisodes
from flyenv.tasks.odor_taxis import OdorTaxisConfig, OdorTaxisTask


def twin_rate(num_envs: int, steps: int, device: str) -> float:
    envs = gym.make_vec("flyenv/OdorTaxis-kinematic-v0", num_envs=num_envs, device=device)
    envs.reset(seed=0)
    actions = np.random.default_rng(0).uniform(-1, 1, (steps, num_envs, 2)).astype(np.float32)
    envs.step(actions[0])  # warm-up
    t0 = time.perf_counter()
    for a in actions:
        envs.step(a)
    return num_envs * steps / (time.perf_counter() - t0)


def mujoco_rate(steps: int) -> float:
    env = gym.make("flyenv/OdorTaxis-v0", time_limit_s=100.0)
    env.reset(seed=0, options={"source_distance_mm": 80.0})
    actions = np.random.default_rng(0).uniform(0, 1, (steps, 2)).astype(np.float32)
    t0 = time.perf_counter()
    for a in actions:
        env.step(a)
    return steps / (time.perf_counter() - t0)


def bptt_cost(batch: int, steps: int, device: str) -> tuple[float, float]:
    core = WalkingEpisodes.twin(
        OdorTaxisTask, batch, OdorTaxisConfig(time_limit_s=steps * 0.01 + 1), device=device
    )
    core.reset(np.random.default_rng(0))
    actions = torch.zeros(steps, batch, 2, device=device, requires_grad=True)
    t0 = time.perf_counter()
    loss = torch.zeros((), device=device)
    for t in range(steps):
        obs, reward, _, _, extras = core.step(actions[t])
        loss = loss + extras["distance_mm"].mean() / steps
    forward = time.perf_counter() - t0
    t0 = time.perf_counter()
    loss.backward()
    backward = time.perf_counter() - t0
    assert actions.grad is not None and actions.grad[0].abs().sum() > 0
    return forward, backward


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads (default 1: on a busy 2-core machine more threads "
        "oversubscribe the cores and run up to 50x slower; 0 keeps torch's default)",
    )
    p.add_argument("--device", default="cpu")
    p.add_argument("--mujoco-steps", type=int, default=40)
    p.add_argument("--repeats", type=int, default=5, help="alternating twin/MuJoCo timings")
    args = p.parse_args()
    check_repeats(args.repeats)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"load average at start: {load_average()}")

    rows = []
    for b, steps in ((1, 2000), (64, 1000)):
        rows.append((f"twin vector env, B={b}", [twin_rate(b, steps, args.device)]))
    big, mj, ratios = [], [], []
    for k in range(args.repeats):  # alternate the two bodies, swapping who goes first
        if k % 2 == 0:
            big.append(twin_rate(4096, 200, args.device))
            mj.append(mujoco_rate(args.mujoco_steps))
        else:
            mj.append(mujoco_rate(args.mujoco_steps))
            big.append(twin_rate(4096, 200, args.device))
        ratios.append(big[-1] / mj[-1])
    rows.append(("twin vector env, B=4096", big))
    rows.append(("MuJoCo OdorTaxis-v0 (1 fly)", mj))
    mj_med = statistics.median(mj)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), device {args.device}")
    print(f"{'body':<32}{'fly-steps/s':>14}{'x MuJoCo':>12}{'runs':>6}  (median of runs)")
    for name, rates in rows:
        rate = statistics.median(rates)
        print(f"{name:<32}{rate:>14,.0f}{rate / mj_med:>12,.0f}{len(rates):>6}")
    fwd, bwd = bptt_cost(64, 5000, args.device)
    print(
        f"BPTT, B=64, 5000 steps: forward {fwd:.2f} s, backward {bwd:.2f} s, "
        f"backward/forward {bwd / fwd:.2f}"
    )
    print(
        "DIFFERENT WORK: kinematic twin (B=4096 flies) vs MuJoCo physics (1 fly); "
        "a throughput ratio, not a speed-up of the same computation"
    )
    report(ratios, "twin B=4096 / MuJoCo fly-steps per second", key="twin_over_mujoco", fmt=".0f")


if __name__ == "__main__":
    main()
