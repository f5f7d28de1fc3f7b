"""Performance index of an agent on ``OdorConditioning``: a ``flyenv sweep`` cell.

``conditioning_cell(config, seed, run_dir)`` runs ``n_episodes`` twin episodes (one
random stream, ``default_rng(seed)``; use seeds >= 1000 for reports) of one agent and
returns the T-maze performance index, overall and relative to the CS+, and for the brain
agents the KC coding level (fraction of KCs spiking per 10 ms agent step while the fly
smells an odor; nan for the scripted agent).

Config keys (all optional)::

    agent = "remembered_odor"   # the scripted memory agent (flyenv.policies.remembered_odor),
                                # "plastic_brain" (untrained plastic mushroom-body brain),
                                # "brain" (the same brain without plasticity), a path to
                                # a checkpoint of agents/bptt_odor_conditioning.py, or an
                                # SB3 zip (e.g. agents/recurrent_ppo.py's best_model.zip;
                                # "{seed}" in the path becomes the cell's seed)
    reinforcement = "reward"    # "reward", "punishment" or "none"
    pair_set = "heldout"        # "train", "heldout" or "all"
    n_episodes = 128
    cs_duration_s = 0.5, gap_s = 0.2, test_s = 3.0   # the BPTT agent's protocol
    training_cycles = 1         # CS+/CS- cycles before the test (OdorConditioningConfig)
    plasticity = {}             # MBPlasticityConfig fields ("plastic_brain")
    brain_config = {}           # OlfactoryBrainConfig overrides on top of the BPTT agent's
                                # brain ("plastic_brain", "brain")
    ablation = []               # brain agents: names of flyenv.brains.olfactory.brain.ABLATIONS
                                # applied after loading (e.g. ["no_plasticity"] on a trained
                                # checkpoint: its within-episode learning off)
    body = "twin"               # or "mujoco": flyenv/OdorConditioning-v0, one episode at a
                                # time (episode i has seed 1000 x seed + i), brain state
                                # and scripted memory reset before each

The same agent, protocol and pairs run on either body; on MuJoCo the KC coding level
is measured as on the twin and the similarity breakdown is over the episodes run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from flyenv.envs.walking_episodes import WalkingEpisodes
from flyenv.io import atomic_write_json
from flyenv.tasks.base import make_config
from flyenv.tasks.odor_conditioning import OdorConditioningConfig, OdorConditioningTask

KNOWN_KEYS = {
    "name",  # the sweep row's name
    "agent",
    "reinforcement",
    "pair_set",
    "n_episodes",
    "cs_duration_s",
    "gap_s",
    "test_s",
    "training_cycles",
    "plasticity",
    "brain_config",
    "threads",
    "body",
    "ablation",
}


def _batch_policy(
    agent: str,
    n: int,
    plasticity: dict,
    brain_config: dict | None = None,
    ablation: list[str] | tuple[str, ...] = (),
):
    """(act(obs, done) -> actions) for n flies; ``done`` marks flies whose episode ended."""
    if ablation and (agent == "remembered_odor" or str(agent).endswith(".zip")):
        raise ValueError(f"ablation {list(ablation)}: only the brain agents can be ablated")
    if agent == "remembered_odor":
        from flyenv.policies.remembered_odor import BatchRememberedOdorPolicy

        policy = BatchRememberedOdorPolicy(n)

        def act(obs: np.ndarray, done: np.ndarray) -> np.ndarray:
            policy.reset(done)
            return policy(obs)

        act.reset = policy.reset
        return act
    if str(agent).endswith(".zip"):  # an SB3 model (e.g. RecurrentPPO with the brain)
        return _sb3_policy(agent)
    from flyenv.brains.olfactory.policy import BPTT_BRAIN_DEFAULTS, OlfactoryBrainPolicy
    from flyenv.policies.loading import build_brain_from_checkpoint

    if agent in ("plastic_brain", "brain"):
        kwargs = {**BPTT_BRAIN_DEFAULTS, **(brain_config or {})}
        if agent == "plastic_brain":
            kwargs["plasticity"] = dict(plasticity)
        module = OlfactoryBrainPolicy(**kwargs)
    else:
        module = build_brain_from_checkpoint(agent)
    module.eval()
    brain = getattr(module, "brain", None)
    if ablation:
        from flyenv.brains.olfactory.brain import ablate

        if brain is None:
            raise ValueError(f"ablation {list(ablation)}: agent {agent!r} has no olfactory brain")
        for name in ablation:
            ablate(brain, name)
    state = [module.init_state(n)]
    n_orn = 2 * brain.n_glom if brain is not None else 0

    @torch.no_grad()
    def act(obs: np.ndarray, done: np.ndarray) -> np.ndarray:
        x = torch.as_tensor(obs, dtype=torch.float32)
        if brain is None:
            action, state[0], _ = module.step(x, state[0])
            return action.numpy()
        action, state[0], out = brain.step(x, state[0], summary=True)
        # KC coding level: fraction of KCs that spiked in this agent step, over flies and
        # sides that smell something
        smelling = x[:, :n_orn].sum(1) > 0
        if smelling.any():
            active = (out["rate_hz/KC"][smelling] > 0).float().mean()
            act.kc_active_sum += float(active) * int(smelling.sum())
            act.kc_active_n += int(smelling.sum())
        return action.numpy()

    def reset() -> None:  # every fly back to rest, plastic weights to baseline
        state[0] = module.init_state(n)

    act.reset = reset
    act.kc_active_sum, act.kc_active_n = 0.0, 0
    return act


def _sb3_policy(path: str):
    """A saved SB3 model (deterministic; a recurrent one carries its state through the
    episode, which ``reset()`` clears) as ``act(obs, done)``. The KC coding level is not
    measured for it."""
    from flyenv.policies.loading import sb3_algorithm
    from flyenv.policies.sb3_recurrent import RecurrentSB3Policy

    if not Path(path).exists():
        raise ValueError(f"agent {path!r}: no such SB3 model zip")
    model = sb3_algorithm(Path(path)).load(path, device="cpu")
    policy = RecurrentSB3Policy(model)

    def act(obs: np.ndarray, done: np.ndarray) -> np.ndarray:
        return policy(obs)

    act.reset = policy.reset
    return act


def similarity_breakdown(
    pairs: list[tuple[str, str]], pair_index: np.ndarray, outcome: np.ndarray
) -> dict[str, float]:
    """PI against the DoOR similarity of the episode's pair: Pearson r over pairs between
    per-pair PI and ``odor_similarity``, and PI over the episodes of the more similar and
    the less similar half of the pairs (split at the median similarity of the pairs seen)."""
    from flyenv.tasks.odor_choice import odor_similarity

    seen = sorted(set(int(i) for i in pair_index))
    sim = np.array([odor_similarity(*pairs[i]) for i in seen])
    pi = np.array([outcome[pair_index == i].mean() for i in seen])
    nan = float("nan")
    r = float(np.corrcoef(sim, pi)[0, 1]) if len(seen) > 2 and pi.std() > 0 else nan
    similar = np.isin(pair_index, np.array(seen)[sim > np.median(sim)])
    return {
        "pi_similarity_r": r,
        "performance_index_similar_pairs": float(outcome[similar].mean()) if similar.any() else nan,
        "performance_index_dissimilar_pairs": (
            float(outcome[~similar].mean()) if (~similar).any() else nan
        ),
    }


def conditioning_cell(config: dict[str, Any], seed: int, run_dir: Path) -> dict[str, Any]:
    unknown = set(config) - KNOWN_KEYS
    if unknown:
        raise ValueError(
            f"conditioning_cell: unknown config keys {sorted(unknown)}; known: {sorted(KNOWN_KEYS)}"
        )
    torch.set_num_threads(int(config.get("threads", 1)))
    n = int(config.get("n_episodes", 128))
    reinforcement = config.get("reinforcement", "reward")
    env = {
        "reinforcement": reinforcement,
        "pair_set": config.get("pair_set", "heldout"),
        "cs_duration_s": float(config.get("cs_duration_s", 0.5)),
        "gap_s": float(config.get("gap_s", 0.2)),
        "test_s": float(config.get("test_s", 3.0)),
        "training_cycles": int(config.get("training_cycles", 1)),
    }
    body = config.get("body", "twin")
    if body not in ("twin", "mujoco"):
        raise ValueError(f'conditioning_cell: body={body!r}; use "twin" or "mujoco"')
    cfg = make_config(OdorConditioningConfig, env, "conditioning_cell")
    act = _batch_policy(
        str(config.get("agent", "remembered_odor")).replace("{seed}", str(seed)),
        1 if body == "mujoco" else n,
        config.get("plasticity", {}),
        config.get("brain_config", {}),
        [config["ablation"]]
        if isinstance(config.get("ablation"), str)
        else config.get("ablation", []),
    )
    if body == "mujoco":
        outcome, chose_cs_plus, pairs, pair_index, cs_plus, failures = _run_mujoco(
            act, env, n, seed
        )
    else:
        outcome, chose_cs_plus, pairs, pair_index, cs_plus = _run_twin(act, cfg, n, seed)
        failures = 0  # the twin cannot flip
    correct, wrong = float((outcome == 1).mean()), float((outcome == -1).mean())
    n_plus = sum(c is True for c in chose_cs_plus)
    n_minus = sum(c is False for c in chose_cs_plus)
    kc_n = getattr(act, "kc_active_n", 0)
    by_similarity = similarity_breakdown(pairs, pair_index, outcome)
    result = {
        **by_similarity,
        "kc_coding_level": (act.kc_active_sum / kc_n) if kc_n else float("nan"),
        "performance_index": correct - wrong,
        "performance_index_cs_plus": (n_plus - n_minus) / n,
        "correct": correct,
        "wrong": wrong,
        "no_choice": 1.0 - correct - wrong,
        "n_episodes": n,
        "body_failures": failures / n,
        "config": json.loads(json.dumps(config, default=str)),
        # per episode, for analyses by pair or by odor after the sweep
        "episodes": {
            "odors": [list(pairs[int(i)]) for i in pair_index],
            "cs_plus_odor": [
                pairs[int(i)][int(c)] for i, c in zip(pair_index, cs_plus, strict=True)
            ],
            "outcome": [int(o) for o in outcome],
            "chose_cs_plus": [None if c is None else bool(c) for c in chose_cs_plus],
        },
    }
    atomic_write_json(Path(run_dir) / "conditioning_cell.json", result)
    return result


CHOICES = ("chose_rewarded", "chose_unrewarded")


def episode_outcome(info: dict) -> tuple[int, bool | None]:
    """(outcome +1 correct / -1 wrong / 0 no choice, chose the CS+ or None) of a
    terminated episode. Only reaching a source is a choice: a MuJoCo body that flipped
    or whose physics diverged made none (the env reports it as a failure, but counting
    it as the wrong source would also count it as a CS- choice in PI CS+)."""
    reason = info.get("termination_reason")
    if reason not in CHOICES:
        return 0, None
    return (1 if reason == "chose_rewarded" else -1), bool(info["chose_cs_plus"])


def _run_mujoco(act, env_kwargs: dict, n: int, seed: int):
    """n MuJoCo episodes one after the other: (outcome, chose_cs_plus, pairs, pair_index,
    CS+ source index, number of episodes ended by the body: flipped or diverging physics,
    no choice)."""
    import gymnasium as gym

    env = gym.make("flyenv/OdorConditioning-v0", **env_kwargs)
    task = env.unwrapped.task
    outcome = np.zeros(n, dtype=int)
    chose_cs_plus = np.full(n, None, dtype=object)
    pair_index = np.zeros(n, dtype=int)
    cs_plus = np.zeros(n, dtype=int)
    failures = 0
    for i in range(n):
        act.reset()
        obs, _ = env.reset(seed=1000 * seed + i)
        pair_index[i] = int(task.pair_index[0])
        cs_plus[i] = int(task.cs_plus[0])
        while True:
            action = act(np.asarray(obs, dtype=np.float32)[None], np.zeros(1, bool))[0]
            obs, _, terminated, truncated, info = env.step(action)
            if terminated or truncated:
                break
        if terminated:
            outcome[i], chose_cs_plus[i] = episode_outcome(info)
            failures += chose_cs_plus[i] is None
    env.close()
    return outcome, chose_cs_plus, task.pairs, pair_index, cs_plus, failures


def _run_twin(act, cfg: OdorConditioningConfig, n: int, seed: int):
    """n twin episodes at once: (outcome, chose_cs_plus, pairs, pair_index, CS+ source)."""
    episodes = WalkingEpisodes.twin(OdorConditioningTask, n, cfg)
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        obs, _ = episodes.reset(rng)
    ended = np.zeros(n, bool)
    outcome = np.zeros(n, dtype=int)  # +1 correct, -1 wrong, 0 no choice
    chose_cs_plus = np.full(n, None, dtype=object)
    for _ in range(cfg.max_episode_steps):
        actions = act(obs.numpy(), np.zeros(n, bool))
        with torch.no_grad():
            obs, _, terminated, _, extras = episodes.step(torch.as_tensor(actions))
        first = terminated.numpy() & ~ended
        success = extras["is_success"].numpy()
        outcome[first] = np.where(success[first], 1, -1)
        for i in np.flatnonzero(first):
            chose_cs_plus[i] = bool(extras["chose_cs_plus"][i])
        ended |= terminated.numpy()
        if ended.all():
            break
    task = episodes.task
    return (
        outcome,
        chose_cs_plus,
        task.pairs,
        task.pair_index.cpu().numpy(),
        task.cs_plus.cpu().numpy(),
    )
