"""What the SB3 baseline agents share: vector envs, callbacks, curves, reports.

``agents/ppo_odor_taxis.py`` and ``agents/sac_odor_taxis.py`` stay short, readable
programs; the plumbing lives here.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import SubprocVecEnv, VecEnv, VecMonitor

import flyenv  # noqa: F401  (registers the environments)
from flyenv.io import atomic_write, atomic_write_json
from flyenv.registration import entry, mujoco_id
from flyenv.rl.features import BilateralOdorFeatures
from flyenv.rl.sb3_vec_env import TwinVecEnv

EVAL_SEED = 1_000_003
"""Held-out starts for checkpoint selection (EvalCallback): ``EVAL_SEED + seed``."""
TEST_SEED = 7_000_007
"""Starts of the final report: a stream disjoint from training's and from the selection
stream of every training seed (``EVAL_SEED + seed`` overlapped it at seed 7 before)."""
SPIKING_ENV_KWARGS = {"observation": "orn", "odor_names": ["ethyl acetate"]}
"""The spiking brain reads ORN rates: the odor env must name its odor."""
PLUME_SPIKING_ENV_KWARGS = {"observation": "orn", "odor_name": "ethyl acetate"}
"""The same for PlumeTracking (one odor, the plume's)."""
SPIKING_POLICIES = ("spiking", "recurrent_spiking")
"""Policies whose actor is the spiking brain (they need the ORN observation)."""


def check_sb3_args(args) -> None:
    """Refuse settings the SB3 agents cannot run (``agents/ppo_odor_taxis.py``,
    ``agents/sac_odor_taxis.py``; their ``Args`` are parsed by ``flyenv.config.cli``)."""
    if args.total_timesteps < 1 or args.n_envs < 1:
        raise SystemExit("error: --total-timesteps and --n-envs must be >= 1")
    ablations = getattr(args, "ablations", None) or []
    if ablations:
        from flyenv.brains.olfactory.brain import ABLATIONS

        if args.policy not in SPIKING_POLICIES:
            raise SystemExit(f"error: --ablations need a spiking policy, not {args.policy!r}")
        bad = [a for a in ablations if a not in ABLATIONS]
        if bad:
            raise SystemExit(f"error: unknown --ablations {bad}; choose from {list(ABLATIONS)}")


FEATURE_EXTRACTORS = {"bilateral_odor": BilateralOdorFeatures}
"""Names a scenario's ``[policy_kwargs] features_extractor`` may use (TOML holds no classes)."""


def sb3_policy_kwargs(policy_kwargs: dict[str, Any]) -> dict[str, Any] | None:
    """A scenario's ``[policy_kwargs]`` as SB3 takes them: ``features_extractor = "name"``
    becomes ``features_extractor_class`` (``FEATURE_EXTRACTORS``)."""
    kwargs = dict(policy_kwargs)
    name = kwargs.pop("features_extractor", None)
    if name is not None:
        if name not in FEATURE_EXTRACTORS:
            raise SystemExit(
                f"[policy_kwargs] features_extractor={name!r} is unknown; use one of "
                f"{sorted(FEATURE_EXTRACTORS)}"
            )
        kwargs["features_extractor_class"] = FEATURE_EXTRACTORS[name]
    return kwargs or None


def is_twin(env_id: str) -> bool:
    """Whether the registration row of ``env_id`` runs on the kinematic twin."""
    return entry(env_id).is_twin


def env_kwargs_for(env_id: str, policy: str, extra: dict[str, Any] | None = None) -> dict:
    """gym.make keywords: the ORN observation for the spiking brain on odor tasks
    (OdorTaxis, PlumeTracking; OdorChoice and OdorConditioning observe nothing else)."""
    kwargs: dict[str, Any] = {}
    if policy in SPIKING_POLICIES:
        task = entry(env_id).task_class()
        name = getattr(task, "name", None)
        if name == "PlumeTracking":
            kwargs.update(PLUME_SPIKING_ENV_KWARGS)
        elif name == "OdorTaxis":
            kwargs.update(SPIKING_ENV_KWARGS)
        elif name not in ("OdorChoice", "OdorConditioning"):  # those observe ORN rates only
            raise SystemExit(
                f"--policy {policy} needs ORN observations, which the OdorTaxis, PlumeTracking, "
                f"OdorChoice and OdorConditioning envs give; {env_id} is not one of them: use "
                "an MLP policy there"
            )
    kwargs.update(extra or {})
    if "odor_names" in kwargs:
        kwargs["odor_names"] = tuple(kwargs["odor_names"])
    return kwargs


def _make_single(env_id: str, kwargs: dict, seed: int):
    def thunk():
        env = gym.make(env_id, **kwargs)
        env.reset(seed=seed)
        return env

    return thunk


def make_vec_env(
    env_id: str, n_envs: int, seed: int, kwargs: dict, eval_env: bool = False
) -> VecEnv:
    """Twin: one batched ``TwinVecEnv`` (no per-env Python loop). MuJoCo: a
    ``SubprocVecEnv`` with ``n_envs`` worker processes (one per core). Both monitored.
    An evaluation twin replays the same starts at every evaluation."""
    if is_twin(env_id):
        venv = gym.make_vec(env_id, num_envs=n_envs, **kwargs)
        return VecMonitor(TwinVecEnv(venv, seed=seed, reseed_every_reset=eval_env))
    thunks = [_make_single(env_id, kwargs, seed + i) for i in range(n_envs)]
    return VecMonitor(SubprocVecEnv(thunks, start_method="fork"))


class CurveCallback(BaseCallback):
    """After each EvalCallback evaluation: record (timesteps, wall s, success, return),
    write ``curve.json`` and the learning-curve PNG, log success to tensorboard."""

    def __init__(self, run_dir: Path, title: str, initial: dict | None = None) -> None:
        super().__init__()
        self.run_dir = run_dir
        self.title = title
        self.rows: list[dict] = [initial] if initial else []
        saved = run_dir / "curve.json"
        if initial is None and saved.exists():  # a resumed run continues its curve
            self.rows = json.loads(saved.read_text())["rows"]
        self.t0 = time.time() - (self.rows[-1]["wall_s"] if self.rows else 0.0)

    def _on_step(self) -> bool:
        ev = self.parent  # the EvalCallback
        success = float(np.mean(ev._is_success_buffer)) if ev._is_success_buffer else float("nan")
        self.rows.append(
            {
                "timesteps": int(self.num_timesteps),
                "wall_s": time.time() - self.t0,
                "success_rate": success,
                "mean_return": float(ev.last_mean_reward),
            }
        )
        self.logger.record("eval/success_rate_curve", success)
        atomic_write_json(self.run_dir / "curve.json", {"title": self.title, "rows": self.rows})
        plot_curve(self.rows, self.run_dir / "learning_curve.png", self.title)
        return True


def plot_curve(rows: list[dict], out: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [r["timesteps"] for r in rows]
    fig, ax = plt.subplots(1, 2, figsize=(8, 3))
    ax[0].plot(t, [100 * r["success_rate"] for r in rows], "o-")
    ax[0].axhline(80, color="grey", ls="--", lw=0.8)
    ax[0].set(xlabel="timesteps", ylabel="success (%)", ylim=(-2, 102), title="held-out starts")
    ax[1].plot(t, [r["mean_return"] for r in rows], "o-")
    ax[1].set(xlabel="timesteps", ylabel="mean return")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    atomic_write(out, lambda tmp: fig.savefig(tmp, dpi=80))
    plt.close(fig)


def first_reaching(rows: list[dict], threshold: float = 0.8) -> dict | None:
    """The first evaluation at or above ``threshold`` success (timesteps, wall s)."""
    for r in rows:
        if r["success_rate"] >= threshold:
            return {"timesteps": r["timesteps"], "wall_s": r["wall_s"]}
    return None


def record_with_cli(model_path: Path, env_id: str, env_kwargs: dict, out: Path, seed: int) -> None:
    """The video of a saved model through ``flyenv record`` (the same path a user takes)."""
    kwargs = {k: v for k, v in env_kwargs.items() if k != "time_limit_s"}
    cmd = [
        sys.executable, "-m", "flyenv.cli", "record", "--env", env_id, "--agent", str(model_path),
        "--seed", str(seed), "--play-speed", "1.0", "--out", str(out),
        "--env-kwargs", json.dumps({**kwargs, "time_limit_s": 3.0}),
    ]  # fmt: skip
    print("video:", " ".join(cmd))
    subprocess.run(cmd, check=False)


class TqdmCallback(BaseCallback):
    """A tqdm bar over timesteps (SB3's own bar needs ``rich``, not a flyenv dependency)."""

    def __init__(self, total: int) -> None:
        super().__init__()
        self.total = total

    def _on_training_start(self) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=self.total, initial=self.num_timesteps, unit="step", smoothing=0.1)

    def _on_step(self) -> bool:
        self.bar.update(self.num_timesteps - self.bar.n)
        return True

    def _on_training_end(self) -> None:
        self.bar.close()


def evaluate_success(
    model, eval_env: VecEnv, n: int, deterministic: bool = True
) -> tuple[float, float]:
    """Mean return and success rate of the policy (deterministic, or sampling its actions)
    over n episodes."""
    from stable_baselines3.common.evaluation import evaluate_policy

    successes: list[bool] = []

    def on_step(local, _):
        if local["done"]:
            successes.append(bool(local["info"].get("is_success", False)))

    rets, _ = evaluate_policy(
        model, eval_env, n_eval_episodes=n, deterministic=deterministic, callback=on_step
    )
    return float(rets), float(np.mean(successes)) if successes else float("nan")


def agent_envs(args) -> tuple[dict, VecEnv, VecEnv, int]:
    """(env_kwargs, training venv, held-out eval venv, eval starts) of an SB3 agent's Args:
    training on ``args.seed``'s stream, selection on ``EVAL_SEED + seed``."""
    env_kwargs = env_kwargs_for(args.env, args.policy, args.env_kwargs)
    venv = make_vec_env(args.env, args.n_envs, args.seed, env_kwargs)
    n_eval = args.eval_starts if is_twin(args.env) else min(args.eval_starts, args.n_envs)
    eval_env = make_vec_env(args.env, n_eval, EVAL_SEED + args.seed, env_kwargs, True)
    return env_kwargs, venv, eval_env, n_eval


def new_model(algo_cls, policy, venv: VecEnv, args, run_dir: Path):
    """A fresh SB3 model with the agent's policy keywords, seed and hyper-parameters."""
    return algo_cls(
        policy,
        venv,
        policy_kwargs=sb3_policy_kwargs(args.policy_kwargs),
        seed=args.seed,
        device="cpu",
        tensorboard_log=str(run_dir / "tb"),
        verbose=0,
        **dataclasses.asdict(args.algo),
    )


def step0_row(model, eval_env: VecEnv, n_eval: int) -> dict | None:
    """The untrained policy on the held-out starts (the curve's first row), or None
    when the model was resumed."""
    if model.num_timesteps != 0:
        return None
    rets, success = evaluate_success(model, eval_env, n_eval)
    print(f"step 0 (untrained): success {success:.0%} of {n_eval} held-out starts")
    return {"timesteps": 0, "wall_s": 0.0, "success_rate": success, "mean_return": rets}


def latest_checkpoint(run_dir: Path, prefix: str) -> Path | None:
    """The newest CheckpointCallback zip of ``run_dir`` (for resuming), or None."""
    found = list((run_dir / "checkpoints").glob(f"{prefix}_*_steps.zip"))
    return max(found, key=lambda p: int(p.stem.split("_")[-2])) if found else None


def final_report(
    best, args, env_kwargs: dict, run_dir: Path, curve: CurveCallback, extra: dict
) -> dict:
    """Evaluate the best model (``args.final_starts`` fresh twin starts,
    ``args.mujoco_eval_starts`` MuJoCo starts; episode limit ``args.final_time_limit_s``
    or the env's default), write ``results.json`` and record the video with ``flyenv record``."""
    from flyenv.rl import evaluation as ev

    result = {
        **extra,
        "env": args.env,
        "policy": args.policy,
        "seed": args.seed,
        "to_80_percent": first_reaching(curve.rows),
        "curve": curve.rows,
        "hyperparameters": dataclasses.asdict(args.algo),
        "policy_kwargs": args.policy_kwargs,
        "env_kwargs": {k: list(v) if isinstance(v, tuple) else v for k, v in env_kwargs.items()},
    }
    eval_kwargs = {k: v for k, v in env_kwargs.items() if k != "time_limit_s"}
    if args.final_time_limit_s is not None:
        eval_kwargs["time_limit_s"] = args.final_time_limit_s
    batch_policy, policy = ev.sb3_policy_factories(best)
    if is_twin(args.env):
        n = args.final_starts
        twin = ev.evaluate_twin(batch_policy, args.env, eval_kwargs, n, seed=TEST_SEED)
        result["twin_50"] = twin.as_dict()
        print(f"best model, {n} fresh twin starts: success {twin.success_rate:.0%}")
    brain = policy_brain(best)
    if brain is not None:
        result["brain"] = mb_output_summary(brain)
    ablations = getattr(args, "ablations", None) or []
    if ablations and is_twin(args.env):
        result["ablations"] = evaluate_ablations(
            best, ablations, args.env, eval_kwargs, args.final_starts
        )
    if args.mujoco_eval_starts > 0:
        muj = ev.evaluate_mujoco(policy, mujoco_id(args.env), eval_kwargs, args.mujoco_eval_starts)
        result["mujoco"] = muj.as_dict()
        print(f"best model in MuJoCo: success {muj.success_rate:.0%} of {muj.starts}")
    atomic_write_json(run_dir / "results.json", result)
    short = {k: v for k, v in result.items() if k != "curve"}
    print(json.dumps(short, default=str)[:2000])
    if not args.no_video:
        best_path = run_dir / "best_model.zip"
        record_with_cli(best_path, mujoco_id(args.env), env_kwargs, run_dir / "video.mp4", 10_000)
    return result


def policy_brain(model):
    """The ``OlfactoryBrain`` inside a spiking SB3 model (recurrent or stateless), or None."""
    policy = model.policy
    brain = getattr(policy, "brain", None)  # RecurrentSpikingPolicy
    if brain is None and hasattr(policy, "actor"):  # SpikingActorCriticPolicy
        brain = getattr(policy.actor, "brain", None)
    return brain


def mb_output_summary(brain) -> dict[str, float]:
    """Where the mushroom-body output side of a trained brain ended: the mean effective
    ipsi and contra MBON->DN weight (mV per spike, gains included) and, with
    ``mb_output_gains``, the two MBON->DN gains and the spread of the per-MBON KC->MBON
    gains. Compared with the untrained brain's it says whether the MB side moved."""
    with torch.no_grad():
        ipsi, contra = brain.mbon_dn_weights()
        out = {
            "mbon_dn_ipsi_mean_mv": float(ipsi.mean()),
            "mbon_dn_contra_mean_mv": float(contra.mean()),
        }
        if brain.config.mb_output_gains:
            g, k = brain.mbon_dn_log_gain.exp(), brain.kc_mbon_log_gain.exp()
            out |= {
                "mbon_dn_gain_ipsi": float(g[0]),
                "mbon_dn_gain_contra": float(g[1]),
                "kc_mbon_gain_min": float(k.min()),
                "kc_mbon_gain_mean": float(k.mean()),
                "kc_mbon_gain_max": float(k.max()),
            }
    return out


def evaluate_ablations(
    model, names: list[str], env_id: str, env_kwargs: dict, n: int
) -> dict[str, dict]:
    """The trained spiking model with one part of its brain switched off at a time
    (``flyenv.brains.olfactory.brain.ablate`` on a copy), each on the same ``n`` twin
    test starts as the intact row: which pathways the learned behaviour uses."""
    import copy

    from flyenv.brains.olfactory.brain import ABLATIONS, ablate
    from flyenv.rl import evaluation as ev

    if policy_brain(model) is None:
        raise ValueError("ablations need a spiking policy (policy = spiking / recurrent_spiking)")
    bad = [a for a in names if a not in ABLATIONS]
    if bad:
        raise ValueError(f"unknown ablations {bad}; choose from {ABLATIONS}")
    out = {}
    for name in names:
        ablated = copy.deepcopy(model)
        ablate(policy_brain(ablated), name)
        batch_policy, _ = ev.sb3_policy_factories(ablated)
        row = ev.evaluate_twin(batch_policy, env_id, env_kwargs, n, seed=TEST_SEED)
        out[name] = row.as_dict()
        print(f"best model, brain ablation {name}: success {row.success_rate:.0%}")
    return out


def plot_runs(run_dirs: list[Path], out: Path) -> None:
    """Held-out success against timesteps and wall time for several runs (curve.json)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(9, 3.2))
    for run in run_dirs:
        rows = json.loads((Path(run) / "curve.json").read_text())["rows"]
        success = [100 * r["success_rate"] for r in rows]
        label = f"{Path(run).parent.name}/{Path(run).name}"
        ax[0].plot([r["timesteps"] for r in rows], success, "o-", ms=3, label=label)
        ax[1].plot([r["wall_s"] / 60 for r in rows], success, "o-", ms=3)
    for a, xlabel in zip(ax, ("timesteps", "wall time (min, shared 2-core CPU)"), strict=True):
        a.axhline(80, color="grey", ls="--", lw=0.8)
        a.set(xlabel=xlabel, ylabel="held-out twin success (%)", ylim=(-2, 102))
    ax[0].set_xscale("symlog", linthresh=4096)  # step 0, and runs from 30k to 1M steps
    ax[0].set_xlim(left=0)
    ax[1].legend(*ax[0].get_legend_handles_labels(), fontsize=7, loc="center right")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    plt.close(fig)
