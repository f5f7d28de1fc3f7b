"""Build a policy for an environment from a name or a checkpoint path.

``braitenberg`` and ``random`` are built in; a ``.zip`` path is a stable-baselines3
model (its algorithm is read from the file).
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import numpy as np

Policy = Callable[[np.ndarray], np.ndarray]
BUILTIN_AGENTS = ("braitenberg", "random")


def _odor_channels(env: gym.Env) -> int:
    config = getattr(env.unwrapped, "config", None)
    channels = getattr(config, "channels", None)
    if channels is None:
        raise ValueError(
            f"the braitenberg agent needs an odor environment (with odor channels); "
            f"{env.spec.id if env.spec else env} has none"
        )
    return int(channels)


def _sb3_algorithm(path: Path):
    """Tell the algorithm of an SB3 zip from the hyperparameters it saved."""
    import json

    import stable_baselines3 as sb3

    try:
        with zipfile.ZipFile(path) as zf:
            data = json.loads(zf.read("data"))
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a stable-baselines3 model zip ({exc})") from None
    if "clip_range" in data:
        return sb3.PPO
    if "target_entropy" in data:
        return sb3.SAC
    if "policy_delay" in data:
        return sb3.TD3 if data.get("policy_delay", 1) > 1 else sb3.DDPG
    if "normalize_advantage" in data or "gae_lambda" in data:
        return sb3.A2C
    raise ValueError(f"{path}: cannot tell which SB3 algorithm saved it (PPO/SAC/TD3/DDPG/A2C)")


def load_policy(agent: str, env: gym.Env, seed: int | None = None) -> Policy:
    """Return ``policy(obs) -> action`` for ``env``.

    Args:
        agent: ``"braitenberg"``, ``"random"``, or a path to a checkpoint.
    """
    if agent == "braitenberg":
        from flyenv.policies.braitenberg import BraitenbergPolicy

        return BraitenbergPolicy(_odor_channels(env))
    if agent == "random":
        space = env.action_space
        space.seed(seed)
        return lambda obs: space.sample()
    path = Path(agent)
    if not path.exists():
        raise ValueError(
            f"agent {agent!r} is neither a built-in agent {BUILTIN_AGENTS} nor an existing "
            "checkpoint file; pass one of those names or the path to a saved model"
        )
    if path.suffix == ".zip":
        algo = _sb3_algorithm(path)
        model = algo.load(path, device="cpu")
        return lambda obs: model.predict(obs, deterministic=True)[0]
    raise ValueError(f"{path}: unknown checkpoint type {path.suffix!r}; expected a .zip (SB3)")
