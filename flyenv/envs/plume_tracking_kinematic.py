"""``flyenv/PlumeTracking-kinematic-v0``: plume tracking on the kinematic twin.

## Description

The task of ``flyenv/PlumeTracking-v0`` (same config keywords, same start draws for
the same seed, same observation, action, reward and episode end) performed by the
calibrated torch twin of the fly. The plume is sampled in torch (bilinear in space,
linear in time), so odor and wind readings are differentiable with respect to the
fly's position. ``gym.make`` gives one fly; ``gym.make_vec(..., num_envs=N)`` gives
a native vector env that steps all N flies in one tensor op (same-step autoreset;
see ``flyenv.envs.kinematic_base``).

## Action Space

``Box(-1, 1, (2,), float32)``: left and right descending drive.

## Observation Space

``Box(low, high, (9,), float32)``: odor at the L/R palps and L/R antennae
(log10(1 + c / odor_detection_threshold)), the wind at the antennae in the body frame
(along, across; / wind_obs_scale_mm_s), forward and leftward speed (/ 10 mm/s) and yaw
rate (rad/s); the table is in ``flyenv.envs.plume_tracking``.

## Rewards

Progress toward the source per mm, ``+ success_bonus`` on arrival, ``- failure_penalty``
on leaving the plume domain.

## Starting State

Downwind of the source (``start_downwind_mm``, ``start_crosswind_mm``), heading from
``start_heading_range_deg``, at rest; plume time ``plume_start_s``.

## Episode End

Terminated on reaching ``success_radius_mm`` of the source or leaving the plume
domain (``info["left_domain"]`` in the vector env, ``termination_reason`` in the
single env); truncated at ``time_limit_s``.

## Arguments

All ``PlumeTrackingConfig`` keywords plus ``device``, ``noise`` and ``calibration_path``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from flyenv.envs.kinematic_base import KinematicTaskEnv, KinematicTaskVectorEnv, TwinTaskBatch
from flyenv.envs.plume_task import (
    WIND_OBS_MAX,
    PlumeTrackingConfig,
    observation_space,
    odor_observation,
    sample_plume_starts,
)
from flyenv.stimuli.plume import world_to_body


class PlumeTrackingBatch(TwinTaskBatch):
    """B plume-tracking episodes on the twin as torch tensors (differentiable ``step``)."""

    def __init__(
        self,
        num_envs: int,
        config: PlumeTrackingConfig,
        device: str | torch.device = "cpu",
        noise: bool = False,
        calibration_path: str | None = None,
    ) -> None:
        self._init_twin(num_envs, config, device, noise, calibration_path)
        self.plume = config.plume
        self.torch_plume = self.plume.to_torch(self.device)
        f32 = dict(device=self.device, dtype=torch.float32)
        self.source = torch.as_tensor(self.plume.source_xy_mm, **f32)
        self.extent = torch.as_tensor(self.plume.extent_mm, **f32)
        self._vmax = float(np.percentile(self.plume.concentration, 99.5)) or 1.0

    def observation_space(self):
        return observation_space()

    def plume_time(self) -> torch.Tensor:
        return (
            self.config.plume_start_s + self.steps.to(torch.float64) * self.config.control_period_s
        )

    def sense(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Concentration at the 4 sensors (B, 4) and wind at the antennae (B, 2), world frame."""
        sensors = self.fly.sensor_positions()[..., :2]  # (B, 4, 2)
        points = torch.cat([sensors, sensors[:, 2:4].mean(dim=1, keepdim=True)], dim=1)
        conc, wind, _ = self.torch_plume.sample(self.plume_time(), points)
        return conc[:, :4], wind[:, 4]

    def observation(self, motion: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        conc, wind = self.sense()
        wind_body = world_to_body(wind, self.fly.heading) / self.config.wind_obs_scale_mm_s
        obs = torch.cat(
            [
                odor_observation(conc, self.config.odor_detection_threshold),
                wind_body.clamp(-WIND_OBS_MAX, WIND_OBS_MAX),
                motion,
            ],
            dim=1,
        )
        return obs, conc, wind

    def distance(self) -> torch.Tensor:
        return torch.linalg.vector_norm(self.fly.xy - self.source, dim=1)

    def reset(
        self,
        rng: np.random.Generator,
        mask: torch.Tensor | None = None,
        options: dict | None = None,
    ):
        B = self.num_envs
        f32 = dict(device=self.device, dtype=torch.float32)
        idx = torch.arange(B, device=self.device) if mask is None else mask.nonzero().flatten()
        full = torch.zeros(B, dtype=torch.bool, device=self.device)
        full[idx] = True
        n = int(idx.numel())
        if n:
            start = sample_plume_starts(rng, n, self.config, options)
            xy = self.fly.xy.detach().clone()
            heading = self.fly.heading.detach().clone()
            xy[idx] = torch.as_tensor(start.xy_mm, **f32)
            heading[idx] = torch.as_tensor(start.heading_rad, **f32)
            self.fly.reset(xy, heading, mask=None if mask is None else full)
            self._begin_episodes(full, partial=mask is not None)
        obs, conc, wind = self.observation(torch.zeros(B, 3, **f32))
        return obs, self._extras(
            torch.zeros(B, dtype=torch.bool, device=self.device), full & False, conc, wind
        )

    def step(self, actions: torch.Tensor):
        """One agent step for every fly: obs, reward, terminated, truncated, extras
        {distance_mm, is_success, left_domain, odor_concentration, wind_mm_s}."""
        cfg = self.config
        self.fly.step(
            actions.clamp(-1.0, 1.0),
            cfg.control_period_s,
            generator=self.generator if self.fly.config.noise else None,
        )
        self.steps = self.steps + 1
        motion = self.self_motion()
        self.prev_xy, self.prev_heading = self.fly.xy, self.fly.heading
        distance = self.distance()
        reward = cfg.progress_reward_per_mm * (self.prev_distance - distance)
        self.prev_distance = distance
        success = distance.detach() < cfg.success_radius_mm
        xy = self.fly.xy.detach()
        outside = ((xy < 0) | (xy >= self.extent)).any(dim=1) & ~success
        reward = (
            reward
            + cfg.success_bonus * success.to(reward.dtype)
            - cfg.failure_penalty * outside.to(reward.dtype)
        )
        terminated = success | outside
        truncated = ~terminated & (self.steps >= cfg.max_episode_steps)
        obs, conc, wind = self.observation(motion)
        return (
            obs,
            reward,
            terminated,
            truncated,
            self._extras(success, outside, conc, wind, distance),
        )

    def _extras(self, success, outside, conc, wind, distance=None) -> dict[str, torch.Tensor]:
        return {
            "distance_mm": self.prev_distance if distance is None else distance,
            "is_success": success,
            "left_domain": outside,
            "odor_concentration": conc,
            "wind_mm_s": wind,
        }

    def describe(self, index: int, extras: dict) -> dict[str, Any]:
        success = bool(extras["is_success"][index])
        reason = (
            "success"
            if success
            else ("left_domain" if bool(extras["left_domain"][index]) else None)
        )
        return {
            "distance_mm": float(extras["distance_mm"][index]),
            "position_mm": self.fly.xy[index].detach().cpu().numpy().astype(np.float64),
            "heading_rad": float(self.fly.heading[index]),
            "source_position_mm": self.plume.source_xy_mm.copy(),
            "time_s": float(self.steps[index]) * self.config.control_period_s,
            "odor_concentration": extras["odor_concentration"][index]
            .detach()
            .cpu()
            .numpy()
            .astype(np.float64),
            "wind_mm_s": extras["wind_mm_s"][index].detach().cpu().numpy().astype(np.float64),
            "is_success": success,
            "termination_reason": reason,
        }

    def render(self, index: int, trail_xy: np.ndarray, width: int, height: int) -> np.ndarray:
        from flyenv.viz.topdown import TopDownPlumeRenderer

        if getattr(self, "_renderer", None) is None or (
            self._renderer.width,
            self._renderer.height,
        ) != (width, height):
            self._renderer = TopDownPlumeRenderer(width, height, margin_mm=10.0)
        return self._renderer.render(
            self.plume,
            float(self.plume_time()[index]),
            trail_xy,
            float(self.fly.heading[index]),
            self.config.success_radius_mm,
            self._vmax,
        )


class PlumeTrackingKinematicEnv(KinematicTaskEnv):
    """One fly on the twin; see the module docstring."""

    config_cls = PlumeTrackingConfig
    batch_cls = PlumeTrackingBatch
    env_name = "PlumeTracking-kinematic-v0"


class PlumeTrackingKinematicVectorEnv(KinematicTaskVectorEnv):
    """All flies on the twin in one tensor op; see the module docstring."""

    config_cls = PlumeTrackingConfig
    batch_cls = PlumeTrackingBatch
    env_name = "PlumeTracking-kinematic-v0"
