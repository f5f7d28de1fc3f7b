"""``flyenv/PlumeTracking-v0``: NeuroMechFly tracks a wind-borne odor plume to its source.

## Description

The MuJoCo NeuroMechFly of ``OdorTaxis-v0`` (hybrid turning controller, 2-D
descending drive) walks in a time-varying odor plume carried by wind
(``flyenv.stimuli.plume``; by default flygym's shipped ``plume_short.hdf5``, 240 x
160 mm, 3 s at 20 frames/s then held; ``plume_generator={...}`` makes longer and
larger ones). The plume source sits near the upwind (x = 0) edge; the fly starts
downwind of it. Intermittent odor alone is a poor guide: the wind direction felt by
the antennae (upwind = toward the source) is the other half of the problem.

## Action Space

``Box(-1, 1, (2,), float32)``: left and right descending drive, mapped onto flygym's
[-0.5, 1.5] as in OdorTaxis-v0.

## Observation Space

``Box(low, high, (9,), float32)``

| Num | Observation | Min | Max | Unit |
|-----|-------------|-----|-----|------|
| 0 | odor at the left maxillary palp | 0 | 8 | log10(1 + c / odor_detection_threshold) |
| 1 | odor at the right maxillary palp | 0 | 8 | same |
| 2 | odor at the left antenna | 0 | 8 | same |
| 3 | odor at the right antenna | 0 | 8 | same |
| 4 | wind along the body axis (positive: blowing from behind) | -10 | 10 | wind_obs_scale_mm_s (100 mm/s) |
| 5 | wind across the body (positive: blowing toward the fly's left) | -10 | 10 | wind_obs_scale_mm_s |
| 6 | forward speed over the last agent step | -10 | 10 | 10 mm/s |
| 7 | leftward speed over the last agent step | -10 | 10 | 10 mm/s |
| 8 | yaw rate (counter-clockwise) | -10 | 10 | rad/s |

Wind is the air velocity at the midpoint of the antennae, in the body frame. The
source position is never observed.

## Rewards

``progress_reward_per_mm * (d_prev - d_now)`` (thorax-to-source distance), ``+
success_bonus`` on reaching the source region, ``- failure_penalty`` on leaving the
plume domain, flipping or diverging physics.

## Starting State

At ``start_downwind_mm`` (uniform) downwind of the source and ``start_crosswind_mm``
across, heading uniform in ``start_heading_range_deg``, random CPG phases; plume at
time ``plume_start_s``. ``reset(options=...)`` can fix ``start_xy_mm``,
``start_heading_rad`` and ``init_phases``.

## Episode End

Terminated on reaching within ``success_radius_mm`` of the source (``"success"``),
leaving the plume domain (``"left_domain"``), flipping (``"flipped"``) or diverging
physics (``"physics_unstable"``); truncated at ``time_limit_s``.

## Info

``distance_mm``, ``position_mm``, ``heading_rad``, ``source_position_mm``, ``time_s``,
``odor_concentration`` (raw, at the 4 sensors), ``wind_mm_s`` (world frame),
``is_success``, ``termination_reason``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from flyenv.envs.mujoco_walking import MujocoWalkingEnv, build_marker_arena
from flyenv.envs.odor_task import ACTION_SPACE, make_config
from flyenv.envs.plume_task import (
    WIND_OBS_MAX,
    PlumeTrackingConfig,
    observation_space,
    odor_observation,
    sample_plume_starts,
)
from flyenv.stimuli.plume import world_to_body

_SOURCE_RGBA = (0.95, 0.45, 0.05, 1.0)


class PlumeTrackingEnv(MujocoWalkingEnv):
    """See the module docstring for spaces, reward, start state and episode end."""

    env_name = "PlumeTracking-v0"

    def __init__(self, render_mode: str | None = None, **config: Any) -> None:
        self.config = cfg = make_config(PlumeTrackingConfig, config, self.env_name)
        self.plume = cfg.plume
        ex, ey = self.plume.extent_mm
        arena = build_marker_arena(
            self.plume.source_xy_mm[None], [_SOURCE_RGBA], size_mm=(ex + 50.0, ey + 50.0)
        )
        self._init_body(render_mode, arena, 1)
        self._marker_xy = self.plume.source_xy_mm[None].copy()
        self.observation_space = observation_space()
        self.action_space = ACTION_SPACE
        self._start_xy = np.zeros(2)
        self._vmax = float(np.percentile(self.plume.concentration, 99.5)) or 1.0

    @property
    def plume_time_s(self) -> float:
        return self.config.plume_start_s + self.body.time_s

    def _sense(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        sensors = self.body.odor_sensor_positions[:, :2]
        antennae_mid = sensors[2:4].mean(axis=0, keepdims=True)
        conc, wind, inside = self.plume.sample(
            self.plume_time_s, np.concatenate([sensors, antennae_mid])
        )
        return conc[:4], wind[4], inside

    def _observation(self, self_motion: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        conc, wind, _ = self._sense()
        wind_body = world_to_body(wind, self.body.heading_rad) / self.config.wind_obs_scale_mm_s
        obs = np.concatenate(
            [
                odor_observation(conc, self.config.odor_detection_threshold),
                np.clip(wind_body, -WIND_OBS_MAX, WIND_OBS_MAX),
                self_motion,
            ]
        )
        return obs.astype(np.float32), conc, wind

    def _distance(self) -> float:
        return float(np.linalg.norm(self.body.thorax_position[:2] - self.plume.source_xy_mm))

    def _inside(self) -> bool:
        x, y = self.body.thorax_position[:2]
        ex, ey = self.plume.extent_mm
        return bool(0 <= x < ex and 0 <= y < ey)

    def _info(self, reason: str | None, conc: np.ndarray, wind: np.ndarray) -> dict[str, Any]:
        return {
            "distance_mm": self._distance(),
            "position_mm": self.body.thorax_position[:2].copy(),
            "heading_rad": self.body.heading_rad,
            "source_position_mm": self.plume.source_xy_mm.copy(),
            "time_s": self.body.time_s,
            "odor_concentration": conc.astype(np.float64),
            "wind_mm_s": wind.astype(np.float64),
            "is_success": reason == "success",
            "termination_reason": reason,
        }

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        start = sample_plume_starts(self.np_random, 1, self.config, options)
        self._start_xy = start.xy_mm[0]
        self._reset_body(start.cpg_phases[0], float(start.heading_rad[0]), tuple(start.xy_mm[0]))
        self._prev_distance = self._distance()
        obs, conc, wind = self._observation(np.zeros(3))
        return obs, self._info(None, conc, wind)

    def step(self, action):
        reason = self._advance(action)
        cfg = self.config
        if reason == "physics_unstable":
            return self._unstable_result(
                self._info(reason, np.zeros(4), self.plume.nominal_wind_mm_s)
            )
        distance = self._distance()
        reward = cfg.progress_reward_per_mm * (self._prev_distance - distance)
        self._prev_distance = distance
        if reason is None and distance < cfg.success_radius_mm:
            reason = "success"
        if reason is None and not self._inside():
            reason = "left_domain"
        if reason == "success":
            reward += cfg.success_bonus
        elif reason is not None:
            reward -= cfg.failure_penalty
        terminated, truncated = self._finish_step(reason)
        obs, conc, wind = self._observation(self._self_motion())
        return obs, float(reward), terminated, truncated, self._info(reason, conc, wind)

    # ------------------------------------------------------------------ rendering hooks
    def _view_points(self) -> np.ndarray:
        return np.stack([self.plume.source_xy_mm, self._start_xy])

    def _discs(self) -> list:
        return [(self.plume.source_xy_mm, self.config.success_radius_mm, (0.95, 0.45, 0.05, 0.2))]

    def _overlay(self, frame: np.ndarray) -> np.ndarray:
        """Blend the plume (magenta, by concentration) onto the floor under the fly."""
        xy = self._renderer.ground_xy(self.body.model).reshape(-1, 2)
        conc, _, _ = self.plume.sample(self.plume_time_s, xy)
        alpha = np.clip(conc / self._vmax, 0.0, 1.0) * 0.75
        # Keep the fly itself unpainted: it stands above the floor the plume is drawn on.
        alpha[np.linalg.norm(xy - self.body.thorax_position[:2], axis=1) < 2.0] = 0.0
        alpha = alpha.reshape(frame.shape[:2])[..., None]
        color = np.array([220, 40, 160], dtype=np.float32)
        return (frame * (1 - alpha) + color * alpha).astype(np.uint8)
