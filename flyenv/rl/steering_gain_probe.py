"""How sensitive is an SB3 spiking policy's return to its steering gain?

A diagnostic of why PPO trains a readout or does not. The mirror-symmetric DN readout
(``flyenv.rl.spiking_policy.MirrorReadoutWeight``) stores per DN the mean ``c`` and the
half-difference ``d`` of its same-side and opposite-side weights; ``d`` is the steering
gain (how strongly a left/right DN difference turns the fly). The probe scales ``d`` of
an untrained (or trained) policy and evaluates each scaled copy on the same starts, with
the deterministic action and with the Gaussian samples PPO trains on. If success rises
with the gain, there is something for the readout to learn; the slope of the mean return
is the size of the policy-gradient signal RL has to find in its noise. ``--knob
mbon_dn`` scales both MBON->DN matrices instead (how much the mushroom-body output side
can add by its strength alone).

    python -m flyenv.rl.steering_gain_probe --agent recurrent_ppo \\
        --scenario scenarios/recurrent_ppo_odor_taxis_weak_contrast.toml --seed 1
    python -m flyenv.rl.steering_gain_probe --agent ppo_odor_taxis \\
        --scenario scenarios/ppo_odor_taxis_spiking_weak_contrast.toml --seed 1

Starts: the agent's selection starts (``EVAL_SEED + seed``, ``--eval-starts`` of them),
never its reporting starts.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch


def readout_weight(policy) -> torch.nn.Parameter:
    """The stored (2, n_dn) mirror-readout coordinates (row 0: c, row 1: d) of an SB3
    spiking policy (stateless or recurrent)."""
    brain = policy.brain if hasattr(policy, "brain") else policy.actor.brain
    param = getattr(brain.readout, "parametrizations", None)
    if param is None or "weight" not in param:
        raise ValueError(
            "the policy's readout is not mirror-parametrised; build it with "
            "policy_kwargs mirror_readout=true to probe its steering gain"
        )
    return param.weight.original


KNOBS = ("steering", "mbon_dn")


def _knob_tensors(policy, knob: str) -> list[tuple[torch.Tensor, slice | int]]:
    """(parameter, index) pairs that ``knob`` scales."""
    if knob == "steering":
        return [(readout_weight(policy), 1)]  # row 1 of the mirror coordinates: d
    if knob == "mbon_dn":
        brain = policy.brain if hasattr(policy, "brain") else policy.actor.brain
        return [(brain.w_mbon_dn_ipsi, slice(None)), (brain.w_mbon_dn_contra, slice(None))]
    raise ValueError(f"knob={knob!r}; use one of {KNOBS}")


def probe(
    model, eval_env, n_episodes: int, scales: Sequence[float], knob: str = "steering"
) -> list[dict]:
    """Success rate and mean return of ``model`` with its steering gain ``d`` (``knob
    "steering"``) or its MBON->DN weights (``"mbon_dn"``) times each scale, deterministic
    and stochastic, on ``n_episodes`` episodes of ``eval_env``. Use an
    evaluation twin (``sb3_training.make_vec_env(..., eval_env=True)``), which replays the
    same starts at every reset, so every row sees the same starts. The weights are
    restored afterwards."""
    from stable_baselines3.common.evaluation import evaluate_policy

    tensors = _knob_tensors(model.policy, knob)
    originals = [t.detach().clone() for t, _ in tensors]
    rows = []
    try:
        for scale in scales:
            with torch.no_grad():
                for (t, index), original in zip(tensors, originals, strict=True):
                    scaled = original.clone()
                    scaled[index] *= scale
                    t.copy_(scaled)
            for deterministic in (True, False):
                successes: list[bool] = []

                def on_step(local, _, out=successes):
                    if local["done"]:
                        out.append(bool(local["info"].get("is_success", False)))

                mean_return, _ = evaluate_policy(
                    model,
                    eval_env,
                    n_eval_episodes=n_episodes,
                    deterministic=deterministic,
                    callback=on_step,
                )
                rows.append(
                    {
                        "knob": knob,
                        "scale": float(scale),
                        "deterministic": deterministic,
                        "success_rate": float(np.mean(successes)),
                        "mean_return": float(mean_return),
                    }
                )
    finally:
        with torch.no_grad():
            for (t, _), original in zip(tensors, originals, strict=True):
                t.copy_(original)
    return rows


def _load_agent(name: str):
    path = Path(__file__).resolve().parents[2] / "agents" / f"{name}.py"
    if not path.exists():
        raise ValueError(f"no agent {name!r} at {path}; use recurrent_ppo or ppo_odor_taxis")
    spec = importlib.util.spec_from_file_location(f"flyenv_agent_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while built
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--agent", default="recurrent_ppo", choices=["recurrent_ppo", "ppo_odor_taxis"]
    )
    parser.add_argument("--scenario", required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--eval-starts", type=int, default=200)
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 1.5, 2.0, 3.0])
    parser.add_argument("--knob", default="steering", choices=KNOBS)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    from flyenv.rl import sb3_training as rl

    agent = _load_agent(args.agent)
    agent_args = agent.parse_args(
        [
            "--scenario",
            args.scenario,
            "--seed",
            str(args.seed),
            "--eval-starts",
            str(args.eval_starts),
        ]
    )
    if args.agent == "recurrent_ppo":
        from sb3_contrib import RecurrentPPO as algo

        from flyenv.rl.recurrent_spiking_policy import RecurrentSpikingPolicy as policy
    else:
        from stable_baselines3 import PPO as algo

        from flyenv.rl.spiking_policy import SpikingActorCriticPolicy as policy
    if agent_args.policy not in ("spiking", "recurrent_spiking"):
        raise ValueError(
            f"the scenario's policy is {agent_args.policy!r}; the probe needs a spiking one"
        )
    if not rl.is_twin(agent_args.env):
        raise ValueError(f"{agent_args.env} is not a twin env; the probe replays twin starts")
    _, venv, eval_env, n_eval = rl.agent_envs(agent_args)
    model = algo(
        policy,
        venv,
        policy_kwargs=rl.sb3_policy_kwargs(agent_args.policy_kwargs),
        seed=args.seed,
        device="cpu",
    )
    rows = probe(model, eval_env, n_eval, args.scales, args.knob)
    print(
        f"| {args.knob} scale | deterministic success | stochastic success | "
        "deterministic return | stochastic return |"
    )
    print("|---|---|---|---|---|")
    for det, sto in zip(rows[::2], rows[1::2], strict=True):
        print(
            f"| x{det['scale']:g} | {det['success_rate']:.3f} | {sto['success_rate']:.3f} | "
            f"{det['mean_return']:.2f} | {sto['mean_return']:.2f} |"
        )
    return rows


if __name__ == "__main__":
    main()
