"""Success rate and time to source of a policy over a fixed set of starts.

One function per body: ``evaluate_twin`` runs all starts at once in the batched twin
(``gym.make_vec``; the first episode of each env counts), ``evaluate_mujoco`` runs them
one after the other in the MuJoCo env (``flyenv.recording.run_episode``, seeds
``seed .. seed + n - 1``). Policies are given as factories so a stateful policy (the
BPTT brain) starts every episode from rest:

* twin: ``make_batch_policy(n) -> policy(obs (n, D)) -> actions (n, 2)``
* MuJoCo: ``make_policy() -> policy(obs (D,)) -> action (2,)`` (with ``reset()`` if stateful)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import gymnasium as gym
import numpy as np
from tqdm import tqdm

import flyenv  # noqa: F401  (registers the environments)


@dataclass
class EvalResult:
    env_id: str
    starts: int
    seed: int
    success_rate: float
    mean_time_to_source_s: float | None
    """Mean over the successful episodes (None if none succeeded)."""
    wall_time_s: float
    successes: list[bool] = field(default_factory=list)
    mean_final_distance_mm: float | None = None
    """Mean over all starts of the distance to the source when the episode ended."""
    times_s: list[float] = field(default_factory=list)
    """Each start's episode length (s), successful or not, in start order (for paired
    comparisons of two agents on the same starts)."""
    path_lengths_mm: list[float] = field(default_factory=list)
    """Each start's walked path length (mm; sum of the thorax displacements per control
    step), in start order; twin only (empty for MuJoCo)."""

    def as_dict(self) -> dict:
        return asdict(self)


def _summary(
    env_id, n, seed, success, times, wall, final_distance=None, path_lengths=None
) -> EvalResult:
    success = np.asarray(success, dtype=bool)
    times = np.asarray(times, dtype=float)
    final = None if final_distance is None else float(np.mean(final_distance))
    return EvalResult(
        env_id=env_id,
        starts=n,
        seed=seed,
        success_rate=float(success.mean()),
        mean_time_to_source_s=float(times[success].mean()) if success.any() else None,
        wall_time_s=wall,
        successes=success.tolist(),
        mean_final_distance_mm=final,
        times_s=times.tolist(),
        path_lengths_mm=[] if path_lengths is None else np.asarray(path_lengths, float).tolist(),
    )


def pool_results(results: list[EvalResult]) -> EvalResult:
    """One result over the starts of several evaluations of the same env (e.g. start sets
    from consecutive streams), start order kept; ``seed`` is the first one's.
    ``wall_time_s`` is the sum."""
    if not results:
        raise ValueError("pool_results needs at least one EvalResult")
    if len({r.env_id for r in results}) > 1:
        raise ValueError(f"cannot pool results of different envs: {[r.env_id for r in results]}")
    if len(results) == 1:
        return results[0]
    cat = lambda name: [v for r in results for v in getattr(r, name)]  # noqa: E731
    times, paths, finals = cat("times_s"), cat("path_lengths_mm"), None
    if len(times) != sum(r.starts for r in results):
        raise ValueError("pooling needs every result's per-start times_s")
    if all(r.mean_final_distance_mm is not None for r in results):
        n = sum(r.starts for r in results)
        finals = [sum(r.mean_final_distance_mm * r.starts for r in results) / n]
    return _summary(
        results[0].env_id,
        len(times),
        results[0].seed,
        cat("successes"),
        times,
        sum(r.wall_time_s for r in results),
        finals,
        paths if len(paths) == len(times) else None,
    )


def evaluate_twin(
    make_batch_policy: Callable[[int], Callable[[np.ndarray], np.ndarray]],
    env_id: str = "flyenv/OdorTaxis-kinematic-v0",
    env_kwargs: dict | None = None,
    n_starts: int = 50,
    seed: int = 0,
    on_step: Callable[[np.ndarray, dict, np.ndarray, np.ndarray], None] | None = None,
) -> EvalResult:
    """First episode of each of ``n_starts`` twin flies (one random stream from ``seed``).

    ``on_step(actions, info, active, ended)``, if given, sees every step: the actions
    sent, the step's info, which flies were still in their first episode and which ended
    it on this step (their last info is ``info["final_info"]``), e.g. to record traces."""
    t0 = time.time()
    venv = gym.make_vec(env_id, num_envs=n_starts, **(env_kwargs or {}))
    policy = make_batch_policy(n_starts)
    obs, info = venv.reset(seed=seed)
    dt = getattr(venv, "unwrapped", venv).config.control_period_s
    done = np.zeros(n_starts, dtype=bool)
    success = np.zeros(n_starts, dtype=bool)
    steps = np.zeros(n_starts, dtype=int)
    final_distance = np.zeros(n_starts)
    position = np.asarray(info["position_mm"], float)
    path = np.zeros(n_starts)
    while not done.all():
        actions = np.asarray(policy(obs), np.float32)
        obs, _, terminated, truncated, info = venv.step(actions)
        ended = (terminated | truncated) & ~done
        if on_step is not None:
            on_step(actions, info, ~done, ended)
        steps[~done] += 1
        now = np.asarray(info["position_mm"], float)
        if ended.any():  # the ended episodes' last info (their rows now hold the next episode)
            # is_success, not `terminated`: leaving the plume domain or choosing the
            # unrewarded odor also terminates
            success[ended] = info["final_info"]["is_success"][ended]
            final_distance[ended] = info["final_info"]["distance_mm"][ended]
            now[ended] = np.asarray(info["final_info"]["position_mm"], float)[ended]
        path[~done] += np.linalg.norm(now - position, axis=1)[~done]
        position = now
        done |= ended
    venv.close()
    return _summary(
        env_id, n_starts, seed, success, steps * dt, time.time() - t0, final_distance, path
    )


def evaluate_mujoco(
    make_policy: Callable[[], Callable[[np.ndarray], np.ndarray]],
    env_id: str = "flyenv/OdorTaxis-v0",
    env_kwargs: dict | None = None,
    n_starts: int = 10,
    seed: int = 10_000,
    progress: bool = True,
) -> EvalResult:
    """``n_starts`` MuJoCo episodes with seeds ``seed, seed + 1, ...``."""
    from flyenv.recording import run_episode

    t0 = time.time()
    env = gym.make(env_id, **(env_kwargs or {}))
    policy = make_policy()
    episodes = [
        run_episode(env, policy, seed=seed + i)
        for i in tqdm(range(n_starts), desc=f"{env_id} starts", disable=not progress)
    ]
    env.close()
    return _summary(
        env_id,
        n_starts,
        seed,
        [e.is_success for e in episodes],
        [e.time_s for e in episodes],
        time.time() - t0,
        [np.nan if e.final_distance_mm is None else e.final_distance_mm for e in episodes],
    )


def stateful_batch_policy(module) -> Callable[[int], Callable[[np.ndarray], np.ndarray]]:
    """A module of the BPTT policy protocol (``init_state``, ``step``; e.g. the BPTT
    brain) as a twin batch-policy factory: state from rest, carried step to step."""
    import torch

    def make(n: int) -> Callable[[np.ndarray], np.ndarray]:
        state = [module.init_state(n)]

        @torch.no_grad()
        def act(obs: np.ndarray) -> np.ndarray:
            action, state[0], _ = module.step(torch.as_tensor(obs, dtype=torch.float32), state[0])
            return action.numpy()

        return act

    return make


def sb3_batch_policy(model) -> Callable[[int], Callable[[np.ndarray], np.ndarray]]:
    """A deterministic SB3 model as a twin batch-policy factory."""
    return lambda n: lambda obs: model.predict(obs, deterministic=True)[0]


def sb3_policy(model) -> Callable[[], Callable[[np.ndarray], np.ndarray]]:
    """A deterministic SB3 model as a MuJoCo policy factory."""
    return lambda: lambda obs: model.predict(obs, deterministic=True)[0]


def sb3_policy_factories(model):
    """(twin batch-policy factory, MuJoCo policy factory) of an SB3 model: deterministic,
    with the hidden state carried through each episode for recurrent models."""
    from flyenv.policies import sb3_recurrent

    if sb3_recurrent.is_recurrent_model(model):
        return sb3_recurrent.recurrent_batch_policy(model), sb3_recurrent.recurrent_policy(model)
    return sb3_batch_policy(model), sb3_policy(model)
