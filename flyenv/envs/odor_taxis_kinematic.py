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

With ``observation="orn"`` and ``odor_names``: ``Box(low, high, (2 G + 3,), float32)``
with G = 55 glomeruli, as in OdorTaxis-v0: ORN rate / max_rate_hz of each glomerulus
on the left side, then on the right side (antenna, or maxillary palp for the palp
glomeruli), then the self-motion. Same formula as the MuJoCo env (torch, float32,
differentiable with respect to the sensor positions and hence the actions).

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

import numpy as np
import torch

from flyenv.connectome.door import OrnFrontEnd
from flyenv.envs.kinematic_base import KinematicTaskEnv, KinematicTaskVectorEnv, TwinTaskBatch
from flyenv.envs.odor_task import (
    ODOR_OBS_MAX,
    OdorTaxisConfig,
    OrnObservation,
    observation_space,
    odor_thresholds,
    peak_intensities,
    sample_starts,
)
from flyenv.stimuli.odor import odor_intensity_torch


class OdorTaxisBatch(TwinTaskBatch):
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
        self._init_twin(num_envs, config, device, noise, calibration_path)
        f32 = dict(device=self.device, dtype=torch.float32)
        self.peaks = torch.as_tensor(peak_intensities(config), **f32)  # (n, k)
        self.threshold = torch.as_tensor(odor_thresholds(config), **f32)  # (k,)
        self.orn = OrnObservation.from_config(config) if config.observation == "orn" else None
        if self.orn is not None:
            self.orn_response = torch.as_tensor(self.orn.response, **f32)  # (n, G)
            self.orn_sensor_index = torch.as_tensor(self.orn.sensor_index, device=self.device)
            self.source_peaks = torch.diag(torch.as_tensor(self.orn.source_peaks, **f32))
        n = len(self.peaks)
        self.sources = torch.zeros(num_envs, n, 3, **f32)

    # ------------------------------------------------------------------ pieces
    def odor_observation(self, sensors_mm: torch.Tensor | None = None) -> torch.Tensor:
        """(B, 4k) log-compressed intensities at the 4 sensors per channel, or with
        ``observation="orn"`` (B, 2G) ORN rates / max_rate_hz (left side, right side).

        ``sensors_mm`` (B, 4, 3) overrides the twin's sensor positions.
        """
        sensors = self.fly.sensor_positions() if sensors_mm is None else sensors_mm
        if self.orn is not None:
            return self.orn_observation(sensors)
        intensity = odor_intensity_torch(sensors, self.sources, self.peaks, self.config.diffusion)
        obs = torch.log10(1.0 + intensity / self.threshold[None, :, None]).clamp(0.0, ODOR_OBS_MAX)
        return obs.flatten(1)

    def orn_observation(self, sensors_mm: torch.Tensor) -> torch.Tensor:
        """(B, 4, 3) sensors -> (B, 2G) ORN rates / max_rate_hz; ``OrnObservation.observe``."""
        intensity = odor_intensity_torch(
            sensors_mm, self.sources, self.source_peaks, self.config.diffusion
        )  # (B, n_sources, 4): each source's own odor
        conc = intensity[:, :, self.orn_sensor_index]  # (B, n_sources, 2, G)
        drive = torch.einsum("sg,bsjg->bjg", self.orn_response, conc)
        rates = OrnFrontEnd.rates_torch(drive, self.orn.config)
        return (rates / self.orn.config.max_rate_hz).flatten(1)

    def distance(self) -> torch.Tensor:
        return torch.linalg.vector_norm(self.fly.xy - self.sources[:, 0, :2], dim=1)

    # ------------------------------------------------------------------ episode
    def reset(
        self,
        rng: np.random.Generator,
        mask: torch.Tensor | None = None,
        options: dict | None = None,
    ) -> torch.Tensor:
        """Draw new starts for the flies in ``mask`` (all if None).

        Returns the (B, D) observation tensor and the extras of ``step``.
        """
        B = self.num_envs
        idx = torch.arange(B, device=self.device) if mask is None else mask.nonzero().flatten()
        n = int(idx.numel())
        if n == 0:
            return self.observation(torch.zeros(B, 3, device=self.device)), self._extras(None)
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
        self._begin_episodes(full_mask, partial=mask is not None)
        motion = torch.zeros(B, 3, **f32)
        return self.observation(motion), self._extras(None)

    def observation(self, motion: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.odor_observation(), motion], dim=1)

    def step(self, actions: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Advance every fly one agent step.

        Returns obs (B, D), reward (B,), terminated (B,) bool, truncated (B,) bool and
        extras {"distance_mm", "is_success"} (B,). No autoreset here: the caller decides.
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
        return self.observation(motion), reward, success, truncated, self._extras(success, distance)

    # ------------------------------------------------------------------ reporting
    def _extras(self, success: torch.Tensor | None, distance: torch.Tensor | None = None) -> dict:
        if success is None:
            success = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
        return {
            "distance_mm": self.prev_distance if distance is None else distance,
            "is_success": success,
        }

    def observation_space(self):
        return observation_space(self.config)

    def describe(self, index: int, extras: dict) -> dict[str, Any]:
        success = bool(extras["is_success"][index])
        return {
            "distance_mm": float(extras["distance_mm"][index]),
            "position_mm": self.fly.xy[index].detach().cpu().numpy().astype(np.float64),
            "heading_rad": float(self.fly.heading[index]),
            "source_position_mm": self.sources[index, 0, :2].cpu().numpy().astype(np.float64),
            "aversive_positions_mm": self.sources[index, 1:, :2].cpu().numpy().astype(np.float64),
            "time_s": float(self.steps[index]) * self.config.control_period_s,
            "is_success": success,
            "termination_reason": "success" if success else None,
        }

    def render(self, index: int, trail_xy: np.ndarray, width: int, height: int) -> np.ndarray:
        from flyenv.viz.topdown import TopDownOdorRenderer

        if getattr(self, "_renderer", None) is None or (
            self._renderer.width,
            self._renderer.height,
        ) != (width, height):
            self._renderer = TopDownOdorRenderer(width, height)
        return self._renderer.render(
            sources_xy=self.sources[index, :, :2].cpu().numpy(),
            peaks=self.peaks.cpu().numpy(),
            diffusion=self.config.diffusion,
            threshold=self.threshold.cpu().numpy(),
            trail_xy=trail_xy,
            heading_rad=float(self.fly.heading[index]),
            success_radius_mm=self.config.success_radius_mm,
            aversive_radius_mm=self.config.aversive_radius_mm,
        )


class OdorTaxisKinematicEnv(KinematicTaskEnv):
    """One fly on the twin; see the module docstring."""

    config_cls = OdorTaxisConfig
    batch_cls = OdorTaxisBatch
    env_name = "OdorTaxis-kinematic-v0"


class OdorTaxisKinematicVectorEnv(KinematicTaskVectorEnv):
    """All flies on the twin in one tensor op; see the module docstring."""

    config_cls = OdorTaxisConfig
    batch_cls = OdorTaxisBatch
    env_name = "OdorTaxis-kinematic-v0"


__all__ = ["OdorTaxisBatch", "OdorTaxisKinematicEnv", "OdorTaxisKinematicVectorEnv"]
