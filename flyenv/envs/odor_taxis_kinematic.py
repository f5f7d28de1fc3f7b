"""``flyenv/OdorTaxis-kinematic-v0``: the odor-taxis task on the kinematic twin.

## Description

The same task as ``flyenv/OdorTaxis-v0`` (same config keywords, same start draws for
the same seed, same observation, action, reward and success rule), performed by the
kinematic twin of the fly (``flyenv.bodies.kinematic_fly``): a batched torch model
whose drive -> velocity map, response lag and odor-sensor layout are calibrated from
the MuJoCo body. It runs thousands of flies in one tensor operation and is
differentiable end to end.

* ``gym.make("flyenv/OdorTaxis-kinematic-v0")``: one fly, numpy in/out (a ``gym.Env``).
* ``gym.make_vec("flyenv/OdorTaxis-kinematic-v0", num_envs=4096)``: a native
  ``VectorEnv`` stepping all flies at once (no per-env Python loop), autoreset in
  the same step (``AutoresetMode.SAME_STEP``: the returned observation of a finished
  env is its new first observation; the last one is in ``info["final_obs"]``, with
  ``info["_final_obs"]`` marking which rows are valid).
* ``OdorTaxisBatch``: the torch core both wrap, with a differentiable ``step``
  for BPTT (actions and observations stay tensors on ``device``).

## Action Space

``Box(-1, 1, (2,), float32)``: left and right descending drive, as in OdorTaxis-v0.

## Observation Space

``Box(low, high, (4 * odor_channels + 3,), float32)``, the table of OdorTaxis-v0:
per odor channel the log-compressed intensity at the L palp, R palp, L antenna and R
antenna, then forward speed / 10 mm/s, leftward speed / 10 mm/s and yaw rate (rad/s)
over the last step.

## Rewards

As OdorTaxis-v0: progress toward the source (per mm), minus a penalty per second
near an aversive source, plus ``success_bonus`` on arrival. The twin cannot flip or
diverge, so ``failure_penalty`` never applies.

## Starting State

As OdorTaxis-v0 (source at (d, 0), heading drawn from ``start_heading_range_deg``,
aversive sources near the path). ``reset(options=...)`` takes the same overrides.
The fly starts at rest; the calibrated start-up lag applies.

## Episode End

Terminated when the thorax is within ``success_radius_mm`` of the source; truncated
at ``time_limit_s``.

## Arguments

All ``OdorTaxisConfig`` keywords (body-physics ones such as ``physics_timestep_s``
are accepted and ignored), plus ``device`` ("cpu", "cuda"), ``noise`` (calibrated
trial-to-trial velocity noise, default False) and ``calibration_path``.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from flyenv.bodies.kinematic_fly import KinematicFly, KinematicFlyConfig
from flyenv.envs.odor_task import (
    ACTION_SPACE,
    ODOR_OBS_MAX,
    SELF_MOTION_OBS_MAX,
    OdorTaxisConfig,
    make_config,
    observation_space,
    odor_thresholds,
    peak_intensities,
    sample_starts,
)
from flyenv.envs.validation import validate_box_action
from flyenv.stimuli.odor import odor_intensity_torch

_TWIN_KEYS = ("device", "noise", "calibration_path")


def _split_kwargs(kwargs: dict[str, Any]) -> tuple[dict, dict]:
    twin = {k: kwargs.pop(k) for k in _TWIN_KEYS if k in kwargs}
    return kwargs, twin


class OdorTaxisBatch:
    """B odor-taxis episodes on the kinematic twin, as torch tensors.

    ``step`` is differentiable with respect to the actions (and through the body
    state across steps) unless called under ``torch.no_grad()``.
    """

    def __init__(
        self,
        num_envs: int,
        config: OdorTaxisConfig,
        device: str | torch.device = "cpu",
        noise: bool = False,
        calibration_path: str | None = None,
    ) -> None:
        self.config = config
        self.num_envs = num_envs
        self.device = torch.device(device)
        self.fly = KinematicFly(
            num_envs,
            KinematicFlyConfig(noise=noise, calibration_path=calibration_path),
            device=self.device,
        )
        f32 = dict(device=self.device, dtype=torch.float32)
        self.peaks = torch.as_tensor(peak_intensities(config), **f32)  # (n, k)
        self.threshold = torch.as_tensor(odor_thresholds(config), **f32)  # (k,)
        n = len(self.peaks)
        self.sources = torch.zeros(num_envs, n, 3, **f32)
        self.steps = torch.zeros(num_envs, dtype=torch.long, device=self.device)
        self.prev_distance = torch.zeros(num_envs, **f32)
        self.prev_xy = torch.zeros(num_envs, 2, **f32)
        self.prev_heading = torch.zeros(num_envs, **f32)
        self.generator = torch.Generator(device=self.device)

    # ------------------------------------------------------------------ pieces
    def odor_observation(self) -> torch.Tensor:
        """(B, 4k) log-compressed intensities at the 4 sensors per channel."""
        intensity = odor_intensity_torch(
            self.fly.sensor_positions(), self.sources, self.peaks, self.config.diffusion
        )
        obs = torch.log10(1.0 + intensity / self.threshold[None, :, None]).clamp(0.0, ODOR_OBS_MAX)
        return obs.flatten(1)

    def distance(self) -> torch.Tensor:
        return torch.linalg.vector_norm(self.fly.xy - self.sources[:, 0, :2], dim=1)

    def self_motion(self) -> torch.Tensor:
        dt = self.config.control_period_s
        d = (self.fly.xy - self.prev_xy) / dt
        c, s = torch.cos(self.prev_heading), torch.sin(self.prev_heading)
        forward = c * d[:, 0] + s * d[:, 1]
        left = -s * d[:, 0] + c * d[:, 1]
        dh = self.fly.heading - self.prev_heading
        yaw = torch.atan2(torch.sin(dh), torch.cos(dh)) / dt
        motion = torch.stack([forward / 10.0, left / 10.0, yaw], dim=1)
        return motion.clamp(-SELF_MOTION_OBS_MAX, SELF_MOTION_OBS_MAX)

    # ------------------------------------------------------------------ episode
    def reset(
        self,
        rng: np.random.Generator,
        mask: torch.Tensor | None = None,
        options: dict | None = None,
    ) -> torch.Tensor:
        """Draw new starts for the flies in ``mask`` (all if None); returns (B, obs) tensor."""
        B = self.num_envs
        idx = torch.arange(B, device=self.device) if mask is None else mask.nonzero().flatten()
        n = int(idx.numel())
        if n == 0:
            return self.observation(torch.zeros(B, 3, device=self.device))
        start = sample_starts(rng, n, self.config, options)
        f32 = dict(device=self.device, dtype=torch.float32)
        src = torch.zeros(n, len(self.peaks), 3, **f32)
        src[:, 0, :2] = torch.as_tensor(start.source_xy_mm, **f32)
        if self.config.n_aversive_sources:
            src[:, 1:, :2] = torch.as_tensor(start.aversive_xy_mm, **f32)
        heading = torch.as_tensor(start.heading_rad, **f32)
        full_mask = torch.zeros(B, dtype=torch.bool, device=self.device)
        full_mask[idx] = True
        sources = self.sources.clone()
        sources[idx] = src
        self.sources = sources
        heading_full = self.fly.heading.detach().clone()
        heading_full[idx] = heading
        self.fly.reset(
            torch.zeros(B, 2, **f32), heading_full, mask=None if mask is None else full_mask
        )
        steps = self.steps.clone()
        steps[idx] = 0
        self.steps = steps
        self.prev_xy = torch.where(full_mask[:, None], self.fly.xy, self.prev_xy)
        self.prev_heading = torch.where(full_mask, self.fly.heading, self.prev_heading)
        self.prev_distance = torch.where(full_mask, self.distance(), self.prev_distance)
        motion = torch.zeros(B, 3, **f32)
        return self.observation(motion)

    def observation(self, motion: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.odor_observation(), motion], dim=1)

    def step(self, actions: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Advance every fly one agent step.

        Returns obs (B, D), reward (B,), terminated (B,) bool, truncated (B,) bool,
        distance_mm (B,). No autoreset here: the caller decides.
        """
        cfg = self.config
        actions = actions.clamp(-1.0, 1.0)
        self.fly.step(
            actions,
            cfg.control_period_s,
            generator=self.generator if self.fly.config.noise else None,
        )
        self.steps = self.steps + 1
        motion = self.self_motion()
        self.prev_xy, self.prev_heading = self.fly.xy, self.fly.heading
        distance = self.distance()
        reward = cfg.progress_reward_per_mm * (self.prev_distance - distance)
        self.prev_distance = distance
        if cfg.n_aversive_sources:
            near = torch.linalg.vector_norm(self.sources[:, 1:, :2] - self.fly.xy[:, None], dim=2)
            penalty = (near < cfg.aversive_radius_mm).any(dim=1).to(reward.dtype)
            reward = reward - cfg.aversive_penalty_per_s * cfg.control_period_s * penalty
        success = distance.detach() < cfg.success_radius_mm
        reward = reward + cfg.success_bonus * success.to(reward.dtype)
        truncated = (~success) & (self.steps >= cfg.max_episode_steps)
        return self.observation(motion), reward, success, truncated, distance


class OdorTaxisKinematicEnv(gym.Env):
    """One fly on the twin; see the module docstring."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 100}

    def __init__(self, render_mode: str | None = None, **kwargs: Any) -> None:
        kwargs, twin = _split_kwargs(dict(kwargs))
        self.config = make_config(OdorTaxisConfig, kwargs, "OdorTaxis-kinematic-v0")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode={render_mode!r}; use None or 'rgb_array'")
        self.render_mode = render_mode
        self.metadata = {
            **self.metadata,
            "render_fps": int(round(1.0 / self.config.control_period_s)),
        }
        self.batch = OdorTaxisBatch(1, self.config, **twin)
        self.observation_space = observation_space(self.config)
        self.action_space = ACTION_SPACE
        self._needs_reset = True
        self._renderer = None
        self._trail: list[np.ndarray] = []

    def _info(self, distance: float, success: bool) -> dict[str, Any]:
        b = self.batch
        return {
            "distance_mm": float(distance),
            "position_mm": b.fly.xy[0].detach().cpu().numpy().astype(np.float64),
            "heading_rad": float(b.fly.heading[0]),
            "source_position_mm": b.sources[0, 0, :2].cpu().numpy().astype(np.float64),
            "aversive_positions_mm": b.sources[0, 1:, :2].cpu().numpy().astype(np.float64),
            "time_s": float(b.steps[0]) * self.config.control_period_s,
            "is_success": bool(success),
            "termination_reason": "success" if success else None,
        }

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        with torch.no_grad():
            obs = self.batch.reset(self.np_random, options=options)
        if seed is not None:
            self.batch.generator.manual_seed(int(seed))
        self._needs_reset = False
        self._trail = [self.batch.fly.xy[0].cpu().numpy().copy()]
        return obs[0].cpu().numpy(), self._info(float(self.batch.prev_distance[0]), False)

    def step(self, action):
        if self._needs_reset:
            raise RuntimeError(
                "OdorTaxis-kinematic-v0: call reset() before step() (and after an episode ends)"
            )
        action = validate_box_action(action, self.action_space, "OdorTaxis-kinematic-v0")
        with torch.no_grad():
            a = torch.as_tensor(action, dtype=torch.float32, device=self.batch.device)[None]
            obs, reward, terminated, truncated, distance = self.batch.step(a)
        term, trunc = bool(terminated[0]), bool(truncated[0])
        self._needs_reset = term or trunc
        self._trail.append(self.batch.fly.xy[0].cpu().numpy().copy())
        return (
            obs[0].cpu().numpy(),
            float(reward[0]),
            term,
            trunc,
            self._info(float(distance[0]), term),
        )

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        from flyenv.viz.topdown import TopDownOdorRenderer

        if self._renderer is None:
            self._renderer = TopDownOdorRenderer(
                self.config.render_width, self.config.render_height
            )
        b = self.batch
        return self._renderer.render(
            sources_xy=b.sources[0, :, :2].cpu().numpy(),
            peaks=b.peaks.cpu().numpy(),
            diffusion=self.config.diffusion,
            threshold=b.threshold.cpu().numpy(),
            trail_xy=np.array(self._trail),
            heading_rad=float(b.fly.heading[0]),
            success_radius_mm=self.config.success_radius_mm,
            aversive_radius_mm=self.config.aversive_radius_mm,
        )


class OdorTaxisKinematicVectorEnv(VectorEnv):
    """``num_envs`` flies on the twin stepped in one tensor op; see the module docstring."""

    metadata = {"render_modes": [], "autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(self, num_envs: int, render_mode: str | None = None, **kwargs: Any) -> None:
        if render_mode is not None:
            raise ValueError("the vector twin does not render; use the single env for videos")
        kwargs, twin = _split_kwargs(dict(kwargs))
        self.config = make_config(OdorTaxisConfig, kwargs, "OdorTaxis-kinematic-v0")
        self.num_envs = num_envs
        self.batch = OdorTaxisBatch(num_envs, self.config, **twin)
        self.single_observation_space = observation_space(self.config)
        self.single_action_space = ACTION_SPACE
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._rng = np.random.default_rng()
        self._needs_reset = True

    def reset(self, *, seed: int | list[int] | None = None, options: dict | None = None):
        if isinstance(seed, (list, tuple)):
            seed = seed[0] if seed else None  # one stream drives the whole batch
        if seed is not None:
            self._rng = np.random.default_rng(seed)
            self.batch.generator.manual_seed(int(seed))
        with torch.no_grad():
            obs = self.batch.reset(self._rng, options=options)
        self._needs_reset = False
        return obs.cpu().numpy(), self._info(
            self.batch.prev_distance, torch.zeros(self.num_envs, dtype=torch.bool)
        )

    def _info(self, distance: torch.Tensor, success: torch.Tensor) -> dict[str, np.ndarray]:
        b = self.batch
        return {
            "distance_mm": distance.cpu().numpy(),
            "position_mm": b.fly.xy.cpu().numpy(),
            "heading_rad": b.fly.heading.cpu().numpy(),
            "is_success": success.cpu().numpy(),
        }

    def step(self, actions):
        if self._needs_reset:
            raise RuntimeError("call reset() before step()")
        actions = np.asarray(actions, dtype=np.float32)
        if actions.shape != (self.num_envs, 2):
            raise ValueError(
                f"actions have shape {actions.shape}, expected ({self.num_envs}, 2): one (left, right) row per env"
            )
        if not np.isfinite(actions).all():
            raise ValueError("actions contain NaN or inf; check the policy's output")
        with torch.no_grad():
            a = torch.as_tensor(actions, device=self.batch.device)
            obs, reward, terminated, truncated, distance = self.batch.step(a)
            info = self._info(distance, terminated)
            done = terminated | truncated
            if bool(done.any()):
                info["final_obs"] = obs.cpu().numpy().copy()
                info["_final_obs"] = done.cpu().numpy()
                fresh = self.batch.reset(self._rng, mask=done)
                obs = torch.where(done[:, None], fresh, obs)
        return (
            obs.cpu().numpy(),
            reward.cpu().numpy(),
            terminated.cpu().numpy(),
            truncated.cpu().numpy(),
            info,
        )

    def close_extras(self, **kwargs: Any) -> None:
        pass


__all__ = ["OdorTaxisBatch", "OdorTaxisKinematicEnv", "OdorTaxisKinematicVectorEnv"]
