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

With ``observation="orn"`` and ``odor_names`` (one DoOR odor per source, attractive
first, e.g. ``odor_names=("ethyl acetate",)``) the odor block becomes the firing rates
of the olfactory receptor neurons of the G = 55 glomeruli of the connectome's PNs
(``flyenv.connectome.door``: DoOR response of each source's odor x its concentration,
Michaelis-Menten saturation around an 8 Hz spontaneous rate), divided by
``max_rate_hz`` (200 Hz). The concentration of a source's odor at a sensor is the
intensity above (peak x diffusion(distance)). Antennal glomeruli read the antennae,
the 6 palp glomeruli (VA4, VA7l, VC1, VC2, VM7d, VM7v) the maxillary palps; glomeruli
without DoOR data stay at the spontaneous rate. ``Box(low, high, (2 G + 3,), float32)``:

| Num | Observation | Min | Max | Unit |
|-----|-------------|-----|-----|------|
| g | ORN rate of glomerulus g (sorted names), left side | 0 | 1 | max_rate_hz |
| G + g | ORN rate of glomerulus g, right side | 0 | 1 | max_rate_hz |
| 2G + 0..2 | forward, leftward speed, yaw rate (as above) | -10 | 10 | as above |

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

import numpy as np

from flyenv.envs.mujoco_walking import MujocoWalkingEnv, build_marker_arena
from flyenv.envs.odor_task import (
    ACTION_SPACE,
    OdorTaxisConfig,
    OrnObservation,
    action_to_drive,
    make_config,
    observation_space,
    odor_thresholds,
    odor_to_observation,
    peak_intensities,
    sample_starts,
)
from flyenv.stimuli.odor import StaticOdorField

_ATTRACTIVE_RGBA = (0.95, 0.45, 0.05, 1.0)
_AVERSIVE_RGBA = (0.45, 0.2, 0.85, 1.0)

__all__ = ["OdorTaxisEnv", "OdorTaxisConfig", "action_to_drive"]


class OdorTaxisEnv(MujocoWalkingEnv):
    """See the module docstring for spaces, reward, start state and episode end."""

    env_name = "OdorTaxis-v0"

    def __init__(self, render_mode: str | None = None, **config: Any) -> None:
        self.config = cfg = make_config(OdorTaxisConfig, config, self.env_name)
        peaks = peak_intensities(cfg)
        n_sources = len(peaks)
        self._orn = OrnObservation.from_config(cfg) if cfg.observation == "orn" else None
        if self._orn is not None:
            peaks = np.diag(self._orn.source_peaks)  # one channel per source (its own odor)
        self._field = StaticOdorField(np.zeros((n_sources, 3)), peaks, cfg.diffusion)
        self._odor_threshold = odor_thresholds(cfg)
        arena = build_marker_arena(
            np.array([[10.0 + 5 * i, 0.0] for i in range(n_sources)]),
            [_ATTRACTIVE_RGBA] + [_AVERSIVE_RGBA] * cfg.n_aversive_sources,
        )
        self._init_body(render_mode, arena, n_sources)
        self.observation_space = observation_space(cfg)
        self.action_space = ACTION_SPACE
        self.source_position_mm = np.zeros(2)
        self.aversive_positions_mm = np.zeros((cfg.n_aversive_sources, 2))

    def _place_sources(self, source_xy: np.ndarray, aversive_xy: np.ndarray) -> None:
        self.source_position_mm = np.asarray(source_xy, dtype=np.float64)
        self.aversive_positions_mm = np.asarray(aversive_xy, dtype=np.float64).reshape(-1, 2)
        self._marker_xy = np.concatenate(
            [self.source_position_mm[None], self.aversive_positions_mm], axis=0
        )
        self._field.set_sources(self._marker_xy)

    def _observation(self, self_motion: np.ndarray) -> np.ndarray:
        return np.concatenate([self.odor_observation(), self_motion]).astype(np.float32)

    def odor_observation(self, sensor_positions_mm: np.ndarray | None = None) -> np.ndarray:
        """Odor block of the observation for (4, 3) sensor positions (default: the body's)."""
        if sensor_positions_mm is None:
            sensor_positions_mm = self.body.odor_sensor_positions
        intensity = self._field.intensity(sensor_positions_mm)
        if self._orn is not None:
            return self._orn.observe(intensity)
        return odor_to_observation(intensity, self._odor_threshold).ravel()

    def _distance(self) -> float:
        return float(np.linalg.norm(self.body.thorax_position[:2] - self.source_position_mm))

    def _info(self, reason: str | None) -> dict[str, Any]:
        return {
            "distance_mm": self._distance(),
            "position_mm": self.body.thorax_position[:2].copy(),
            "heading_rad": self.body.heading_rad,
            "source_position_mm": self.source_position_mm.copy(),
            "aversive_positions_mm": self.aversive_positions_mm.copy(),
            "time_s": self.body.time_s,
            "is_success": reason == "success",
            "termination_reason": reason,
        }

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        start = sample_starts(self.np_random, 1, self.config, options)
        self._place_sources(start.source_xy_mm[0], start.aversive_xy_mm[0])
        self._reset_body(start.cpg_phases[0], float(start.heading_rad[0]))
        self._prev_distance = self._distance()
        return self._observation(np.zeros(3)), self._info(None)

    def step(self, action):
        reason = self._advance(action)
        cfg = self.config
        if reason == "physics_unstable":
            info = self._info(reason)
            info["distance_mm"] = self._prev_distance
            return self._unstable_result(info)
        distance = self._distance()
        reward = cfg.progress_reward_per_mm * (self._prev_distance - distance)
        self._prev_distance = distance
        if len(self.aversive_positions_mm):
            xy = self.body.thorax_position[:2]
            if (
                np.linalg.norm(self.aversive_positions_mm - xy, axis=1) < cfg.aversive_radius_mm
            ).any():
                reward -= cfg.aversive_penalty_per_s * cfg.control_period_s
        if reason is None and distance < cfg.success_radius_mm:
            reason = "success"
        if reason == "success":
            reward += cfg.success_bonus
        elif reason == "flipped":
            reward -= cfg.failure_penalty
        terminated, truncated = self._finish_step(reason)
        obs = self._observation(self._self_motion())
        return obs, float(reward), terminated, truncated, self._info(reason)

    # ------------------------------------------------------------------ rendering hooks
    def _view_points(self) -> np.ndarray:
        return np.concatenate([[[0.0, 0.0]], self._marker_xy])

    def _discs(self) -> list:
        cfg = self.config
        discs = [(self.source_position_mm, cfg.success_radius_mm, (0.95, 0.45, 0.05, 0.25))]
        discs += [
            (xy, cfg.aversive_radius_mm, (0.45, 0.2, 0.85, 0.25))
            for xy in self.aversive_positions_mm
        ]
        return discs
