"""RecurrentPPO (sb3-contrib) with the spiking connectome brain as its recurrent core.

The policy (``flyenv.rl.recurrent_spiking_policy.RecurrentSpikingPolicy``) is the
bilateral FlyWire mushroom-body brain with its state (membranes, synaptic currents,
readout low-pass) carried from one 10 ms action to the next and reset to rest at each
episode start, so it can integrate intermittent odor hits over time; an MLP critic
sits beside it; by default only the mushroom-body output side learns (KC->MBON,
MBON->DN, DN readout). ``--policy mlp_lstm`` is sb3-contrib's LSTM policy on the same
observation (a baseline). The brain reads ORN rates: ``observation="orn"`` with the
odor (ethyl acetate) is added to the env keywords for the spiking policy (OdorTaxis and
PlumeTracking). Twin envs train on the native batched twin, MuJoCo envs on a
SubprocVecEnv. At the end the best model (by held-out success) is evaluated on fresh
twin starts and in MuJoCo with its state carried through each episode, and a video is
recorded with ``flyenv record`` (which loads RecurrentPPO zips).

    python agents/recurrent_ppo.py --scenario scenarios/recurrent_ppo_plume_tracking_spiking.toml
    python agents/recurrent_ppo.py --env flyenv/OdorTaxis-kinematic-v0 --total-timesteps 65536
    python agents/recurrent_ppo.py --policy mlp_lstm --env flyenv/PlumeTracking-kinematic-v0

Flags (``--help``): the fields of ``Args`` below, dashed; the RecurrentPPO
hyper-parameters as ``--algo.<name>``; ``--env-kwargs`` / ``--policy-kwargs`` take JSON.
A scenario TOML holds the same fields (``[algo]``, ``[env_kwargs]``, ``[policy_kwargs]``).
Values: Args defaults < --scenario TOML < explicit flags. Outputs in --run-dir as
``agents/ppo_odor_taxis.py`` (tb/, checkpoints/, best_model.zip, final_model.zip,
curve.json, learning_curve.png, results.json, video.mp4); rerunning with the same
--run-dir continues from the newest checkpoint.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from sb3_contrib import RecurrentPPO
from stable_baselines3.common.callbacks import CheckpointCallback, EvalCallback

from flyenv.config import JsonDict, cli
from flyenv.rl import sb3_training as rl
from flyenv.rl.recurrent_spiking_policy import RecurrentSpikingPolicy


@dataclass
class RecurrentPPOHyperparameters:
    """``sb3_contrib.RecurrentPPO`` keywords (the scenario's ``[algo]`` table)."""

    learning_rate: float = 3e-4
    """Adam step size."""
    n_steps: int = 128
    """Env steps per env per rollout; also the longest sequence replayed in training."""
    batch_size: int = 512
    """Minibatch size (transitions, cut into per-env sequences at episode starts)."""
    n_epochs: int = 4
    """Passes over each rollout."""
    gamma: float = 0.99
    """Discount per agent step (10 ms)."""
    gae_lambda: float = 0.95
    """GAE lambda."""
    clip_range: float = 0.2
    """PPO ratio clip."""
    ent_coef: float = 0.0
    """Entropy bonus coefficient."""
    max_grad_norm: float = 0.5
    """Gradient-norm clip."""
    use_sde: bool = False
    """Generalized state-dependent exploration (gSDE) instead of fresh Gaussian noise at
    every step: for the spiking policy a held perturbation of the readout
    (``flyenv.rl.recurrent_spiking_policy``); set ``log_std_init`` about -1.9 for the same
    start-up action SD as the default -1."""
    sde_sample_freq: int = -1
    """With ``use_sde``: draw new exploration matrices every this many env steps (-1: once
    per rollout)."""


@dataclass
class Args:
    scenario: str | None = None
    """TOML of these fields (scenarios/recurrent_ppo_*.toml); explicit flags override it."""
    env: str = "flyenv/PlumeTracking-kinematic-v0"
    """Gymnasium env id (twin ``-kinematic-`` ids train batched, MuJoCo ids in subprocesses)."""
    policy: Literal["recurrent_spiking", "mlp_lstm"] = "recurrent_spiking"
    """Recurrent actor: the spiking connectome brain with carried state, or an LSTM."""
    total_timesteps: int = 65_536
    """Training length in env steps (all envs together)."""
    n_envs: int = 32
    """Twin batch size, or MuJoCo worker processes."""
    seed: int = 0
    """Training seed (held-out starts: EVAL_SEED + seed)."""
    eval_every: int = 8192
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
    """Output folder (default runs/recurrent_ppo/<env>_<policy>_seed<seed>)."""
    ablations: list[str] = field(default_factory=list)
    """Spiking policies: brain ablations (``flyenv.brains.olfactory.brain.ABLATIONS``,
    e.g. no_wind, no_odor_to_dn) each evaluated on the final twin starts."""
    no_video: bool = False
    """Skip the video of the best model."""
    threads: int = 1
    """Torch threads (1: busy 2-core CPU)."""
    algo: RecurrentPPOHyperparameters = field(default_factory=RecurrentPPOHyperparameters)
    """RecurrentPPO hyper-parameters."""
    env_kwargs: JsonDict = field(default_factory=dict)
    """gym.make keywords (observation="orn" with the odor is added for the spiking policy)."""
    policy_kwargs: JsonDict = field(default_factory=dict)
    """Policy keywords (RecurrentSpikingPolicy, or sb3-contrib's MlpLstmPolicy)."""


def parse_args(argv: list[str] | None = None) -> Args:
    args = cli(Args, argv, description=__doc__, agent="recurrent_ppo")
    rl.check_sb3_args(args)
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    name = f"{args.env.split('/')[-1]}_{args.policy}_seed{args.seed}"
    run_dir = Path(args.run_dir or f"runs/recurrent_ppo/{name}")
    run_dir.mkdir(parents=True, exist_ok=True)
    spiking = args.policy == "recurrent_spiking"
    env_kwargs, venv, eval_env, n_eval = rl.agent_envs(args)

    policy = RecurrentSpikingPolicy if spiking else "MlpLstmPolicy"
    checkpoint = rl.latest_checkpoint(run_dir, "recurrent_ppo")
    if checkpoint is not None:  # resume
        model = RecurrentPPO.load(checkpoint, env=venv, device="cpu")
        print(f"resumed from {checkpoint} at {model.num_timesteps} timesteps")
    else:
        model = rl.new_model(RecurrentPPO, policy, venv, args, run_dir)
    model.flyenv_env_kwargs = env_kwargs  # saved in the zip: `flyenv record` rebuilds the env

    # Step 0: the untrained policy (the connectome's wiring alone) on the held-out starts.
    initial = rl.step0_row(model, eval_env, n_eval)
    curve = rl.CurveCallback(run_dir, f"RecurrentPPO {args.policy} on {args.env}", initial)
    per_call = max(1, args.eval_every // args.n_envs)
    callbacks = [
        CheckpointCallback(per_call, str(run_dir / "checkpoints"), name_prefix="recurrent_ppo"),
        EvalCallback(  # evaluate_policy carries the state and resets it at episode starts
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
        tb_log_name="recurrent_ppo",
    )
    train_wall = time.time() - curve.t0  # includes earlier sessions of a resumed run
    model.save(run_dir / "final_model.zip")

    best_path = run_dir / "best_model.zip"
    best = RecurrentPPO.load(
        best_path if best_path.exists() else run_dir / "final_model.zip", device="cpu"
    )
    extra = {
        "algo": "RecurrentPPO",
        "total_timesteps": model.num_timesteps,
        "train_wall_s": train_wall,
        "step0_success": next((r["success_rate"] for r in curve.rows if r["timesteps"] == 0), None),
    }
    return rl.final_report(best, args, env_kwargs, run_dir, curve, extra)


if __name__ == "__main__":
    main()
