"""B walking episodes: a task composed with a body, stepped as tensors.

This is the core every walking environment wraps (``WalkingEnv`` for one fly on
either body, ``WalkingVectorEnv`` for the twin's native batch) and what BPTT trains
through: ``step`` is differentiable with respect to the actions (and through the
body state across steps) unless run under ``torch.no_grad()``.

What is the same for every task lives here, once: the step counter, the self-motion
observation, the progress reward, the success bonus and failure penalty, the order of
termination reasons (the body's failures first, then the task's), truncation at the
time limit, and the reward terms that ``info`` reports.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from flyenv.bodies.base import Body
from flyenv.tasks.base import SELF_MOTION_OBS_MAX, WalkingTask, WalkingTaskConfig

UNSTABLE = "physics_unstable"


class WalkingEpisodes:
    """``reset`` / ``step`` B episodes of ``task`` on ``body`` (both with B = ``body.num_envs``).

    ``step`` returns (obs, reward, terminated, truncated, extras) as tensors; ``extras``
    holds per-fly tensors: ``distance_mm``, ``is_success``, ``termination_code`` (index
    into ``reasons``; 0 = running), ``reward_<term>`` for every reward term and the
    task's own info tensors. No autoreset here: the caller decides.
    """

    def __init__(self, task: WalkingTask, body: Body) -> None:
        if task.num_envs != body.num_envs:
            raise ValueError(
                f"the task has {task.num_envs} flies and the body {body.num_envs}; build both "
                "with the same number"
            )
        self.task = task
        self.body = body
        self.config: WalkingTaskConfig = task.config
        self.num_envs = body.num_envs
        self.device = body.device
        self.dtype = body.dtype
        self.reasons: tuple[str | None, ...] = (
            (None,) + tuple(body.failure_reasons) + tuple(task.termination_reasons)
        )
        self._n_body = len(body.failure_reasons)
        self._success_code = self.reasons.index(task.success_reason)
        self._task_failure_codes = [self.reasons.index(r) for r in task.failure_reasons]
        self._unstable_code = self.reasons.index(UNSTABLE) if UNSTABLE in self.reasons else None
        B, f = self.num_envs, dict(device=self.device, dtype=self.dtype)
        self.steps = torch.zeros(B, dtype=torch.long, device=self.device)
        self.prev_xy = torch.zeros(B, 2, **f)
        self.prev_heading = torch.zeros(B, **f)
        self.prev_distance = torch.zeros(B, **f)
        self.start_xy = np.zeros((B, 2))

    @classmethod
    def twin(
        cls,
        task_cls: type[WalkingTask],
        num_envs: int,
        config: WalkingTaskConfig,
        device: str | torch.device = "cpu",
        noise: bool = False,
        calibration_path: str | None = None,
    ) -> WalkingEpisodes:
        """B episodes of ``task_cls`` on the kinematic twin (float32)."""
        from flyenv.bodies.kinematic_fly import KinematicFly, KinematicFlyConfig

        body = KinematicFly(
            num_envs,
            KinematicFlyConfig(noise=noise, calibration_path=calibration_path),
            device=device,
        )
        return cls(task_cls(config, num_envs, body.device, body.dtype), body)

    # ------------------------------------------------------------------ pieces
    def time_s(self) -> torch.Tensor:
        """(B,) float64 time since each fly's episode start."""
        return self.steps.to(torch.float64) * self.config.control_period_s

    def self_motion(self) -> torch.Tensor:
        """(B, 3): forward / 10 mm/s, leftward / 10 mm/s, yaw rad/s over the last step."""
        dt = self.config.control_period_s
        xy, heading = self.body.xy, self.body.heading
        d = (xy - self.prev_xy) / dt
        c, s = torch.cos(self.prev_heading), torch.sin(self.prev_heading)
        dh = heading - self.prev_heading
        yaw = torch.atan2(torch.sin(dh), torch.cos(dh)) / dt
        motion = torch.stack(
            [(c * d[:, 0] + s * d[:, 1]) / 10.0, (-s * d[:, 0] + c * d[:, 1]) / 10.0, yaw], dim=1
        )
        return motion.clamp(-SELF_MOTION_OBS_MAX, SELF_MOTION_OBS_MAX)

    def observation(self, motion: torch.Tensor) -> torch.Tensor:
        time_s = self.time_s()
        parts = [self.task.get_observation(self.body, time_s), motion]
        extra = self.task.get_extra_observation(self.body, time_s)
        if extra is not None:
            parts.append(extra)
        return torch.cat(parts, dim=1)

    def reason(self, code: int) -> str | None:
        return self.reasons[code]

    # ------------------------------------------------------------------ episode
    def reset(
        self,
        rng: np.random.Generator,
        mask: torch.Tensor | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Draw new starts for the flies in ``mask`` (all if None); the others carry on
        with their autograd graphs intact. Returns the (B, D) observation and extras."""
        B = self.num_envs
        rows = torch.arange(B, device=self.device) if mask is None else mask.nonzero().flatten()
        started = torch.zeros(B, dtype=torch.bool, device=self.device)
        started[rows] = True
        n = int(rows.numel())
        if n:
            starts = self.task.sample_starts(rng, n, options)
            self.task.initialize_episode(starts, rows)
            f = dict(device=self.device, dtype=self.dtype)
            xy = self.body.xy.detach().clone()
            heading = self.body.heading.detach().clone()
            xy[rows] = torch.as_tensor(starts.xy_mm, **f)
            heading[rows] = torch.as_tensor(starts.heading_rad, **f)
            self.body.reset(
                xy, heading, mask=None if mask is None else started, init_phases=starts.cpg_phases
            )
            self.start_xy[rows.cpu().numpy()] = starts.xy_mm
            partial = mask is not None
            self.steps = torch.where(started, torch.zeros_like(self.steps), self.steps)
            self.prev_xy = torch.where(
                started[:, None], self.body.xy, self.prev_xy if partial else 0.0
            )
            self.prev_heading = torch.where(
                started, self.body.heading, self.prev_heading if partial else 0.0
            )
            self.prev_distance = torch.where(
                started, self.task.goal_distance(self.body), self.prev_distance if partial else 0.0
            )
        obs = self.observation(torch.zeros(B, 3, device=self.device, dtype=self.dtype))
        code = torch.zeros(B, dtype=torch.long, device=self.device)
        return obs, self._extras(self.prev_distance, code, {})

    def step(self, actions: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Advance every fly one agent step under ``actions`` (B, 2) in [-1, 1]."""
        cfg, task, body = self.config, self.task, self.body
        body.step(actions.clamp(-1.0, 1.0), cfg.control_period_s)
        self.steps = self.steps + 1
        code = body.failure() if self._n_body else None
        moved = task.after_step(body, self.time_s())
        motion = self.self_motion()
        self.prev_xy, self.prev_heading = body.xy, body.heading
        distance = task.goal_distance(body)
        if moved is not None:  # a new goal: progress counts from here
            self.prev_distance = torch.where(moved, distance, self.prev_distance)
        terms = {"progress": cfg.progress_reward_per_mm * (self.prev_distance - distance)}
        terms.update(task.get_reward_terms(body))
        if code is None:
            code = torch.zeros(self.num_envs, dtype=torch.long, device=self.device)
        for k, hit in enumerate(task.get_termination(body, distance).values()):
            code = torch.where((code == 0) & hit, self._n_body + 1 + k, code)
        failed = (code > 0) & (code <= self._n_body)
        for c in self._task_failure_codes:
            failed = failed | (code == c)
        terms["success"] = cfg.success_bonus * (code == self._success_code).to(self.dtype)
        terms["failure"] = -(cfg.failure_penalty * failed.to(self.dtype))
        obs = self.observation(motion)
        if self._unstable_code is not None:
            unstable = code == self._unstable_code
            if bool(unstable.any()):
                # MuJoCo has reset its state: it means nothing, so the episode ends with
                # the failure penalty alone and a zero observation.
                distance = torch.where(unstable, self.prev_distance, distance)
                terms = {k: torch.where(unstable, 0.0, v) for k, v in terms.items()}
                terms["failure"] = torch.where(unstable, -cfg.failure_penalty, terms["failure"])
                obs = torch.where(unstable[:, None], 0.0, obs)
        reward = sum(terms.values())
        self.prev_distance = distance
        terminated = code > 0
        truncated = ~terminated & (self.steps >= cfg.max_episode_steps)
        return obs, reward, terminated, truncated, self._extras(distance, code, terms)

    # ------------------------------------------------------------------ reporting
    def _extras(
        self, distance: torch.Tensor, code: torch.Tensor, terms: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        extras = {
            "distance_mm": distance,
            "is_success": code == self._success_code,
            "termination_code": code,
        }
        zero = torch.zeros(self.num_envs, device=self.device, dtype=self.dtype)
        for name in ("progress", *self._term_names(), "success", "failure"):
            extras[f"reward_{name}"] = terms.get(name, zero)
        extras.update(self.task.get_info(self.body, self.time_s()))
        return extras

    def _term_names(self) -> list[str]:
        if not hasattr(self, "_task_terms"):
            self._task_terms = list(self.task.get_reward_terms(self.body))
        return self._task_terms

    def describe(self, index: int, extras: dict[str, torch.Tensor]) -> dict[str, Any]:
        """The info dict of fly ``index`` (python floats, float64 arrays)."""
        info: dict[str, Any] = {
            "distance_mm": float(extras["distance_mm"][index]),
            "position_mm": self.body.xy[index].detach().cpu().numpy().astype(np.float64),
            "heading_rad": float(self.body.heading[index]),
            "time_s": float(self.time_s()[index]),
            "is_success": bool(extras["is_success"][index]),
            "termination_reason": self.reasons[int(extras["termination_code"][index])],
        }
        for key, value in extras.items():
            if key in info or key in ("termination_code",):
                continue
            v = value[index].detach().cpu()
            if v.dtype == torch.bool:
                info[key] = bool(v) if v.ndim == 0 else v.numpy()
            elif not v.is_floating_point():
                info[key] = int(v) if v.ndim == 0 else v.numpy()
            else:
                info[key] = float(v) if v.ndim == 0 else v.numpy().astype(np.float64)
        return info

    def info_arrays(self, extras: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
        """Per-fly info arrays for the vector env (gymnasium's batched info)."""
        info = {k: v.detach().cpu().numpy() for k, v in extras.items() if k != "termination_code"}
        codes = extras["termination_code"].cpu().numpy()
        info["termination_reason"] = np.array([self.reasons[c] for c in codes], dtype=object)
        info["position_mm"] = self.body.xy.detach().cpu().numpy()
        info["heading_rad"] = self.body.heading.detach().cpu().numpy()
        info["time_s"] = self.time_s().cpu().numpy()
        return info
