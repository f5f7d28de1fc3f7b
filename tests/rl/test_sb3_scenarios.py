# moved from tests/test_sb3_scenarios.py
"""Every shipped SB3 scenario parses, names a known env/policy, and only uses keywords
that its algorithm and policy accept (a typo would otherwise surface after minutes)."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

import gymnasium as gym
import pytest
from agent_scripts import load_agent
from stable_baselines3 import PPO, SAC

import flyenv  # noqa: F401
from flyenv.config import load_scenario
from flyenv.rl import sb3_training as rl
from flyenv.rl.spiking_policy import SpikingActorCriticPolicy, SpikingSACPolicy

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = sorted((ROOT / "scenarios").glob("ppo_*.toml")) + sorted(
    (ROOT / "scenarios").glob("sac_*.toml")
)


def test_there_are_sb3_scenarios():
    assert len(SCENARIOS) >= 6


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.name)
def test_scenario_is_valid(path: Path):
    algo = "ppo" if path.name.startswith("ppo_") else "sac"
    agent = f"{algo}_odor_taxis"
    args = load_scenario(path, load_agent(agent).Args, agent=agent)
    assert args.env in gym.registry, f"{path.name}: unknown env {args.env}"
    assert args.policy in ("spiking", "mlp")
    cls = PPO if algo == "ppo" else SAC
    accepted = set(inspect.signature(cls.__init__).parameters)
    unknown = set(dataclasses.asdict(args.algo)) - accepted
    assert not unknown, f"{path.name}: [algo] keys {unknown} are not {cls.__name__} keywords"
    kwargs = rl.sb3_policy_kwargs(args.policy_kwargs) or {}
    if args.policy == "spiking":
        policy_cls = SpikingActorCriticPolicy if algo == "ppo" else SpikingSACPolicy
        own = set(inspect.signature(policy_cls.__init__).parameters)
        base = set(inspect.signature(policy_cls.__mro__[1].__init__).parameters)
        unknown = set(kwargs) - own - base
        assert not unknown, f"{path.name}: unknown spiking policy_kwargs {unknown}"
    # env keywords are accepted by gym.make
    env = gym.make(args.env, **rl.env_kwargs_for(args.env, args.policy, args.env_kwargs))
    env.close()
