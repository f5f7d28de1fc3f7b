"""Backpropagation through time through the kinematic twin.

A policy (any ``torch.nn.Module`` following the protocol below, e.g. the spiking
``OlfactoryBrain``) drives a batch of twin flies for a whole episode; the loss is
built from the twin's positions and velocities and the policy's spikes, and one
backward pass sends gradients through every step of body and brain state.

Policy protocol::

    state = policy.init_state(batch_size)
    action, state, aux = policy.step(obs, state)   # action (B, 2) in [-1, 1]

``aux`` may hold ``kc_activity`` (B,) and ``spike_rate_hz`` (B, N) for the sparsity
and activity terms; a non-spiking policy returns ``{}``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from flyenv.envs.walking_env import resolve_task
from flyenv.envs.walking_episodes import WalkingEpisodes
from flyenv.io import atomic_write_json
from flyenv.tasks.base import make_config
from flyenv.training.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from flyenv.training.losses import EpisodeLoss, LossWeights

ODOR_TAXIS = "flyenv.tasks.odor_taxis:OdorTaxisTask"
EVAL_SEED_OFFSET = 1_000_003
"""Evaluation starts come from a random stream disjoint from training's."""


@dataclass
class BPTTConfig:
    num_episodes: int = 200
    batch_size: int = 32
    episode_s: float | None = 3.0
    """Episode length; None: the task's own ``time_limit_s`` (e.g. a conditioning protocol)."""
    learning_rate: float = 1e-3
    grad_clip: float = 5.0
    lr_step_episodes: int = 100
    lr_gamma: float = 0.5
    eval_every: int = 25
    eval_starts: int = 50
    seed: int = 0
    heading_curriculum_deg: tuple[float, float] | None = (30.0, 180.0)
    """Half-range of start headings grows linearly from the first to the second value
    over the first ``curriculum_fraction`` of training (None: the task's own range from
    the start). Facing roughly the source first lets walking and steering gains grow
    before the fly must turn around; evaluation always uses the task's full range."""
    curriculum_fraction: float = 0.5
    weights: LossWeights = field(default_factory=LossWeights)


@dataclass
class EpisodeMetrics:
    final_distance_to_goal: float
    mean_distance_to_goal: float
    total_distance_traveled: float
    success_rate: float
    """Fraction of flies whose first termination was the task's success."""
    failure_rate: float = 0.0
    """Fraction whose first termination was another reason (e.g. the wrong odor)."""


def rollout(
    policy: torch.nn.Module,
    batch: WalkingEpisodes,
    rng: np.random.Generator,
    steps: int,
    weights: LossWeights,
    record: bool = False,
) -> tuple[torch.Tensor, dict[str, float], EpisodeMetrics, list[dict[str, Any]]]:
    """One batched episode; returns (loss, loss parts, metrics, per-step aux if ``record``)."""
    obs, _ = batch.reset(rng)
    state = policy.init_state(batch.num_envs)
    loss = EpisodeLoss(weights, batch.config.goal_radius_mm, batch.config.control_period_s)
    reached = torch.zeros(batch.num_envs, dtype=torch.bool, device=batch.device)
    ended = torch.zeros_like(reached)
    distances = []
    trace = []
    for _ in range(steps):
        action, state, aux = policy.step(obs, state)
        prev_xy = batch.body.xy
        obs, _, terminated, _, extras = batch.step(action)
        displacement = torch.linalg.vector_norm(batch.body.xy - prev_xy, dim=1)
        loss.add_step(extras["distance_mm"], batch.body.velocity, displacement, aux, done=reached)
        # The episode's outcome is its first termination; the flies walk on after it
        # (no autoreset here), and only a success stops their loss terms.
        first = terminated & ~ended
        reached = reached | (first & extras["is_success"])
        ended = ended | terminated
        distances.append(extras["distance_mm"].detach())
        if record:
            trace.append({k: v.detach() for k, v in aux.items()})
    total, parts = loss.total()
    d = torch.stack(distances)
    metrics = EpisodeMetrics(
        final_distance_to_goal=float(d[-1].mean()),
        mean_distance_to_goal=float(d.mean()),
        total_distance_traveled=float(loss.path_length),
        success_rate=float(reached.float().mean()),
        failure_rate=float((ended & ~reached).float().mean()),
    )
    return total, parts, metrics, trace


class BPTTTrainer:
    """Trains ``policy`` through the twin; checkpoints and results live in ``run_dir``."""

    def __init__(
        self,
        policy: torch.nn.Module,
        config: BPTTConfig,
        run_dir: str | Path,
        env_kwargs: dict[str, Any] | None = None,
        device: str = "cpu",
        policy_spec: dict[str, Any] | None = None,
        task: str = ODOR_TAXIS,
    ) -> None:
        self.policy = policy.to(device)
        self.config = config
        self.run_dir = Path(run_dir)
        self.env_kwargs = dict(env_kwargs or {})
        self.policy_spec = policy_spec or {}
        self.task = task
        task_cls = resolve_task(task)
        task_kwargs = dict(self.env_kwargs)
        if config.episode_s is not None:
            task_kwargs["time_limit_s"] = config.episode_s
        cfg = make_config(task_cls.config_cls, task_kwargs, "BPTT")
        self.steps = cfg.max_episode_steps
        self.full_heading_range = cfg.start_heading_range_deg
        self.batch = WalkingEpisodes.twin(task_cls, config.batch_size, cfg, device=device)
        # Its own config object: the training curriculum must not touch evaluation.
        eval_cfg = make_config(task_cls.config_cls, task_kwargs, "BPTT")
        self.eval_batch = WalkingEpisodes.twin(
            task_cls, config.eval_starts, eval_cfg, device=device
        )
        params = [p for p in self.policy.parameters() if p.requires_grad]
        if not params:
            raise ValueError("the policy has no learnable parameters")
        self.optimizer = torch.optim.Adam(params, lr=config.learning_rate)
        self.scheduler = torch.optim.lr_scheduler.StepLR(
            self.optimizer, step_size=config.lr_step_episodes, gamma=config.lr_gamma
        )
        self.rng = np.random.default_rng(config.seed)
        self.episode = 0
        self.history: list[dict[str, Any]] = []
        self.evaluations: list[dict[str, Any]] = []
        self.best_success = -1.0

    # ------------------------------------------------------------------ checkpoints
    def _payload(self) -> dict[str, Any]:
        return {
            "format": "flyenv-bptt-checkpoint",
            "episode": self.episode,
            "policy_state": self.policy.state_dict(),
            "policy_spec": self.policy_spec,
            "optimizer_state": self.optimizer.state_dict(),
            "scheduler_state": self.scheduler.state_dict(),
            "env_kwargs": self.env_kwargs,
            "config": dataclasses.asdict(self.config),
            "history": self.history,
            "evaluations": self.evaluations,
            "best_success": self.best_success,
            "rng": rng_state(),
            "train_rng": self.rng.bit_generator.state,
        }

    def save(self, name: str) -> Path:
        return save_checkpoint(self.run_dir / name, self._payload())

    def resume(self) -> bool:
        """Continue from ``checkpoint_latest.pt`` if present; returns whether it did."""
        path = self.run_dir / "checkpoint_latest.pt"
        if not path.exists():
            return False
        ck = load_checkpoint(path)
        self.policy.load_state_dict(ck["policy_state"])
        self.optimizer.load_state_dict(ck["optimizer_state"])
        self.scheduler.load_state_dict(ck["scheduler_state"])
        self.episode = ck["episode"]
        self.history = ck["history"]
        self.evaluations = ck["evaluations"]
        self.best_success = ck["best_success"]
        set_rng_state(ck["rng"])
        self.rng.bit_generator.state = ck["train_rng"]
        return True

    # ------------------------------------------------------------------ loop
    def evaluate(self, seed_offset: int = EVAL_SEED_OFFSET) -> EpisodeMetrics:
        """Success on held-out twin starts (a stream disjoint from training)."""
        rng = np.random.default_rng(self.config.seed + seed_offset)
        with torch.no_grad():
            _, _, metrics, _ = rollout(
                self.policy, self.eval_batch, rng, self.steps, self.config.weights
            )
        return metrics

    def _apply_curriculum(self) -> float:
        """Set this episode's start-heading range; returns its half-width in degrees."""
        cfg = self.config
        lo, hi = self.full_heading_range
        full_half = (hi - lo) / 2
        if cfg.heading_curriculum_deg is None:
            return full_half
        start, end = cfg.heading_curriculum_deg
        span = max(1, int(cfg.curriculum_fraction * cfg.num_episodes))
        half = min(full_half, start + (end - start) * min(1.0, self.episode / span))
        center = (lo + hi) / 2
        self.batch.config.start_heading_range_deg = (center - half, center + half)
        return half

    def train_episode(self) -> dict[str, Any]:
        t0 = time.perf_counter()
        heading_half_range = self._apply_curriculum()
        self.policy.train()
        loss, parts, metrics, _ = rollout(
            self.policy, self.batch, self.rng, self.steps, self.config.weights
        )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = float(
            torch.nn.utils.clip_grad_norm_(self.policy.parameters(), self.config.grad_clip)
        )
        self.optimizer.step()
        self.scheduler.step()
        self.episode += 1
        row = {
            "episode": self.episode,
            **parts,
            **dataclasses.asdict(metrics),
            "grad_norm": grad_norm,
            "learning_rate": self.scheduler.get_last_lr()[0],
            "start_heading_half_range_deg": heading_half_range,
            "wall_s": time.perf_counter() - t0,
        }
        self.history.append(row)
        return row

    def train(self, progress: bool = True, writer=None, until_episode: int | None = None) -> None:
        """Train to ``config.num_episodes`` (or stop early at ``until_episode``; the
        schedule stays that of the full run, so resuming later continues it exactly)."""
        cfg = self.config
        stop = cfg.num_episodes if until_episode is None else min(until_episode, cfg.num_episodes)
        bar = tqdm(
            total=cfg.num_episodes, initial=self.episode, desc="BPTT episodes", disable=not progress
        )
        while self.episode < stop:
            row = self.train_episode()
            if writer is not None:
                for k, v in row.items():
                    if k != "episode":
                        writer.add_scalar(f"train/{k}", v, self.episode)
            if self.episode % cfg.eval_every == 0 or self.episode == cfg.num_episodes:
                ev = self.evaluate()
                self.evaluations.append({"episode": self.episode, **dataclasses.asdict(ev)})
                if writer is not None:
                    writer.add_scalar("eval/success_rate", ev.success_rate, self.episode)
                if ev.success_rate > self.best_success:
                    self.best_success = ev.success_rate
                    self.save("checkpoint_best.pt")
            self.save("checkpoint_latest.pt")
            self.write_results()
            bar.update(1)
            bar.set_postfix(
                loss=f"{row['total']:.3f}",
                nav=f"{row['navigation']:.3f}",
                succ=f"{row['success_rate']:.2f}",
            )
        bar.close()

    def write_results(self) -> None:
        final = self.history[-1] if self.history else {}
        atomic_write_json(
            self.run_dir / "training_results.json",
            {
                "config": dataclasses.asdict(self.config),
                "env_kwargs": self.env_kwargs,
                "training_losses": self.history,
                "evaluations": self.evaluations,
                "final_metrics": {
                    k: final.get(k)
                    for k in (
                        "final_distance_to_goal",
                        "mean_distance_to_goal",
                        "total_distance_traveled",
                    )
                },
            },
        )


def results_summary(path: str | Path) -> dict[str, Any]:
    """Read a run's training_results.json."""
    return json.loads(Path(path).read_text())
