"""PPO (stable-baselines3) on odor taxis, with the spiking connectome brain or an MLP as actor.

The spiking policy (``flyenv.rl.spiking_policy``) is the bilateral FlyWire mushroom-body
brain: each agent step it runs on the ORN rates of the two antennas and its DN rates
give the action mean; an MLP critic sits beside it; by default only the mushroom-body
output side learns (KC->MBON, MBON->DN, DN readout). Twin envs train on the native
batched twin (one tensor step per SB3 step), MuJoCo envs on a SubprocVecEnv (one
process per core). At the end the best model (by held-out success) is evaluated on 50
twin starts and in MuJoCo, and a video of it is recorded with ``flyenv record``.

    python agents/ppo_odor_taxis.py --scenario scenarios/ppo_odor_taxis_spiking.toml
    python agents/ppo_odor_taxis.py --policy mlp --total-timesteps 300000
    python agents/ppo_odor_taxis.py --env flyenv/PlumeTracking-kinematic-v0 --policy mlp

Values: built-in defaults < --scenario TOML < explicit flags. Outputs in --run-dir:
tb/ (tensorboard), checkpoints/ (CheckpointCallback), best_model.zip (EvalCallback),
final_model.zip, curve.json + learning_curve.png, results.json, video.mp4.
Rerunning with the same --run-dir continues from the newest checkpoint.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import CheckpointCallback, EvalCallback

from flyenv.rl import sb3_training as rl
from flyenv.rl.spiking_policy import SpikingActorCriticPolicy

DEFAULTS = {
    "env": "flyenv/OdorTaxis-kinematic-v0",
    "policy": "spiking",
    "total_timesteps": 60_000,
    "n_envs": 32,
    "seed": 0,
    "eval_every": 8192,
    "eval_starts": 50,
    "mujoco_eval_starts": 10,
}
PPO_DEFAULTS = {
    "learning_rate": 3e-4,
    "n_steps": 128,
    "batch_size": 512,
    "n_epochs": 4,
    "gamma": 0.99,
    "gae_lambda": 0.95,
    "clip_range": 0.2,
    "ent_coef": 0.0,
    "max_grad_norm": 0.5,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return rl.parse_agent_args(__doc__, "ppo", DEFAULTS, PPO_DEFAULTS, argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    name = f"{args.env.split('/')[-1]}_{args.policy}_seed{args.seed}"
    run_dir = Path(args.run_dir or f"runs/ppo/{name}")
    run_dir.mkdir(parents=True, exist_ok=True)
    env_kwargs = rl.env_kwargs_for(args.env, args.policy, args.env_extra)
    venv = rl.make_vec_env(args.env, args.n_envs, args.seed, env_kwargs)
    n_eval = args.eval_starts if rl.is_twin(args.env) else min(args.eval_starts, args.n_envs)
    eval_env = rl.make_vec_env(args.env, n_eval, rl.EVAL_SEED + args.seed, env_kwargs, True)

    policy = SpikingActorCriticPolicy if args.policy == "spiking" else "MlpPolicy"
    checkpoint = rl.latest_checkpoint(run_dir, "ppo")
    if checkpoint is not None:  # resume
        model = PPO.load(checkpoint, env=venv, device="cpu")
        print(f"resumed from {checkpoint} at {model.num_timesteps} timesteps")
    else:
        model = PPO(
            policy,
            venv,
            policy_kwargs=rl.sb3_policy_kwargs(args.policy_kwargs),
            seed=args.seed,
            device="cpu",
            tensorboard_log=str(run_dir / "tb"),
            verbose=0,
            **args.algo,
        )
    model.flyenv_env_kwargs = env_kwargs  # saved in the zip: `flyenv record` rebuilds the env

    # Step 0: the untrained policy (the connectome's wiring alone) on the held-out starts.
    initial = None
    if model.num_timesteps == 0:
        rets, success = rl.evaluate_success(model, eval_env, n_eval)
        initial = {"timesteps": 0, "wall_s": 0.0, "success_rate": success, "mean_return": rets}
        print(f"step 0 (untrained): success {success:.0%} of {n_eval} held-out starts")
    curve = rl.CurveCallback(run_dir, f"PPO {args.policy} on {args.env}", initial)
    per_call = max(1, args.eval_every // args.n_envs)
    callbacks = [
        CheckpointCallback(per_call, str(run_dir / "checkpoints"), name_prefix="ppo"),
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
        tb_log_name="ppo",
    )
    train_wall = time.time() - curve.t0  # includes earlier sessions of a resumed run
    model.save(run_dir / "final_model.zip")

    best_path = run_dir / "best_model.zip"
    best = PPO.load(best_path if best_path.exists() else run_dir / "final_model.zip", device="cpu")
    extra = {
        "algo": "PPO",
        "total_timesteps": model.num_timesteps,
        "train_wall_s": train_wall,
        "step0_success": next((r["success_rate"] for r in curve.rows if r["timesteps"] == 0), None),
    }
    return rl.final_report(best, args, env_kwargs, run_dir, curve, extra)


if __name__ == "__main__":
    main()
