"""Scripted PlumeTracking baselines as a ``flyenv sweep`` cell: the rows the RL agents
are compared with, on the same starts.

Agents (``config["agent"]``):

* ``"cast_and_surge"``: ``flyenv.policies.cast_and_surge.CastAndSurgePolicy`` (surge
  upwind on odor hits, widening crosswind casts after losing the plume); its settings
  from ``config["cast_and_surge"]`` (``CastAndSurgeConfig`` keywords).
* ``"upwind_only"``: the same agent with ``cast_angle_deg = 0``: it walks into the wind
  whatever the odor (the wind-alone control: how far the task is solved without odor).
* ``"random"``: uniform random actions in [-1, 1] (``default_rng(seed)``).

Starts: the seed is a start set. Twin: ``twin_starts`` (default 50) starts of the stream
``TEST_SEED + seed``, so seed 0 is exactly the 50 test starts of every RL agent's
``twin_50`` row (``flyenv.rl.sb3_training.TEST_SEED``); seeds 1, 2, ... are further,
disjoint start sets. MuJoCo: ``mujoco_starts`` (default 0) episodes with seeds
``10_000 + 100 * seed + i``; seed 0 gives 10,000, 10,001, ..., the RL agents' MuJoCo
starts.

Other keys: ``env_kwargs`` (PlumeTracking keywords, e.g. ``start_crosswind_mm``; the
intensity observation is what the scripted agents read), ``time_limit_s``.

``brain_cell`` puts the untrained spiking brain on the same start sets: the recurrent
policy's brain (``RECURRENT_BRAIN_DEFAULTS`` + ``brain_config``, e.g. the wind pathway
and its odor gate), state carried through each episode, optionally with one part
ablated (``ablation``), on the ORN observation of the plume's odor (ethyl acetate). Its
initialisation is deterministic, so it is the innate behaviour of a model choice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from flyenv.policies.cast_and_surge import CastAndSurgeConfig, CastAndSurgePolicy
from flyenv.rl import evaluation as ev
from flyenv.rl.sb3_training import TEST_SEED

AGENTS = ("cast_and_surge", "upwind_only", "random")
TWIN_ID = "flyenv/PlumeTracking-kinematic-v0"
MUJOCO_ID = "flyenv/PlumeTracking-v0"
MUJOCO_SEED = 10_000
MUJOCO_SEEDS_PER_SET = 100
KNOWN_KEYS = {
    "name",
    "agent",
    "cast_and_surge",
    "env_kwargs",
    "twin_starts",
    "mujoco_starts",
    "time_limit_s",
}


class RandomPolicy:
    """Uniform random left/right drive in [-1, 1], one row per observation row."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        shape = (2,) if np.ndim(obs) == 1 else (len(obs), 2)
        return self.rng.uniform(-1.0, 1.0, shape).astype(np.float32)


def make_scripted(agent: str, cast_and_surge: dict[str, Any] | None, seed: int, period_s: float):
    """A fresh policy ``obs -> action`` (batch or single) for ``agent`` (``AGENTS``)."""
    if agent not in AGENTS:
        raise ValueError(f"agent={agent!r}: use one of {AGENTS}")
    if agent == "random":
        return RandomPolicy(seed)
    kw = {"control_period_s": period_s, **(cast_and_surge or {})}
    if agent == "upwind_only":
        kw["cast_angle_deg"] = 0.0
    return CastAndSurgePolicy(CastAndSurgeConfig(**kw))


def scripted_cell(config: dict[str, Any], seed: int, run_dir: Path) -> dict[str, Any]:
    """Twin (and optionally MuJoCo) success and time to source of one scripted agent on
    one start set (module docstring). Returns ``twin_50`` and ``mujoco`` like the RL
    agents' ``results.json``, so the same sweep metrics read both."""
    unknown = set(config) - KNOWN_KEYS
    if unknown:
        raise ValueError(
            f"unknown scripted_cell keys {sorted(unknown)}; known: {sorted(KNOWN_KEYS)}"
        )
    if seed < 0:
        raise ValueError(f"the seed is a start-set index and must be >= 0, got {seed}")
    agent = config.get("agent", "cast_and_surge")
    env_kwargs = dict(config.get("env_kwargs") or {})
    if env_kwargs.get("observation", "intensity") != "intensity":
        raise ValueError("the scripted agents read the intensity observation; drop 'observation'")
    if config.get("time_limit_s") is not None:
        env_kwargs["time_limit_s"] = float(config["time_limit_s"])
    period = float(env_kwargs.get("control_period_s", 0.01))
    csc = config.get("cast_and_surge")
    out = _on_start_set(
        lambda n: make_scripted(agent, csc, seed, period),
        lambda: make_scripted(agent, csc, seed, period),
        env_kwargs,
        config,
        seed,
    )
    return {"agent": agent, **out}


def _on_start_set(make_batch, make_single, env_kwargs: dict, config: dict, seed: int) -> dict:
    """``twin_50`` (``twin_starts`` of the stream ``TEST_SEED + seed``) and, if
    ``mujoco_starts`` > 0, ``mujoco`` (episodes ``MUJOCO_SEED + 100 seed + i``)."""
    n_mj = int(config.get("mujoco_starts", 0))
    if n_mj > MUJOCO_SEEDS_PER_SET:
        raise ValueError(
            f"mujoco_starts={n_mj} > {MUJOCO_SEEDS_PER_SET} (start sets would overlap)"
        )
    n_twin = int(config.get("twin_starts", 50))
    twin = ev.evaluate_twin(make_batch, TWIN_ID, env_kwargs, n_twin, TEST_SEED + seed)
    out: dict[str, Any] = {"twin_50": twin.as_dict()}
    if n_mj:
        first = MUJOCO_SEED + MUJOCO_SEEDS_PER_SET * seed
        mj = ev.evaluate_mujoco(make_single, MUJOCO_ID, env_kwargs, n_mj, first, progress=False)
        out["mujoco"] = mj.as_dict()
    return out


def brain_cell(config: dict[str, Any], seed: int, run_dir: Path) -> dict[str, Any]:
    """Twin success of the untrained (innate) spiking brain on start set ``seed``
    (module docstring), and over ``mujoco_starts`` MuJoCo episodes (default 0; seeds as
    ``scripted_cell``'s). Keys: ``brain_config``, ``ablation`` ("intact"), ``env_kwargs``,
    ``twin_starts`` (50), ``mujoco_starts``, ``time_limit_s``."""
    import torch

    from flyenv.brains.olfactory.brain import OlfactoryBrain, OlfactoryBrainConfig, ablate
    from flyenv.rl.recurrent_spiking_policy import RECURRENT_BRAIN_DEFAULTS
    from flyenv.rl.sb3_training import PLUME_SPIKING_ENV_KWARGS

    known = {
        "name",
        "brain_config",
        "ablation",
        "env_kwargs",
        "twin_starts",
        "mujoco_starts",
        "time_limit_s",
    }
    unknown = set(config) - known
    if unknown:
        raise ValueError(f"unknown brain_cell keys {sorted(unknown)}; known: {sorted(known)}")
    if seed < 0:
        raise ValueError(f"the seed is a start-set index and must be >= 0, got {seed}")
    cfg = {**RECURRENT_BRAIN_DEFAULTS, **dict(config.get("brain_config") or {})}
    brain = ablate(OlfactoryBrain(OlfactoryBrainConfig(**cfg)), config.get("ablation", "intact"))
    env_kwargs = {**PLUME_SPIKING_ENV_KWARGS, **dict(config.get("env_kwargs") or {})}
    if config.get("time_limit_s") is not None:
        env_kwargs["time_limit_s"] = float(config["time_limit_s"])
    from flyenv.policies.torch_policy import StatefulTorchPolicy

    with torch.no_grad():  # state carried through each episode, twin and MuJoCo
        out = _on_start_set(
            ev.stateful_batch_policy(brain),
            lambda: StatefulTorchPolicy(brain),
            env_kwargs,
            config,
            seed,
        )
    return {"brain_config": cfg, **out}


__all__ = ["AGENTS", "RandomPolicy", "brain_cell", "make_scripted", "scripted_cell"]
