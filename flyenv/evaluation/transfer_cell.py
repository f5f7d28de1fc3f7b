"""Trained agents evaluated where they were not trained, as ``flyenv sweep`` cells:
``mujoco_cell`` on the MuJoCo body, ``twin_cell`` on other starts of the twin (e.g. the
plume's wide crosswind starts, where the wind alone no longer finds the source).

The RL agents train on the batched twin; whether the learned behaviour survives the
MuJoCo body is the transfer check. A MuJoCo plume episode costs minutes of CPU here, so
the agents' own runs usually skip it (``mujoco_eval_starts = 0``) and this cell runs it
afterwards on the models a sweep left behind.

Config keys::

    agent = "runs/sweeps/<sweep>/cells/<config>/seed_{seed}/best_model.zip"
                       # an SB3 zip (``{seed}`` is replaced by the cell's seed, the
                       # training seed) or a built-in agent name (flyenv.policies.loading)
    env = "flyenv/PlumeTracking-v0"     # a MuJoCo env id
    env_kwargs = {}    # default: the keywords saved in the zip (e.g. observation="orn")
    starts = 2         # episodes, seeds mujoco_seed, mujoco_seed + 1, ...
    mujoco_seed = 10_000   # the RL agents' MuJoCo starts begin here
    time_limit_s = 10.0    # optional episode limit
    ablation = "mbon_dn_zeroed"  # optional: a brain ablation of a spiking zip
                                 # (flyenv.brains.olfactory.brain.ABLATIONS), the MuJoCo
                                 # side of the agent's twin ablation rows

Every training seed's model runs the same episodes, so the spread over seeds is the
spread over trained models, not over starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym

from flyenv.rl import evaluation as ev

KNOWN_KEYS = {
    "name",
    "agent",
    "env",
    "env_kwargs",
    "starts",
    "mujoco_seed",
    "time_limit_s",
    "ablation",
}


def mujoco_cell(config: dict[str, Any], seed: int, run_dir: Path) -> dict[str, Any]:
    """Success and time to source of one trained agent over ``starts`` MuJoCo episodes."""
    from flyenv.policies.loading import BUILTIN_AGENTS, checkpoint_env_kwargs, load_policy

    unknown = set(config) - KNOWN_KEYS
    if unknown:
        raise ValueError(f"unknown mujoco_cell keys {sorted(unknown)}; known: {sorted(KNOWN_KEYS)}")
    if "agent" not in config:
        raise ValueError("mujoco_cell needs 'agent': an SB3 zip path (with {seed}) or a name")
    agent = str(config["agent"]).replace("{seed}", str(seed))
    env_id = config.get("env", "flyenv/PlumeTracking-v0")
    if "kinematic" in env_id:
        raise ValueError(f"env={env_id!r} is a twin id; give the MuJoCo id (without -kinematic)")
    if agent not in BUILTIN_AGENTS and not Path(agent).exists():
        raise ValueError(f"agent {agent!r} is neither a built-in agent nor an existing file")
    env_kwargs = config.get("env_kwargs")
    if env_kwargs is None:
        env_kwargs = checkpoint_env_kwargs(agent) if agent not in BUILTIN_AGENTS else {}
    env_kwargs = dict(env_kwargs)
    env_kwargs.pop("time_limit_s", None)
    if config.get("time_limit_s") is not None:
        env_kwargs["time_limit_s"] = float(config["time_limit_s"])
    starts = int(config.get("starts", 2))
    if starts < 1:
        raise ValueError(f"starts must be >= 1, got {starts}")
    ablation = config.get("ablation")

    def make_policy():
        if ablation is not None:
            return ablated_policy(agent, str(ablation))
        probe = gym.make(env_id, **env_kwargs)  # load_policy checks the spaces against it
        try:
            return load_policy(agent, probe)
        finally:
            probe.close()

    result = ev.evaluate_mujoco(
        make_policy, env_id, env_kwargs, starts, int(config.get("mujoco_seed", 10_000)), False
    )
    out = {"agent": agent, "env_kwargs": env_kwargs, "mujoco": result.as_dict()}
    if ablation is not None:
        out["ablation"] = str(ablation)
    return out


def load_model(agent: str | Path, ablation: str | None = None):
    """An SB3 zip, with one brain ablation applied if ``ablation`` is given
    (``flyenv.brains.olfactory.brain.ablate``, as the agents' twin ablation rows apply it;
    spiking zips only)."""
    from flyenv.brains.olfactory.brain import ABLATIONS, ablate
    from flyenv.policies.loading import sb3_algorithm
    from flyenv.rl.sb3_training import policy_brain

    if ablation is not None and ablation not in ABLATIONS:
        raise ValueError(f"unknown ablation {ablation!r}; choose from {list(ABLATIONS)}")
    if not str(agent).endswith(".zip"):
        need = f"ablation={ablation!r} needs a spiking SB3 zip" if ablation else "need an SB3 zip"
        raise ValueError(f"{need} as agent, not {agent!r}")
    model = sb3_algorithm(Path(agent)).load(agent, device="cpu")
    if ablation is not None:
        brain = policy_brain(model)
        if brain is None:
            raise ValueError(
                f"{agent} has no spiking brain to ablate (policy {type(model.policy).__name__})"
            )
        ablate(brain, ablation)
    return model


def ablated_policy(agent: str, ablation: str):
    """The deterministic MuJoCo policy of a spiking SB3 zip with one brain ablation."""
    return ev.sb3_policy_factories(load_model(agent, ablation))[1]()


def twin_agent_and_env(config: dict[str, Any], seed: int, cell: str) -> tuple[Path, str]:
    """The SB3 zip of ``config["agent"]`` (``{seed}`` replaced by ``seed``) and the twin
    env id ``config["env"]`` (default the plume twin), both checked; ``cell`` names the
    caller in the errors."""
    agent = Path(str(config.get("agent", "")).replace("{seed}", str(seed)))
    if agent.suffix != ".zip" or not agent.exists():
        raise ValueError(f"{cell} needs 'agent': an existing SB3 zip (with {{seed}}), got {agent}")
    env_id = config.get("env", "flyenv/PlumeTracking-kinematic-v0")
    if "kinematic" not in env_id:
        raise ValueError(f"env={env_id!r} is not a twin id (flyenv/<Task>-kinematic-v0)")
    return agent, env_id


def twin_cell(config: dict[str, Any], seed: int, run_dir: Path) -> dict[str, Any]:
    """Success of one trained agent on ``starts`` twin starts of the stream ``start_seed``
    (default ``TEST_SEED``, the agents' own test starts) with ``env_kwargs`` laid over the
    keywords saved in the zip, e.g. ``{start_crosswind_mm = [-30, 30]}``. Keys: ``agent``
    (a zip path with ``{seed}``), ``env`` (a twin id), ``env_kwargs``, ``starts`` (50),
    ``start_seed``, ``time_limit_s``, ``ablation`` (a brain ablation of a spiking zip, as
    in ``mujoco_cell``)."""
    from flyenv.policies.loading import checkpoint_env_kwargs
    from flyenv.rl.sb3_training import TEST_SEED

    known = {
        "name",
        "agent",
        "env",
        "env_kwargs",
        "starts",
        "start_seed",
        "time_limit_s",
        "ablation",
    }
    unknown = set(config) - known
    if unknown:
        raise ValueError(f"unknown twin_cell keys {sorted(unknown)}; known: {sorted(known)}")
    agent, env_id = twin_agent_and_env(config, seed, "twin_cell")
    env_kwargs = {**checkpoint_env_kwargs(agent), **dict(config.get("env_kwargs") or {})}
    if config.get("time_limit_s") is not None:
        env_kwargs["time_limit_s"] = float(config["time_limit_s"])
    ablation = config.get("ablation")
    model = load_model(agent, None if ablation is None else str(ablation))
    batch_policy, _ = ev.sb3_policy_factories(model)
    n, start_seed = int(config.get("starts", 50)), int(config.get("start_seed", TEST_SEED))
    result = ev.evaluate_twin(batch_policy, env_id, env_kwargs, n, start_seed)
    out = {"agent": str(agent), "env_kwargs": env_kwargs, "twin_50": result.as_dict()}
    if ablation is not None:
        out["ablation"] = str(ablation)
    return out


__all__ = ["mujoco_cell", "twin_agent_and_env", "twin_cell"]
