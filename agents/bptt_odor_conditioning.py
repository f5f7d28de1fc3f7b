"""Learning to learn: train the plastic mushroom-body brain on OdorConditioning by BPTT.

The bilateral FlyWire mushroom-body brain with dopamine-gated KC->MBON plasticity
(``OlfactoryBrainConfig.plasticity``; ``flyenv.brains.olfactory.plasticity``) drives a
batch of twin flies through whole ``OdorConditioning`` episodes: an odor paired with
sugar (or shock), another without, then the two-odor choice. Within an episode only the
plastic KC->MBON weights change (the brain's state, reset every episode); across
episodes BPTT trains what is learnable (by default the plasticity rates and eligibility
time constant, the valence->DN weights, MBON->DN and the DN readout), so the brain
learns to learn. Loss: the navigation loss of the original olfactory-navigation training
(docs/research_systems.md) toward the correct source (the CS+
after sugar, the CS- after shock) in the test phase, plus energy, KC sparsity and
activity (``flyenv.training.losses``). Checkpoints are chosen on a validation stream of
training pairs; the report is the performance index on held-out pairs.

    python agents/bptt_odor_conditioning.py --num-episodes 30
    python agents/bptt_odor_conditioning.py --reinforcement punishment --seed 1
    python agents/bptt_odor_conditioning.py --reinforcement mixed  # sugar or shock per fly
    python agents/bptt_odor_conditioning.py --trainable all      # every brain tensor

Memory: BPTT keeps every step's plastic state (7,485 KC->MBON factors per fly and side)
for the backward pass, so memory grows with batch x episode steps: about 10 GB at 16
flies and the default 4.4 s protocol (440 steps); 64 flies ran out of 24 GB.

Outputs in --run-dir: training_results.json, checkpoint_latest.pt / checkpoint_best.pt
(atomic; rerun the same command to resume), tb/, evaluation.json and, unless
``--video none``, a MuJoCo video of one conditioning episode with the brain's rasters.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

import flyenv  # noqa: F401  (registers the environments)
from flyenv.brains.olfactory.policy import BPTT_BRAIN_DEFAULTS
from flyenv.config import cli
from flyenv.envs.walking_episodes import WalkingEpisodes
from flyenv.io import atomic_write_json
from flyenv.tasks.base import make_config
from flyenv.tasks.odor_conditioning import OdorConditioningConfig, OdorConditioningTask
from flyenv.training.bptt import BPTTConfig, BPTTTrainer, rollout
from flyenv.training.losses import LossWeights

TASK = "flyenv.tasks.odor_conditioning:OdorConditioningTask"
FACTORY = "flyenv.brains.olfactory.policy:OlfactoryBrainPolicy"
BRAIN_DEFAULTS = BPTT_BRAIN_DEFAULTS  # the OdorTaxis agent's brain; plasticity on top
TRAINABLE = {
    "plastic": ("brain.plasticity.", "brain.w_mbon_dn", "brain.readout."),
    "descending": ("brain.w_mbon_dn", "brain.w_pn_dn", "brain.dn_tonic", "brain.readout."),
    "all": ("",),
}
REPORT_SEED_OFFSET = 2_000_029
"""Held-out-pair evaluation stream: disjoint from training and validation."""


@dataclass
class Args:
    scenario: str | None = None
    """TOML of these fields; explicit flags override it."""
    num_episodes: int = 30
    """Training episodes (batches of flies)."""
    learning_rate: float = 3e-3
    """Adam step size."""
    batch_size: int = 16
    """Flies per episode."""
    reinforcement: Literal["reward", "punishment", "none", "mixed"] = "reward"
    """What the CS+ is paired with ("none": the control without reinforcement; "mixed":
    sugar or shock drawn per fly, so one brain learns to learn both; its report gives
    each held-out reinforcement separately)."""
    cs_duration_s: float = 0.5
    """Each odor presentation (s)."""
    gap_s: float = 0.2
    """Clean air after each presentation (s)."""
    test_s: float = 3.0
    """Time to choose (s)."""
    plasticity: str = "{}"
    """JSON of MBPlasticityConfig fields (e.g. '{"depression_rate_per_s": 3}'); "off"
    trains the same brain without plasticity (the control)."""
    brain_config: str = "{}"
    """JSON overrides of the brain config on top of BRAIN_DEFAULTS."""
    trainable: Literal["plastic", "descending", "all"] = "plastic"
    """Which tensors learn: plasticity rates + valence + MBON->DN + readout, the
    descending layer only, or everything."""
    nav_weight: float = 1.0
    energy_weight: float = 0.02
    sparsity_weight: float = 0.01
    activity_weight: float = 0.001
    seed: int = 0
    """Training seed."""
    eval_starts: int = 64
    """Validation flies (training pairs) per evaluation; checkpoint selection."""
    eval_every: int = 5
    """Episodes between validations."""
    report_starts: int = 128
    """Held-out-pair episodes of the final report."""
    video: str | None = "none"
    """mp4 path for a MuJoCo episode with rasters ("none": skip)."""
    run_dir: str | None = None
    """Output folder (default runs/bptt_odor_conditioning/<reinforcement>_seed<seed>)."""
    threads: int = 1
    """Torch threads."""
    no_progress: bool = False
    """Hide the progress bar."""


def env_kwargs(args: Args, pair_set: str = "train", reinforcement: str | None = None) -> dict:
    return {
        "reinforcement": reinforcement or args.reinforcement,
        "cs_duration_s": args.cs_duration_s,
        "gap_s": args.gap_s,
        "test_s": args.test_s,
        "pair_set": pair_set,
    }


def build(args: Args):
    kwargs = {**BRAIN_DEFAULTS, **json.loads(args.brain_config)}
    if args.plasticity.lower() != "off":  # off: the brain reads the ORN columns only
        kwargs["plasticity"] = json.loads(args.plasticity)
    spec = {"factory": FACTORY, "kwargs": kwargs}
    module_name, attr = FACTORY.split(":")
    policy = getattr(__import__(module_name, fromlist=[attr]), attr)(**kwargs)
    prefixes = TRAINABLE[args.trainable]
    for name, p in policy.named_parameters():
        p.requires_grad_(name.startswith(prefixes))
    return policy, spec


REPORT_CHUNK = 128
"""Episodes per batched rollout in ``report``: the plastic KC->MBON weights are per fly
(2 x 2,597 x 48 floats each), so 512 flies at once need several GB."""


def report_reinforcements(args: Args) -> list[str]:
    """What the held-out report runs: each of sugar and shock after mixed training."""
    return ["reward", "punishment"] if args.reinforcement == "mixed" else [args.reinforcement]


def heldout_reports(policy, args: Args, prefix: str) -> dict:
    """``{prefix}`` (one reinforcement) or ``{prefix}_reward`` and ``{prefix}_punishment``
    plus ``{prefix}`` with the sign-flip summary min(PI CS+ sugar, -PI CS+ shock)."""
    seed = args.seed + REPORT_SEED_OFFSET
    kinds = report_reinforcements(args)
    if len(kinds) == 1:
        return {prefix: report(policy, args, "heldout", args.report_starts, seed)}
    out = {
        f"{prefix}_{k}": report(policy, args, "heldout", args.report_starts, seed, k) for k in kinds
    }
    sugar, shock = out[f"{prefix}_reward"], out[f"{prefix}_punishment"]
    out[prefix] = {
        "performance_index": (sugar["performance_index"] + shock["performance_index"]) / 2,
        "sign_flip": min(sugar["performance_index_cs_plus"], -shock["performance_index_cs_plus"]),
        "no_choice": (sugar["no_choice"] + shock["no_choice"]) / 2,
    }
    return out


def report(
    policy, args: Args, pair_set: str, n: int, seed: int, reinforcement: str | None = None
) -> dict:
    """Performance index on ``n`` episodes of ``pair_set`` pairs: correct - wrong choices
    over n, and the same relative to the CS+ (sign flips with the reinforcement). Run in
    batches of at most ``REPORT_CHUNK`` flies drawing their starts one after the other
    from one stream, so the same ``seed`` gives the same episodes for every policy.
    ``reinforcement`` overrides ``args.reinforcement`` (a mixed-trained brain is reported
    under each)."""
    reinforcement = reinforcement or args.reinforcement
    if reinforcement == "mixed":
        raise ValueError("report one reinforcement at a time; see heldout_reports")
    cfg = make_config(OdorConditioningConfig, env_kwargs(args, pair_set, reinforcement), "report")
    rng = np.random.default_rng(seed)
    correct = wrong = distance = 0.0
    for start in range(0, n, REPORT_CHUNK):
        size = min(REPORT_CHUNK, n - start)
        batch = WalkingEpisodes.twin(OdorConditioningTask, size, cfg)
        with torch.no_grad():
            _, _, m, _ = rollout(policy, batch, rng, cfg.max_episode_steps, LossWeights())
        correct += m.success_rate * size / n
        wrong += m.failure_rate * size / n
        distance += m.final_distance_to_goal * size / n
    cs_plus_is_correct = reinforcement != "punishment"
    pi_cs_plus = (correct - wrong) if cs_plus_is_correct else (wrong - correct)
    return {
        "pair_set": pair_set,
        "episodes": n,
        "correct": correct,
        "wrong": wrong,
        "no_choice": 1.0 - correct - wrong,
        "performance_index": correct - wrong,
        "performance_index_cs_plus": pi_cs_plus,
        "mean_final_distance_to_goal_mm": distance,
    }


def parse_args(argv: list[str] | None = None) -> Args:
    args = cli(Args, argv, description=__doc__, agent="bptt_odor_conditioning")
    if args.num_episodes < 1 or args.batch_size < 1:
        raise SystemExit("error: --num-episodes and --batch-size must be >= 1")
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    run_dir = Path(
        args.run_dir or f"runs/bptt_odor_conditioning/{args.reinforcement}_seed{args.seed}"
    )
    policy, spec = build(args)
    config = BPTTConfig(
        num_episodes=args.num_episodes,
        batch_size=args.batch_size,
        episode_s=None,  # the protocol's length
        learning_rate=args.learning_rate,
        eval_every=args.eval_every,
        eval_starts=args.eval_starts,
        seed=args.seed,
        lr_step_episodes=max(1, args.num_episodes // 2),
        heading_curriculum_deg=None,
        weights=LossWeights(
            nav_weight=args.nav_weight,
            energy_weight=args.energy_weight,
            sparsity_weight=args.sparsity_weight,
            activity_weight=args.activity_weight,
        ),
    )
    trainer = BPTTTrainer(
        policy, config, run_dir, env_kwargs=env_kwargs(args), policy_spec=spec, task=TASK
    )
    # the untrained brain's report comes before a resume loads the trained weights
    untrained = heldout_reports(policy, args, "heldout_at_start")
    if trainer.resume():
        print(f"resumed {run_dir} at episode {trainer.episode}")
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(run_dir / "tb"))
    t0 = time.time()
    trainer.train(progress=not args.no_progress, writer=writer)
    writer.close()
    best = torch.load(run_dir / "checkpoint_best.pt", map_location="cpu", weights_only=False)
    policy.load_state_dict(best["policy_state"])
    policy.eval()
    result = {
        "reinforcement": args.reinforcement,
        "plasticity": args.plasticity,
        "trainable": args.trainable,
        "best_episode": best["episode"],
        "train_wall_s": time.time() - t0,
        "validation": dataclasses.asdict(trainer.evaluate()),
        **heldout_reports(policy, args, "heldout"),
        **untrained,
    }
    atomic_write_json(run_dir / "evaluation.json", result)
    kinds = report_reinforcements(args)
    for kind in kinds:
        key = "heldout" if len(kinds) == 1 else f"heldout_{kind}"
        h, h0 = result[key], result[key.replace("heldout", "heldout_at_start")]
        print(
            f"held-out pairs, {kind}: PI {h['performance_index']:+.2f} "
            f"(CS+ {h['performance_index_cs_plus']:+.2f}), before training "
            f"{h0['performance_index']:+.2f} (CS+ {h0['performance_index_cs_plus']:+.2f})"
        )
    if (args.video or "").lower() != "none":
        record(policy, args, Path(args.video), seed=10_000 + args.seed)
    return result


def record(policy_module, args: Args, out: Path, seed: int) -> None:
    """One MuJoCo conditioning episode with the brain's KC/MBON/DN rasters beside the fly."""
    import gymnasium as gym

    from flyenv.policies.torch_policy import StatefulTorchPolicy
    from flyenv.recording import record_video
    from flyenv.viz.brain_panel import raster_side_panel

    env = gym.make("flyenv/OdorConditioning-v0", render_mode="rgb_array", **env_kwargs(args))
    policy = StatefulTorchPolicy(policy_module)
    panel = raster_side_panel(policy, height=env.unwrapped.config.render_height)
    record_video(
        env, policy, out, seed=seed, label="plastic MB brain", play_speed=0.25, side_panel=panel
    )
    env.close()


if __name__ == "__main__":
    main()
