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

import dataclasses
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from flygym.arena import OdorArena
from gymnasium import spaces

from flyenv.bodies.hybrid_turning import DRIVE_RANGE
from flyenv.bodies.mujoco_fly import MujocoFly, MujocoFlyConfig, PhysicsUnstableError
from flyenv.envs.validation import validate_box_action
from flyenv.stimuli.odor import StaticOdorField, diffusion_function

_CAMERA_NAME = "flyenv_overhead"
_ATTRACTIVE_RGBA = (0.95, 0.45, 0.05, 1.0)
_AVERSIVE_RGBA = (0.45, 0.2, 0.85, 1.0)
ODOR_OBS_MAX = 8.0
SELF_MOTION_OBS_MAX = 10.0


@dataclass
class OdorTaxisConfig:
    """Task settings; distances in mm, times in s."""

    source_distance_mm: tuple[float, float] = (10.0, 20.0)
    start_heading_range_deg: tuple[float, float] = (-180.0, 180.0)
    n_aversive_sources: int = 0
    odor_channels: int | None = None
    """None: 1 without aversive sources, else 2."""
    attractive_peak_intensity: float = 1.0
    aversive_peak_intensity: float = 1.0
    diffusion: str = "inverse_square"
    detection_range_mm: float = 100.0
    control_period_s: float = 0.01
    physics_timestep_s: float = 1e-4
    time_limit_s: float = 10.0
    success_radius_mm: float = 2.0
    aversive_radius_mm: float = 3.0
    progress_reward_per_mm: float = 1.0
    success_bonus: float = 10.0
    aversive_penalty_per_s: float = 5.0
    failure_penalty: float = 10.0
    spawn_height_mm: float = 0.2
    render_width: int = 640
    render_height: int = 480
    camera: str = "overhead"
    """"overhead": fixed above start and source; "follow": tracks the fly from above."""

    def validate(self) -> None:
        lo, hi = self.source_distance_mm
        if not 0 < lo <= hi:
            raise ValueError(
                f"source_distance_mm={self.source_distance_mm} must be (min, max) with 0 < min <= max"
            )
        if lo <= self.success_radius_mm:
            raise ValueError(
                f"the nearest source ({lo} mm) lies inside success_radius_mm={self.success_radius_mm}; "
                "raise source_distance_mm or lower success_radius_mm"
            )
        if self.n_aversive_sources < 0:
            raise ValueError(f"n_aversive_sources must be >= 0, got {self.n_aversive_sources}")
        if self.channels < 1 or (self.n_aversive_sources > 0 and self.channels < 2):
            raise ValueError(
                f"odor_channels={self.odor_channels}: aversive sources need a second channel; "
                "use odor_channels=2 or leave it as None"
            )
        steps = self.control_period_s / self.physics_timestep_s
        if self.control_period_s <= 0 or abs(steps - round(steps)) > 1e-6:
            raise ValueError(
                f"control_period_s={self.control_period_s} must be a positive multiple of "
                f"physics_timestep_s={self.physics_timestep_s}"
            )
        if self.time_limit_s < self.control_period_s:
            raise ValueError(f"time_limit_s={self.time_limit_s} is shorter than one agent step")
        if self.camera not in ("overhead", "follow"):
            raise ValueError(f"camera={self.camera!r}; use 'overhead' or 'follow'")
        diffusion_function(self.diffusion)

    @property
    def channels(self) -> int:
        if self.odor_channels is not None:
            return self.odor_channels
        return 2 if self.n_aversive_sources > 0 else 1

    @property
    def physics_steps_per_action(self) -> int:
        return int(round(self.control_period_s / self.physics_timestep_s))

    @property
    def max_episode_steps(self) -> int:
        return int(np.ceil(self.time_limit_s / self.control_period_s - 1e-9))


def action_to_drive(action: np.ndarray) -> np.ndarray:
    """Map Box(-1, 1) onto flygym's drive range [-0.5, 1.5]."""
    lo, hi = DRIVE_RANGE
    return lo + (np.asarray(action, dtype=np.float64) + 1.0) * (hi - lo) / 2.0


def odor_to_observation(intensity: np.ndarray, threshold: np.ndarray) -> np.ndarray:
    """(k, 4) intensities -> log-compressed (k, 4) observation block."""
    return np.clip(np.log10(1.0 + intensity / threshold[:, None]), 0.0, ODOR_OBS_MAX)


class OdorTaxisEnv(gym.Env):
    """See the module docstring for spaces, reward, start state and episode end."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 100}

    def __init__(self, render_mode: str | None = None, **config: Any) -> None:
        known = {f.name for f in dataclasses.fields(OdorTaxisConfig)}
        unknown = sorted(set(config) - known)
        if unknown:
            raise TypeError(
                f"OdorTaxis-v0 got unknown option(s) {unknown}; valid options: {sorted(known)}"
            )
        self.config = OdorTaxisConfig(**config)
        self.config.validate()
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode={render_mode!r}; OdorTaxis supports None or 'rgb_array'")
        self.render_mode = render_mode
        cfg = self.config
        self.metadata = {**self.metadata, "render_fps": int(round(1.0 / cfg.control_period_s))}

        k = cfg.channels
        n_sources = 1 + cfg.n_aversive_sources
        peaks = np.zeros((n_sources, k))
        peaks[0, 0] = cfg.attractive_peak_intensity
        if cfg.n_aversive_sources:
            peaks[1:, 1] = cfg.aversive_peak_intensity
        self._field = StaticOdorField(np.zeros((n_sources, 3)), peaks, cfg.diffusion)
        f = diffusion_function(cfg.diffusion)
        channel_peak = np.maximum(peaks.max(axis=0), 1e-12)
        self._odor_threshold = channel_peak * float(f(np.array(cfg.detection_range_mm)))

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

        n_obs = 4 * k + 3
        low = np.concatenate([np.zeros(4 * k), -np.full(3, SELF_MOTION_OBS_MAX)]).astype(np.float32)
        high = np.concatenate(
            [np.full(4 * k, ODOR_OBS_MAX), np.full(3, SELF_MOTION_OBS_MAX)]
        ).astype(np.float32)
        self.observation_space = spaces.Box(low, high, shape=(n_obs,), dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)

        self._needs_reset = True
        self._steps = 0
        self.source_position_mm = np.zeros(2)
        self.aversive_positions_mm = np.zeros((cfg.n_aversive_sources, 2))

    # ------------------------------------------------------------------ helpers
    def _place_sources(self, options: dict) -> None:
        cfg, rng = self.config, self.np_random
        d = options.get("source_distance_mm")
        if d is None:
            d = rng.uniform(*cfg.source_distance_mm)
        if not d > cfg.success_radius_mm:
            raise ValueError(
                f"source_distance_mm={d} must exceed success_radius_mm={cfg.success_radius_mm}"
            )
        self.source_position_mm = np.array([float(d), 0.0])
        av = options.get("aversive_positions_mm")
        if av is None:
            n = cfg.n_aversive_sources
            frac = rng.uniform(0.3, 0.7, n)
            side = rng.choice([-1.0, 1.0], n) * rng.uniform(2.0, 5.0, n)
            av = np.stack([frac * d, side], axis=1)
        av = np.asarray(av, dtype=np.float64).reshape(-1, 2)
        if len(av) != cfg.n_aversive_sources:
            raise ValueError(
                f"aversive_positions_mm has {len(av)} rows; the env has "
                f"n_aversive_sources={cfg.n_aversive_sources}"
            )
        self.aversive_positions_mm = av
        xy = np.concatenate([self.source_position_mm[None], av], axis=0)
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
        options = dict(options or {})
        cfg, rng = self.config, self.np_random
        self._place_sources(options)
        heading = options.get("start_heading_rad")
        if heading is None:
            heading = np.deg2rad(rng.uniform(*cfg.start_heading_range_deg))
        phases = options.get("init_phases")
        if phases is None:
            phases = rng.uniform(0.0, 2 * np.pi, 6)
        self.body.reset(
            np.asarray(phases, dtype=float),
            heading_rad=float(heading),
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
