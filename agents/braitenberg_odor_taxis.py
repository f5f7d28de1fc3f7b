"""Braitenberg odor-taxis baseline: steer toward more attractive, away from aversive odor.

A scripted agent with no learning. It proves the task is solvable and sets the
floor every learned agent should beat. Runs N starts (seeds 0..N-1, random source
distance and start heading), prints the success rate and the mean time to the
source, and writes a JSON summary.

    python agents/braitenberg_odor_taxis.py --n-starts 20
    python agents/braitenberg_odor_taxis.py --n-aversive-sources 1 --video videos/braitenberg.mp4
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict
from pathlib import Path

import gymnasium as gym
import numpy as np
from tqdm import tqdm

import flyenv  # noqa: F401  (registers the environments)
from flyenv.io import atomic_write_json
from flyenv.policies.braitenberg import BraitenbergConfig, BraitenbergPolicy
from flyenv.recording import record_video, run_episode


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--env-id", default="flyenv/OdorTaxis-v0")
    p.add_argument("--n-starts", type=int, default=20, help="episodes (seeds seed..seed+N-1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-aversive-sources", type=int, default=0)
    p.add_argument("--source-distance-mm", type=float, nargs=2, default=(10.0, 20.0))
    p.add_argument("--time-limit-s", type=float, default=10.0)
    p.add_argument("--attractive-gain", type=float, default=BraitenbergConfig.attractive_gain)
    p.add_argument("--aversive-gain", type=float, default=BraitenbergConfig.aversive_gain)
    p.add_argument("--out", default="runs/braitenberg_odor_taxis/results.json", help="JSON summary")
    p.add_argument("--video", default=None, help="also record the first start to this .mp4")
    args = p.parse_args(argv)
    if args.n_starts < 1:
        p.error("--n-starts must be >= 1")
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    env_kwargs = dict(
        n_aversive_sources=args.n_aversive_sources,
        source_distance_mm=tuple(args.source_distance_mm),
        time_limit_s=args.time_limit_s,
    )
    env = gym.make(args.env_id, **env_kwargs)
    config = BraitenbergConfig(
        attractive_gain=args.attractive_gain, aversive_gain=args.aversive_gain
    )
    policy = BraitenbergPolicy(env.unwrapped.config.channels, config)

    t0 = time.time()
    episodes = []
    for i in tqdm(range(args.n_starts), desc="braitenberg starts", unit="ep"):
        episodes.append(run_episode(env, policy, seed=args.seed + i))
    wall = time.time() - t0
    env.close()

    successes = [e for e in episodes if e.is_success]
    rate = len(successes) / len(episodes)
    mean_t = float(np.mean([e.time_s for e in successes])) if successes else float("nan")
    reasons = {}
    for e in episodes:
        key = e.termination_reason or "time_limit"
        reasons[key] = reasons.get(key, 0) + 1
    print(f"env {args.env_id} {env_kwargs}")
    print(
        f"success rate {rate:.0%} ({len(successes)}/{len(episodes)}), "
        f"mean time to source {mean_t:.2f} s, outcomes {reasons}, wall {wall:.0f} s"
    )
    summary = {
        "env_id": args.env_id,
        "env_kwargs": env_kwargs,
        "agent": "braitenberg",
        "agent_config": asdict(config),
        "n_starts": len(episodes),
        "success_rate": rate,
        "mean_time_to_source_s": mean_t,
        "outcomes": reasons,
        "wall_time_s": wall,
        "episodes": [e.as_dict() for e in episodes],
    }
    atomic_write_json(args.out, summary)
    print(f"results: {Path(args.out).resolve()}")

    if args.video:
        venv = gym.make(args.env_id, render_mode="rgb_array", **env_kwargs)
        record_video(venv, policy, args.video, seed=args.seed, label="braitenberg", play_speed=0.25)
        venv.close()
        print(f"video: {Path(args.video).resolve()}")
    return summary


if __name__ == "__main__":
    main()
