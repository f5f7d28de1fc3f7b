"""Braitenberg odor-taxis baseline: steer toward more attractive, away from aversive odor.

A scripted agent with no learning. It proves the task is solvable and sets the
floor every learned agent should beat. Runs N starts (seeds 0..N-1, random source
distance and start heading), prints the success rate and the mean time to the
source, and writes a JSON summary.

    python agents/braitenberg_odor_taxis.py --n-starts 20
    python agents/braitenberg_odor_taxis.py --n-aversive-sources 1 --video videos/braitenberg.mp4

Flags (``--help``): the fields of ``Args`` below, dashed; ``--scenario`` reads the same
fields from a TOML file (defaults < scenario < flags).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
from tqdm import tqdm

import flyenv  # noqa: F401  (registers the environments)
from flyenv.config import cli
from flyenv.io import atomic_write_json
from flyenv.policies.braitenberg import BraitenbergConfig, BraitenbergPolicy
from flyenv.recording import record_video, run_episode


@dataclass
class Args:
    scenario: str | None = None
    """TOML of these fields; explicit flags override it."""
    env_id: str = "flyenv/OdorTaxis-v0"
    """Gymnasium env id."""
    n_starts: int = 20
    """Episodes (seeds seed..seed+N-1)."""
    seed: int = 0
    """Seed of the first episode."""
    n_aversive_sources: int = 0
    """Aversive odor sources besides the attractive one."""
    source_distance_mm: tuple[float, float] = (10.0, 20.0)
    """Range of the attractive source's start distance (mm)."""
    time_limit_s: float = 10.0
    """Episode limit (s)."""
    attractive_gain: float = BraitenbergConfig.attractive_gain
    """Steering gain toward the attractive odor."""
    aversive_gain: float = BraitenbergConfig.aversive_gain
    """Steering gain away from aversive odor."""
    out: str = "runs/braitenberg_odor_taxis/results.json"
    """JSON summary."""
    video: str | None = None
    """Also record the first start to this .mp4."""


def parse_args(argv: list[str] | None = None) -> Args:
    args = cli(Args, argv, description=__doc__, agent="braitenberg_odor_taxis")
    if args.n_starts < 1:
        raise SystemExit("error: --n-starts must be >= 1")
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
