"""The plume-tracking task, independent of the body that performs it.

A time-varying odor plume (``flyenv.stimuli.plume``) is carried by wind from a
source near the upwind edge of the domain. The fly starts downwind and must reach
the source region. It smells the plume at its four odor sensors and feels the wind
at its antennae (in its body frame): the hydrodynamic stimulus.
Shared by ``PlumeTracking-v0`` (MuJoCo) and ``PlumeTracking-kinematic-v0`` (twin).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from gymnasium import spaces

from flyenv.envs.odor_task import ODOR_OBS_MAX, SELF_MOTION_OBS_MAX
from flyenv.envs.walking_task import WalkingTaskConfig
from flyenv.stimuli.plume import PlumeData, flygym_plume_short_path, load_plume

WIND_OBS_MAX = 10.0


@dataclass
class PlumeTrackingConfig(WalkingTaskConfig):
    """Task settings; distances in mm, times in s."""

    plume_path: str | None = None
    """HDF5 plume (flyenv or flygym format); None: flygym's shipped plume_short.hdf5,
    unless ``plume_generator`` is given."""
    plume_generator: dict[str, Any] | None = None
    """Keywords of ``PlumeGeneratorConfig``: generate (or fetch from the cache) a plume."""
    plume_time_mode: str = "clamp"
    """Past the plume's last frame: "clamp" holds it, "loop" wraps around."""
    plume_start_s: float = 0.0
    """Plume time at the start of an episode."""
    start_downwind_mm: tuple[float, float] = (25.0, 45.0)
    """Start distance downwind (+x) of the source, uniform in this range."""
    start_crosswind_mm: tuple[float, float] = (-5.0, 5.0)
    """Start offset across the wind (y) from the source, uniform in this range."""
    start_heading_range_deg: tuple[float, float] = (-180.0, 180.0)
    odor_detection_threshold: float = 1e-3
    """Concentration mapped to log10(2) in the observation (plume units)."""
    wind_obs_scale_mm_s: float = 100.0
    success_radius_mm: float = 8.0
    """Reaching within this distance of the source centre ends the episode (success)."""
    _plume: PlumeData | None = field(default=None, repr=False, compare=False)

    def validate(self) -> None:
        if self.plume_path is not None and self.plume_generator is not None:
            raise ValueError("give either plume_path or plume_generator, not both")
        for name in ("start_downwind_mm", "start_crosswind_mm", "start_heading_range_deg"):
            lo, hi = getattr(self, name)
            if lo > hi:
                raise ValueError(f"{name}={getattr(self, name)} must be (min, max) with min <= max")
        if self.start_downwind_mm[0] <= self.success_radius_mm:
            raise ValueError(
                f"start_downwind_mm={self.start_downwind_mm} starts inside success_radius_mm="
                f"{self.success_radius_mm}; start farther downwind"
            )
        if self.odor_detection_threshold <= 0 or self.wind_obs_scale_mm_s <= 0:
            raise ValueError("odor_detection_threshold and wind_obs_scale_mm_s must be > 0")
        self.validate_walking()
        plume = self.plume
        sx, sy = plume.source_xy_mm
        ex, ey = plume.extent_mm
        if sx + self.start_downwind_mm[1] >= ex or not (
            0 <= sy + self.start_crosswind_mm[0] and sy + self.start_crosswind_mm[1] < ey
        ):
            raise ValueError(
                f"starts (source {tuple(plume.source_xy_mm)} + downwind {self.start_downwind_mm}, "
                f"crosswind {self.start_crosswind_mm}) fall outside the {ex:.0f} x {ey:.0f} mm plume"
            )

    @property
    def plume(self) -> PlumeData:
        """The plume, loaded (or generated) once."""
        if self._plume is None:
            if self.plume_generator is not None:
                from flyenv.stimuli.plume_generator import PlumeGeneratorConfig, get_plume

                self._plume = get_plume(PlumeGeneratorConfig(**self.plume_generator))
                self._plume.time_mode = self.plume_time_mode
            else:
                path = self.plume_path or flygym_plume_short_path()
                self._plume = load_plume(path, time_mode=self.plume_time_mode)
        return self._plume


def observation_space() -> spaces.Box:
    """4 odor + 2 wind + 3 self-motion values."""
    low = np.concatenate([np.zeros(4), -np.full(2, WIND_OBS_MAX), -np.full(3, SELF_MOTION_OBS_MAX)])
    high = np.concatenate(
        [np.full(4, ODOR_OBS_MAX), np.full(2, WIND_OBS_MAX), np.full(3, SELF_MOTION_OBS_MAX)]
    )
    return spaces.Box(low.astype(np.float32), high.astype(np.float32), dtype=np.float32)


@dataclass
class PlumeStarts:
    xy_mm: np.ndarray  # (n, 2)
    heading_rad: np.ndarray  # (n,)
    cpg_phases: np.ndarray  # (n, 6)


def sample_plume_starts(
    rng: np.random.Generator, n: int, cfg: PlumeTrackingConfig, options: dict | None = None
) -> PlumeStarts:
    """Draw n starts downwind of the source; ``options`` may fix ``start_xy_mm``,
    ``start_heading_rad`` and ``init_phases``. Draw order is fixed (same seed, same start
    in the MuJoCo env and the twin)."""
    options = options or {}
    src = cfg.plume.source_xy_mm
    down = rng.uniform(*cfg.start_downwind_mm, size=n)
    cross = rng.uniform(*cfg.start_crosswind_mm, size=n)
    heading = np.deg2rad(rng.uniform(*cfg.start_heading_range_deg, size=n))
    phases = rng.uniform(0.0, 2 * np.pi, size=(n, 6))
    xy = np.stack([src[0] + down, src[1] + cross], axis=1)
    if options.get("start_xy_mm") is not None:
        xy = np.broadcast_to(np.asarray(options["start_xy_mm"], dtype=np.float64), (n, 2)).copy()
        ex, ey = cfg.plume.extent_mm
        if not ((0 <= xy[:, 0]) & (xy[:, 0] < ex) & (0 <= xy[:, 1]) & (xy[:, 1] < ey)).all():
            raise ValueError(
                f"start_xy_mm={xy[0].tolist()} lies outside the {ex:.0f} x {ey:.0f} mm plume"
            )
    if options.get("start_heading_rad") is not None:
        heading = np.full(n, float(options["start_heading_rad"]))
    if options.get("init_phases") is not None:
        phases = np.broadcast_to(
            np.asarray(options["init_phases"], dtype=np.float64), (n, 6)
        ).copy()
    return PlumeStarts(xy, heading, phases)


def odor_observation(concentration, threshold: float):
    """Concentration (numpy or torch) -> log10(1 + c / threshold), clipped to [0, 8]."""
    if isinstance(concentration, np.ndarray):
        return np.clip(
            np.log10(1.0 + np.maximum(concentration, 0.0) / threshold), 0.0, ODOR_OBS_MAX
        )
    return (1.0 + concentration.clamp_min(0.0) / threshold).log10().clamp(0.0, ODOR_OBS_MAX)
