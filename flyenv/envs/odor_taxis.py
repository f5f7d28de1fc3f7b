"""``flyenv/OdorTaxis-v0``: NeuroMechFly walks to an attractive odor source.

## Description

The NeuroMechFly v2 body (flygym 1.2.1, MuJoCo) walks on flat ground under the
hybrid turning controller: six coupled oscillators generate a tripod gait from the
preprogrammed step, and the retraction and stumbling rules correct the legs. The
agent plays the descending neurons: every agent step (``control_period_s``, 10 ms
of physics by default) it sets a left and a right drive, which set the amplitude
and direction of the left and right legs' oscillators, so unequal drives turn the
fly. One attractive odor source lies ``source_distance_mm`` away; optional aversive
sources emit a second odor channel near the path. The fly smells with its two
antennae and two maxillary palps; it is never told where the source is.

## Action Space

``Box(-1, 1, (2,), float32)``, mapped linearly onto flygym's drive range [-0.5, 1.5]
(``drive = 0.5 + action``); values outside [-1, 1] are clipped, NaN/inf raise.

| Num | Action | Min | Max | flygym drive |
|-----|--------|-----|-----|--------------|
| 0 | left descending drive (amplitude of left legs' oscillators; negative walks them backwards) | -1 | 1 | -0.5 .. 1.5 |
| 1 | right descending drive | -1 | 1 | -0.5 .. 1.5 |

## Observation Space

``Box(low, high, (4 * odor_channels + 3,), float32)``. Odor is log-compressed above
a detection threshold (the intensity of the strongest source of that channel at
``detection_range_mm``): ``o = log10(1 + I / I_threshold)``, clipped to [0, 8].

| Num | Observation | Min | Max | Unit |
|-----|-------------|-----|-----|------|
| 4c + 0 | odor channel c at the left maxillary palp | 0 | 8 | log10(1 + I/I_thr) |
| 4c + 1 | odor channel c at the right maxillary palp | 0 | 8 | log10(1 + I/I_thr) |
| 4c + 2 | odor channel c at the left antenna | 0 | 8 | log10(1 + I/I_thr) |
| 4c + 3 | odor channel c at the right antenna | 0 | 8 | log10(1 + I/I_thr) |
| 4C + 0 | forward speed over the last agent step | -10 | 10 | 10 mm/s |
| 4C + 1 | leftward (lateral) speed over the last agent step | -10 | 10 | 10 mm/s |
| 4C + 2 | yaw rate (counter-clockwise) over the last agent step | -10 | 10 | rad/s |

Channel 0 is the attractive odor; channel 1 (present when there are aversive sources
or ``odor_channels >= 2``) is the aversive odor. Self-motion is what the fly's
proprioception and optic flow report, in the body frame.

## Rewards

``reward = progress_reward_per_mm * (d_prev - d_now)`` (distance of the thorax to the
source, mm) ``- aversive_penalty_per_s * dt`` while within ``aversive_radius_mm`` of an
aversive source, ``+ success_bonus`` on reaching the source, ``- failure_penalty`` when
the body flips or the physics diverges.

## Starting State

The fly is dropped from ``spawn_height_mm`` at the origin in flygym's "stretch" pose,
heading drawn uniformly from ``start_heading_range_deg`` (0 faces the source), CPG
phases uniform in [0, 2 pi). The attractive source lies at (d, 0) with d uniform in
``source_distance_mm``; aversive sources lie near the straight path (30-70 % of the
way, 2-5 mm to either side). ``reset(options=...)`` can fix ``source_distance_mm``,
``start_heading_rad``, ``aversive_positions_mm`` and ``init_phases``.

## Episode End

Terminated when the thorax is within ``success_radius_mm`` of the source
(``info["termination_reason"] == "success"``), when the body flips (``"flipped"``)
or when MuJoCo reports a diverging state (``"physics_unstable"``). Truncated at
``time_limit_s``.

## Info

``distance_mm``, ``position_mm`` (x, y), ``heading_rad``, ``source_position_mm``,
``aversive_positions_mm``, ``time_s``, ``is_success``, ``termination_reason``.

## Arguments

Every field of ``OdorTaxisConfig`` is a keyword of ``gym.make``, e.g.
``gym.make("flyenv/OdorTaxis-v0", n_aversive_sources=1, time_limit_s=5.0)``, as is
``render_mode="rgb_array"``.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from flygym.arena import OdorArena

from flyenv.bodies.mujoco_fly import MujocoFly, MujocoFlyConfig, PhysicsUnstableError
from flyenv.envs.odor_task import (
    ACTION_SPACE,
    SELF_MOTION_OBS_MAX,
    OdorTaxisConfig,
    action_to_drive,
    make_config,
    observation_space,
    odor_thresholds,
    odor_to_observation,
    peak_intensities,
    sample_starts,
)
from flyenv.envs.validation import validate_box_action
from flyenv.stimuli.odor import StaticOdorField

_CAMERA_NAME = "flyenv_overhead"
_ATTRACTIVE_RGBA = (0.95, 0.45, 0.05, 1.0)
_AVERSIVE_RGBA = (0.45, 0.2, 0.85, 1.0)


class OdorTaxisEnv(gym.Env):
    """See the module docstring for spaces, reward, start state and episode end."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 100}

    def __init__(self, render_mode: str | None = None, **config: Any) -> None:
        self.config = make_config(OdorTaxisConfig, config, "OdorTaxis-v0")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode={render_mode!r}; OdorTaxis supports None or 'rgb_array'")
        self.render_mode = render_mode
        cfg = self.config
        self.metadata = {**self.metadata, "render_fps": int(round(1.0 / cfg.control_period_s))}

        peaks = peak_intensities(cfg)
        n_sources = len(peaks)
        self._field = StaticOdorField(np.zeros((n_sources, 3)), peaks, cfg.diffusion)
        self._odor_threshold = odor_thresholds(cfg)

        arena = OdorArena(
            odor_source=np.array([[10.0 + 5 * i, 0.0, 0.0] for i in range(n_sources)]),
            peak_odor_intensity=peaks,
            marker_colors=[_ATTRACTIVE_RGBA] + [_AVERSIVE_RGBA] * cfg.n_aversive_sources,
            marker_size=0.5,
        )
        for i in range(n_sources):
            # Markers are for the eye only: the fly must never bump into them.
            for geom in arena.root_element.find("body", f"odor_source_marker_{i}").find_all("geom"):
                geom.contype, geom.conaffinity = 0, 0
        arena.root_element.worldbody.add(
            "camera", name=_CAMERA_NAME, mode="fixed", pos=(10, 0, 30), euler=(0, 0, 0), fovy=45
        )
        self.body = MujocoFly(
            arena,
            MujocoFlyConfig(timestep_s=cfg.physics_timestep_s, spawn_height_mm=cfg.spawn_height_mm),
        )
        model = self.body.model
        marker_bodies = [
            self.body.physics.model.name2id(f"odor_source_marker_{i}", "body")
            for i in range(n_sources)
        ]
        self._marker_mocap_ids = np.array([model.body_mocapid[b] for b in marker_bodies])
        self._camera_id = self.body.physics.model.name2id(_CAMERA_NAME, "camera")
        self._renderer = None

        self.observation_space = observation_space(cfg)
        self.action_space = ACTION_SPACE

        self._needs_reset = True
        self._steps = 0
        self.source_position_mm = np.zeros(2)
        self.aversive_positions_mm = np.zeros((cfg.n_aversive_sources, 2))

    # ------------------------------------------------------------------ helpers
    def _place_sources(self, source_xy: np.ndarray, aversive_xy: np.ndarray) -> None:
        self.source_position_mm = np.asarray(source_xy, dtype=np.float64)
        self.aversive_positions_mm = np.asarray(aversive_xy, dtype=np.float64).reshape(-1, 2)
        xy = np.concatenate([self.source_position_mm[None], self.aversive_positions_mm], axis=0)
        self._field.set_sources(xy)

    def _move_markers(self, data) -> None:
        xy = np.concatenate([self.source_position_mm[None], self.aversive_positions_mm], axis=0)
        data.mocap_pos[self._marker_mocap_ids, :2] = xy
        data.mocap_pos[self._marker_mocap_ids, 2] = 0.0

    def _place_camera(self) -> None:
        model = self.body.model
        cam = self._camera_id
        pts = np.concatenate([[[0.0, 0.0]], [self.source_position_mm], self.aversive_positions_mm])
        if self._renderer.trail:
            # Grow the view to keep the whole walk in frame.
            pts = np.concatenate([pts, np.array(self._renderer.trail)[:, :2]])
        lo, hi = pts.min(axis=0) - 6.0, pts.max(axis=0) + 6.0
        center = (lo + hi) / 2
        half_w = (hi[0] - lo[0]) / 2
        half_h = (hi[1] - lo[1]) / 2
        aspect = self.config.render_width / self.config.render_height
        tan = np.tan(np.deg2rad(model.cam_fovy[cam] / 2))
        height = max(half_h / tan, half_w / (tan * aspect))
        self._renderer.place_camera(model, self.body.data, np.array([center[0], center[1], height]))
        cfg = self.config
        discs = [(self.source_position_mm, cfg.success_radius_mm, (0.95, 0.45, 0.05, 0.25))]
        discs += [
            (xy, cfg.aversive_radius_mm, (0.45, 0.2, 0.85, 0.25))
            for xy in self.aversive_positions_mm
        ]
        self._renderer.set_discs(discs)

    def _odor_observation(self) -> np.ndarray:
        intensity = self._field.intensity(self.body.odor_sensor_positions)
        return odor_to_observation(intensity, self._odor_threshold)

    def _observation(self, self_motion: np.ndarray) -> np.ndarray:
        obs = np.concatenate([self._odor_observation().ravel(), self_motion])
        return obs.astype(np.float32)

    def _distance(self) -> float:
        return float(np.linalg.norm(self.body.thorax_position[:2] - self.source_position_mm))

    def _info(self, reason: str | None) -> dict[str, Any]:
        pos = self.body.thorax_position
        return {
            "distance_mm": self._distance(),
            "position_mm": pos[:2].copy(),
            "heading_rad": self.body.heading_rad,
            "source_position_mm": self.source_position_mm.copy(),
            "aversive_positions_mm": self.aversive_positions_mm.copy(),
            "time_s": self.body.time_s,
            "is_success": reason == "success",
            "termination_reason": reason,
        }

    # ------------------------------------------------------------------ gym API
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        start = sample_starts(self.np_random, 1, self.config, options)
        self._place_sources(start.source_xy_mm[0], start.aversive_xy_mm[0])
        self.body.reset(
            start.cpg_phases[0],
            heading_rad=float(start.heading_rad[0]),
            setup_world=self._move_markers,
        )
        self._steps = 0
        self._needs_reset = False
        self._prev_distance = self._distance()
        self._prev_xy = self.body.thorax_position[:2]
        self._prev_heading = self.body.heading_rad
        if self._renderer is not None:
            self._renderer.reset_trail()
            self._place_camera()
        return self._observation(np.zeros(3)), self._info(None)

    def _self_motion(self) -> np.ndarray:
        dt = self.config.control_period_s
        xy, heading = self.body.thorax_position[:2], self.body.heading_rad
        dx, dy = (xy - self._prev_xy) / dt
        c, s = np.cos(self._prev_heading), np.sin(self._prev_heading)
        forward, left = c * dx + s * dy, -s * dx + c * dy
        yaw_rate = np.angle(np.exp(1j * (heading - self._prev_heading))) / dt
        self._prev_xy, self._prev_heading = xy, heading
        motion = np.array([forward / 10.0, left / 10.0, yaw_rate])
        return np.clip(motion, -SELF_MOTION_OBS_MAX, SELF_MOTION_OBS_MAX)

    def step(self, action):
        if self._needs_reset:
            raise RuntimeError(
                "OdorTaxis-v0: call reset() before step() (and after an episode ends)"
            )
        action = validate_box_action(action, self.action_space, "OdorTaxis-v0")
        cfg = self.config
        reason = None
        try:
            self.body.step(action_to_drive(action), cfg.physics_steps_per_action)
        except PhysicsUnstableError:
            reason = "physics_unstable"
        self._steps += 1
        if reason is None and (self.body.is_flipped):
            reason = "flipped"
        if reason is None and not self.body.is_finite():
            reason = "physics_unstable"

        if reason == "physics_unstable":
            # MuJoCo has reset its data; the state is meaningless. End the episode.
            self._needs_reset = True
            obs = np.zeros(self.observation_space.shape, np.float32)
            info = self._info(reason)
            info["distance_mm"] = self._prev_distance
            return obs, -cfg.failure_penalty, True, False, info

        distance = self._distance()
        reward = cfg.progress_reward_per_mm * (self._prev_distance - distance)
        self._prev_distance = distance
        if len(self.aversive_positions_mm):
            xy = self.body.thorax_position[:2]
            near = np.linalg.norm(self.aversive_positions_mm - xy, axis=1) < cfg.aversive_radius_mm
            if near.any():
                reward -= cfg.aversive_penalty_per_s * cfg.control_period_s
        if reason is None and distance < cfg.success_radius_mm:
            reason = "success"
        if reason == "success":
            reward += cfg.success_bonus
        elif reason == "flipped":
            reward -= cfg.failure_penalty
        terminated = reason is not None
        truncated = not terminated and self._steps >= cfg.max_episode_steps
        self._needs_reset = terminated or truncated
        obs = self._observation(self._self_motion())
        if self._renderer is not None:
            self._renderer.add_trail_point(self.body.thorax_position)
        return obs, float(reward), terminated, truncated, self._info(reason)

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        if self._renderer is None:
            from flyenv.viz.mujoco_render import OverheadRenderer

            self._renderer = OverheadRenderer(
                self.body.model, _CAMERA_NAME, self.config.render_width, self.config.render_height
            )
            self._place_camera()
        if self.config.camera == "overhead" and self._renderer.trail:
            self._place_camera()
        elif self.config.camera == "follow":
            pos = self.body.thorax_position
            self._renderer.place_camera(
                self.body.model, self.body.data, np.array([pos[0], pos[1], 12.0])
            )
        return self._renderer.render(self.body.data)

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
