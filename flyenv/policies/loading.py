"""Build a policy for an environment from a name or a checkpoint path.

``braitenberg``, ``cast_and_surge`` (PlumeTracking) and ``random`` are built in; a
``.zip`` path is a stable-baselines3 model (its algorithm is read from the file;
sb3-contrib's RecurrentPPO zips run with their hidden state carried from step to step,
``flyenv.policies.sb3_recurrent``); a ``.pt`` path is a flyenv brain
checkpoint written by the BPTT trainer (it names the factory that rebuilds the
module and the env keywords it was trained with).
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import numpy as np

Policy = Callable[[np.ndarray], np.ndarray]
BUILTIN_AGENTS = ("braitenberg", "cast_and_surge", "random")


def _odor_channels(env: gym.Env) -> int:
    config = getattr(env.unwrapped, "config", None)
    channels = getattr(config, "channels", None)
    if channels is None:
        raise ValueError(
            f"the braitenberg agent needs an odor environment (with odor channels); "
            f"{env.spec.id if env.spec else env} has none"
        )
    return int(channels)


def _cast_and_surge(env: gym.Env):
    from flyenv.policies.cast_and_surge import CastAndSurgeConfig, CastAndSurgePolicy

    config = getattr(env.unwrapped, "config", None)
    shape = env.observation_space.shape
    if getattr(config, "observation", None) != "intensity" or shape != (9,):
        raise ValueError(
            "the cast_and_surge agent reads PlumeTracking's intensity observation (9 values: "
            f"odor, wind, self-motion); {env.spec.id if env.spec else env} gives {shape}"
        )
    return CastAndSurgePolicy(CastAndSurgeConfig(control_period_s=config.control_period_s))


def sb3_algorithm(path: Path):
    """Tell the algorithm of an SB3 zip from the hyperparameters it saved."""
    import json

    import stable_baselines3 as sb3

    try:
        with zipfile.ZipFile(path) as zf:
            data = json.loads(zf.read("data"))
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a stable-baselines3 model zip ({exc})") from None
    if "clip_range" in data:
        from flyenv.policies.sb3_recurrent import is_recurrent_zip

        if is_recurrent_zip(path):
            from sb3_contrib import RecurrentPPO

            return RecurrentPPO
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
        agent: ``"braitenberg"``, ``"cast_and_surge"``, ``"random"``, or a path to a
            checkpoint.
    """
    if agent == "braitenberg":
        from flyenv.policies.braitenberg import BraitenbergPolicy

        return BraitenbergPolicy(_odor_channels(env))
    if agent == "cast_and_surge":
        return _cast_and_surge(env)
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
        algo = sb3_algorithm(path)
        model = algo.load(path, device="cpu")
        from flyenv.policies.sb3_recurrent import RecurrentSB3Policy, is_recurrent_model

        if is_recurrent_model(model):  # hidden state carried; reset() at every episode
            return RecurrentSB3Policy(model)
        return lambda obs: model.predict(obs, deterministic=True)[0]
    if path.suffix == ".pt":
        from flyenv.policies.torch_policy import StatefulTorchPolicy

        module = build_brain_from_checkpoint(path)
        expected = getattr(module, "observation_size", None)
        got = env.observation_space.shape[0]
        if expected is not None and expected != got:
            raise ValueError(
                f"{path} expects observations of size {expected} but the env gives {got}; make the env "
                f"with the checkpoint's keywords: {checkpoint_env_kwargs(path)}"
            )
        return StatefulTorchPolicy(module)
    raise ValueError(
        f"{path}: unknown checkpoint type {path.suffix!r}; expected .zip (SB3) or .pt (flyenv brain)"
    )


# Factories whose module moved when flyenv.brains was grouped by brain; checkpoints
# written before (the shipped olfactory_brain_bptt.pt among them) name the old path.
_MOVED_FACTORIES = {
    "flyenv.brains.olfactory_policy:OlfactoryBrainPolicy": (
        "flyenv.brains.olfactory.policy:OlfactoryBrainPolicy"
    ),
}


def _factory(spec: dict):
    import importlib

    try:
        name = _MOVED_FACTORIES.get(spec["factory"], spec["factory"])
        module_name, attr = name.split(":")
        return getattr(importlib.import_module(module_name), attr)
    except (KeyError, ValueError, ImportError, AttributeError) as exc:
        raise ValueError(
            f"checkpoint's policy_spec {spec!r} names no importable factory ({exc})"
        ) from None


def build_brain_from_checkpoint(path: str | Path):
    """Rebuild the trained module of a BPTT checkpoint (weights loaded, eval mode)."""
    from flyenv.training.checkpoint import load_checkpoint

    ck = load_checkpoint(path)
    if ck.get("format") != "flyenv-bptt-checkpoint":
        raise ValueError(f"{path} is not a flyenv brain checkpoint (format {ck.get('format')!r})")
    spec = ck.get("policy_spec") or {}
    module = _factory(spec)(**spec.get("kwargs", {}))
    module.load_state_dict(ck["policy_state"])
    return module.eval()


def checkpoint_env_kwargs(path: str | Path) -> dict:
    """The env keywords a checkpoint was trained with ({} for other agents). An SB3 zip
    carries them as the model attribute ``flyenv_env_kwargs`` (set by the flyenv RL
    agents before saving)."""
    path = Path(path)
    if path.suffix == ".zip" and path.exists():
        import json

        try:
            with zipfile.ZipFile(path) as zf:
                data = json.loads(zf.read("data"))
        except (zipfile.BadZipFile, KeyError, json.JSONDecodeError):
            return {}
        kwargs = dict(data.get("flyenv_env_kwargs") or {})
        kwargs.pop("time_limit_s", None)
        if "odor_names" in kwargs:
            kwargs["odor_names"] = tuple(kwargs["odor_names"])
        return kwargs
    if path.suffix != ".pt" or not path.exists():
        return {}
    from flyenv.training.checkpoint import load_checkpoint

    kwargs = dict(load_checkpoint(path).get("env_kwargs") or {})
    kwargs.pop("time_limit_s", None)  # training episode length, not the evaluation's
    return kwargs
