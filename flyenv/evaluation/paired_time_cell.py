"""Is a trained agent as fast as a scripted one? Both on the same twin starts, compared
start by start, as a ``flyenv sweep`` cell.

Mean time to the source over each agent's own successful episodes compares different
sets of starts (a policy that fails on the hard starts looks faster). This cell runs a
trained SB3 agent and a scripted agent (``flyenv.evaluation.plume_baselines``) on the
same ``starts`` twin starts and reports:

* ``paired.time_difference_s``: mean over the starts that *both* solve of (agent's time
  - scripted agent's time); negative means the trained agent is faster;
* ``paired.median_time_difference_s``: the median of the same differences (the
  scripted agent's casting after a lost plume makes a long tail of slow starts, so the
  mean and the median can disagree);
* ``paired.agent_faster_fraction``: the share of those starts on which the trained
  agent is strictly faster;
* ``paired.censored_time_difference_s``: the same difference over *all* starts, each
  failure counted at the episode limit (a failure is never faster than a success);
* ``paired.both_success``: how many starts both solve, and each agent's
  ``twin_50`` row (with its per-start ``times_s`` and ``path_lengths_mm``);
* why one is slower, on the starts both solve: ``paired.agent_path_both_mm`` /
  ``scripted_path_both_mm`` (mean walked path) and ``agent_speed_both_mm_s`` /
  ``scripted_speed_both_mm_s`` (mean of each start's path / time): a longer path or a
  slower walk.

Config keys::

    agent = "runs/sweeps/<sweep>/cells/<config>/seed_{seed}/best_model.zip"
    against = "cast_and_surge"   # or "upwind_only" (plume_baselines.AGENTS, not "random")
    cast_and_surge = {}          # CastAndSurgeConfig keywords for the scripted agent
    env = "flyenv/PlumeTracking-kinematic-v0"
    starts = 50
    start_seed = TEST_SEED       # the agents' own test starts
    start_sets = 1               # K > 1: also the streams start_seed + 1 .. + K - 1, pooled

With ``start_sets = K`` both agents run on K sets of ``starts`` (the streams
``start_seed + k``: with the default, set 0 is the test starts and sets 1-4 are the
scripted rows' further start sets, none used to select a checkpoint) and the paired
numbers are over all K x ``starts`` starts; the agent's row is then ``twin_<K x starts>``
(``twin_50`` for one set of 50).

The scripted agent reads the plume's intensity observation; the trained agent the
keywords saved in its zip (e.g. ``observation="orn"``). Everything else (wind, plume,
episode limit, start ranges) is the zip's, for both, so the starts are the same.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from flyenv.rl import evaluation as ev

KNOWN_KEYS = {
    "name",
    "agent",
    "against",
    "cast_and_surge",
    "env",
    "starts",
    "start_seed",
    "start_sets",
}
OBSERVATION_KEYS = ("observation", "odor_name")
"""Env keywords that choose what the agent reads; the scripted agent gets the default."""


def paired_times(
    agent: ev.EvalResult, scripted: ev.EvalResult, time_limit_s: float
) -> dict[str, Any]:
    """Start-by-start comparison of two evaluations of the same starts (module docstring)."""
    if agent.starts != scripted.starts or agent.seed != scripted.seed:
        raise ValueError(
            f"the evaluations are not on the same starts: {agent.starts} starts of stream "
            f"{agent.seed} vs {scripted.starts} of stream {scripted.seed}"
        )
    if len(agent.times_s) != agent.starts or len(scripted.times_s) != scripted.starts:
        raise ValueError("both evaluations need per-start times_s (EvalResult.times_s)")
    a_ok, s_ok = np.asarray(agent.successes, bool), np.asarray(scripted.successes, bool)
    a_t, s_t = np.asarray(agent.times_s, float), np.asarray(scripted.times_s, float)
    both = a_ok & s_ok
    diff = a_t[both] - s_t[both]
    censored = np.where(a_ok, a_t, time_limit_s) - np.where(s_ok, s_t, time_limit_s)
    paths: dict[str, float | None] = {}
    for who, res, t in (("agent", agent, a_t), ("scripted", scripted, s_t)):
        have = len(res.path_lengths_mm) == res.starts and both.any()
        p = np.asarray(res.path_lengths_mm, float)[both] if have else None
        paths[f"{who}_path_both_mm"] = float(p.mean()) if have else None
        paths[f"{who}_speed_both_mm_s"] = float((p / t[both]).mean()) if have else None
    return {
        "both_success": int(both.sum()),
        "agent_only_success": int((a_ok & ~s_ok).sum()),
        "scripted_only_success": int((~a_ok & s_ok).sum()),
        "time_difference_s": float(diff.mean()) if both.any() else None,
        "median_time_difference_s": float(np.median(diff)) if both.any() else None,
        "agent_faster_fraction": float((diff < 0).mean()) if both.any() else None,
        "agent_time_both_s": float(a_t[both].mean()) if both.any() else None,
        "scripted_time_both_s": float(s_t[both].mean()) if both.any() else None,
        "censored_time_difference_s": float(censored.mean()),
        "time_limit_s": float(time_limit_s),
        **paths,
    }


def env_timing(env_id: str, env_kwargs: dict[str, Any]) -> tuple[float, float]:
    """(control period, episode limit) in s of ``gym.make(env_id, **env_kwargs)``: what a
    scripted agent's clock and the censored time difference need."""
    import gymnasium as gym

    probe = gym.make(env_id, **env_kwargs)
    config = probe.unwrapped.config
    probe.close()
    return float(config.control_period_s), float(config.time_limit_s)


def paired_time_cell(config: dict[str, Any], seed: int, run_dir: Path) -> dict[str, Any]:
    """One training seed's model against a scripted agent on the same twin starts."""

    from flyenv.evaluation.plume_baselines import make_scripted
    from flyenv.evaluation.transfer_cell import twin_agent_and_env
    from flyenv.policies.loading import checkpoint_env_kwargs, sb3_algorithm
    from flyenv.rl.sb3_training import TEST_SEED

    unknown = set(config) - KNOWN_KEYS
    if unknown:
        raise ValueError(
            f"unknown paired_time_cell keys {sorted(unknown)}; known: {sorted(KNOWN_KEYS)}"
        )
    agent, env_id = twin_agent_and_env(config, seed, "paired_time_cell")
    against = config.get("against", "cast_and_surge")
    if against not in ("cast_and_surge", "upwind_only"):
        raise ValueError(f"against={against!r}: use 'cast_and_surge' or 'upwind_only'")
    n, start_seed = int(config.get("starts", 50)), int(config.get("start_seed", TEST_SEED))
    start_sets = int(config.get("start_sets", 1))
    if n < 1 or start_sets < 1:
        raise ValueError(f"starts={n} and start_sets={start_sets} must both be >= 1")
    agent_kwargs = checkpoint_env_kwargs(agent)
    scripted_kwargs = {k: v for k, v in agent_kwargs.items() if k not in OBSERVATION_KEYS}
    period_s, time_limit_s = env_timing(env_id, scripted_kwargs)

    model = sb3_algorithm(agent).load(agent, device="cpu")
    batch_policy, _ = ev.sb3_policy_factories(model)
    csc = config.get("cast_and_surge")
    trained, scripted = [], []
    for stream in range(start_seed, start_seed + start_sets):
        trained.append(ev.evaluate_twin(batch_policy, env_id, agent_kwargs, n, stream))
        scripted.append(
            ev.evaluate_twin(
                lambda _: make_scripted(against, csc, seed, period_s),
                env_id,
                scripted_kwargs,
                n,
                stream,
            )
        )
    trained, scripted = ev.pool_results(trained), ev.pool_results(scripted)
    return {
        "agent": str(agent),
        "against": against,
        "env_kwargs": agent_kwargs,
        "start_sets": start_sets,
        f"twin_{trained.starts}": trained.as_dict(),
        "scripted": scripted.as_dict(),
        "paired": paired_times(trained, scripted, time_limit_s),
    }


__all__ = ["env_timing", "paired_time_cell", "paired_times"]
