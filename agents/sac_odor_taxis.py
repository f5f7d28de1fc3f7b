"""SAC (stable-baselines3) on odor taxis, with the spiking connectome brain or an MLP as actor.

The spiking actor (``flyenv.rl.spiking_policy.SpikingSACPolicy``) is the bilateral
FlyWire mushroom-body brain: its DN readout is the pre-tanh mean of SAC's squashed
Gaussian (so the deterministic action is the brain's own action), with a learned
state-independent log-std; the twin Q critics are SB3's MLPs. By default only the
mushroom-body output side learns (KC->MBON, MBON->DN, DN readout). Every brain call
runs ~15 spiking steps with surrogate gradients, so the scenario takes one gradient
step per vector step of all envs (``gradient_steps = 1``, small batch).

    python agents/sac_odor_taxis.py --scenario scenarios/sac_odor_taxis_spiking.toml
    python agents/sac_odor_taxis.py --policy mlp --total-timesteps 100000

Flags (``--help``): the fields of ``Args`` below, dashed (``--total-timesteps``); the SAC
hyper-parameters as ``--algo.<name>``; ``--env-kwargs`` / ``--policy-kwargs`` take JSON.
A scenario TOML holds the same fields (``[algo]``, ``[env_kwargs]``, ``[policy_kwargs]``
tables; ``flyenv.config.load_scenario``).
Values: Args defaults < --scenario TOML < explicit flags. Outputs in --run-dir:
tb/, checkpoints/ (CheckpointCallback, with the replay buffer), best_model.zip
(EvalCallback), final_model.zip, curve.json + learning_curve.png, results.json,
video.mp4. Rerunning with the same --run-dir continues from the newest checkpoint.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from stable_baselines3 import SAC
from stable_baselines3.common.callbacks import CheckpointCallback, EvalCallback

from flyenv.config import JsonDict, cli
from flyenv.rl import sb3_training as rl
from flyenv.rl.spiking_policy import SpikingSACPolicy


@dataclass
class SACHyperparameters:
    """``stable_baselines3.SAC`` keywords (the scenario's ``[algo]`` table)."""

    learning_rate: float = 3e-4
    """Adam step size (actor, critics, entropy coefficient)."""
    buffer_size: int = 200_000
    """Replay buffer size (transitions)."""
    learning_starts: int = 2048
    """Transitions collected before the first gradient step."""
    batch_size: int = 64
    """Minibatch size (transitions)."""
    tau: float = 0.005
    """Target-network soft update rate."""
    gamma: float = 0.99
    """Discount per agent step (10 ms)."""
    train_freq: int = 1
    """Vector steps (of all n_envs) between updates."""
    gradient_steps: int = 1
    """Gradient steps per update (each runs ~15 spiking brain steps for the spiking actor)."""
    ent_coef: float | str = "auto"
    """Entropy coefficient, or "auto" / "auto_<init>" to learn it."""


@dataclass
class Args:
    scenario: str | None = None
    """TOML of these fields (scenarios/sac_*.toml); explicit flags override it."""
    env: str = "flyenv/OdorTaxis-kinematic-v0"
    """Gymnasium env id (twin ``-kinematic-`` ids train batched, MuJoCo ids in subprocesses)."""
    policy: Literal["spiking", "mlp"] = "spiking"
    """Actor: the spiking connectome brain or SB3's MLP."""
    total_timesteps: int = 30_000
    """Training length in env steps (all envs together)."""
    n_envs: int = 16
    """Twin batch size, or MuJoCo worker processes."""
    seed: int = 0
    """Training seed (held-out starts: EVAL_SEED + seed)."""
    eval_every: int = 4096
    """Timesteps between held-out evaluations (and checkpoints)."""
    eval_starts: int = 50
    """Held-out starts per evaluation."""
    mujoco_eval_starts: int = 10
    """MuJoCo starts of the final evaluation (0: skip MuJoCo)."""
    final_starts: int = 50
    """Fresh twin starts of the final evaluation."""
    final_time_limit_s: float | None = None
    """Episode limit of the final evaluations in s (None: the env's, 10 s)."""
    run_dir: str | None = None
    """Output folder (default runs/sac/<env>_<policy>_seed<seed>)."""
    no_video: bool = False
    """Skip the video of the best model."""
    threads: int = 1
    """Torch threads (1: busy 2-core CPU)."""
    algo: SACHyperparameters = field(default_factory=SACHyperparameters)
    """SAC hyper-parameters."""
    env_kwargs: JsonDict = field(default_factory=dict)
    """gym.make keywords (observation="orn" with the odor is added for the spiking policy)."""
    policy_kwargs: JsonDict = field(default_factory=dict)
    """Policy keywords (SpikingSACPolicy, or SB3's MlpPolicy with
    ``features_extractor = "bilateral_odor"``)."""


def parse_args(argv: list[str] | None = None) -> Args:
    args = cli(Args, argv, description=__doc__, agent="sac_odor_taxis")
    rl.check_sb3_args(args)
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    name = f"{args.env.split('/')[-1]}_{args.policy}_seed{args.seed}"
    run_dir = Path(args.run_dir or f"runs/sac/{name}")
    run_dir.mkdir(parents=True, exist_ok=True)
    env_kwargs, venv, eval_env, n_eval = rl.agent_envs(args)

    policy = SpikingSACPolicy if args.policy == "spiking" else "MlpPolicy"
    checkpoint = rl.latest_checkpoint(run_dir, "sac")
    if checkpoint is not None:  # resume, replay buffer included
        model = SAC.load(checkpoint, env=venv, device="cpu")
        buffer = checkpoint.with_name(checkpoint.name.replace("sac_", "sac_replay_buffer_"))
        buffer = buffer.with_suffix(".pkl")
        if buffer.exists():
            model.load_replay_buffer(buffer)
        print(f"resumed from {checkpoint} at {model.num_timesteps} timesteps")
    else:
        model = rl.new_model(SAC, policy, venv, args, run_dir)
    model.flyenv_env_kwargs = env_kwargs  # saved in the zip: `flyenv record` rebuilds the env

    # Step 0: the untrained actor on the held-out starts (the spiking one is the bare
    # connectome wiring; SAC's first steps are random exploration, not this policy).
    initial = rl.step0_row(model, eval_env, n_eval)
    curve = rl.CurveCallback(run_dir, f"SAC {args.policy} on {args.env}", initial)
    per_call = max(1, args.eval_every // args.n_envs)
    callbacks = [
        CheckpointCallback(
            per_call, str(run_dir / "checkpoints"), name_prefix="sac", save_replay_buffer=True
        ),
        EvalCallback(
            eval_env,
            n_eval_episodes=n_eval,
            eval_freq=per_call,
            best_model_save_path=str(run_dir),
            log_path=str(run_dir),
            deterministic=True,
            callback_after_eval=curve,
        ),
        rl.TqdmCallback(args.total_timesteps),
    ]
    model.learn(
        args.total_timesteps - model.num_timesteps,
        callback=callbacks,
        reset_num_timesteps=False,
        tb_log_name="sac",
    )
    train_wall = time.time() - curve.t0  # includes earlier sessions of a resumed run
    model.save(run_dir / "final_model.zip")

    best_path = run_dir / "best_model.zip"
    best = SAC.load(best_path if best_path.exists() else run_dir / "final_model.zip", device="cpu")
    extra = {
        "algo": "SAC",
        "total_timesteps": model.num_timesteps,
        "train_wall_s": train_wall,
        "step0_success": next((r["success_rate"] for r in curve.rows if r["timesteps"] == 0), None),
    }
    return rl.final_report(best, args, env_kwargs, run_dir, curve, extra)


if __name__ == "__main__":
    main()
