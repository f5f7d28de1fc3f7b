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
can add by its strength alone), ``mbon_dn_ipsi`` / ``mbon_dn_contra`` one of them (its
same-side excitation or its opposite-side inhibition). ``--policy-kwargs`` probes another
brain, e.g. the one without the lateral-horn shortcut
(``{"brain_config": {"lateral_horn": false, ...}}``).

    python -m flyenv.rl.steering_gain_probe --agent recurrent_ppo \\
        --scenario scenarios/recurrent_ppo_odor_taxis_weak_contrast.toml --seed 1
    python -m flyenv.rl.steering_gain_probe --agent ppo_odor_taxis \\
        --scenario scenarios/ppo_odor_taxis_spiking_weak_contrast.toml --seed 1

Starts: the agent's selection starts (``EVAL_SEED + seed``, ``--eval-starts`` of them),
never its reporting starts.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import torch

from flyenv.agent_scripts import load_agent
from flyenv.rl.sb3_training import evaluate_success, policy_brain


def readout_weight(model) -> torch.nn.Parameter:
    """The stored (2, n_dn) mirror-readout coordinates (row 0: c, row 1: d) of an SB3
    spiking model (stateless or recurrent policy)."""
    brain = policy_brain(model)
    param = getattr(brain.readout, "parametrizations", None)
    if param is None or "weight" not in param:
        raise ValueError(
            "the policy's readout is not mirror-parametrised; build it with "
            "policy_kwargs mirror_readout=true to probe its steering gain"
        )
    return param.weight.original


MBON_DN_KNOBS = {
    "mbon_dn": ("ipsi", "contra"),
    "mbon_dn_ipsi": ("ipsi",),
    "mbon_dn_contra": ("contra",),
}
KNOBS = ("steering", *MBON_DN_KNOBS)


def _knob_tensors(model, knob: str) -> list[tuple[torch.Tensor, slice | int]]:
    """(parameter, index) pairs that ``knob`` scales."""
    if knob == "steering":
        return [(readout_weight(model), 1)]  # row 1 of the mirror coordinates: d
    if knob in MBON_DN_KNOBS:
        brain = policy_brain(model)
        return [(getattr(brain, f"w_mbon_dn_{side}"), slice(None)) for side in MBON_DN_KNOBS[knob]]
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
    tensors = _knob_tensors(model, knob)
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
                mean_return, success = evaluate_success(
                    model, eval_env, n_episodes, deterministic=deterministic
                )
                rows.append(
                    {
                        "knob": knob,
                        "scale": float(scale),
                        "deterministic": deterministic,
                        "success_rate": success,
                        "mean_return": mean_return,
                    }
                )
    finally:
        with torch.no_grad():
            for (t, _), original in zip(tensors, originals, strict=True):
                t.copy_(original)
    return rows


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
    parser.add_argument(
        "--policy-kwargs",
        default=None,
        help="JSON replacing the scenario's policy_kwargs (e.g. another brain_config)",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    from flyenv.rl import sb3_training as rl

    agent = load_agent(args.agent)
    agent_args = agent.parse_args(
        [
            "--scenario",
            args.scenario,
            "--seed",
            str(args.seed),
            "--eval-starts",
            str(args.eval_starts),
        ]
        + ([] if args.policy_kwargs is None else ["--policy-kwargs", args.policy_kwargs])
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
