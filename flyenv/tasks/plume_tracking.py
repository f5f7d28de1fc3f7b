"""``PlumeTracking``: the fly tracks a wind-borne odor plume to its source.

Registered on two bodies (``flyenv.registration``):

| id | body |
|----|------|
| ``flyenv/PlumeTracking-v0`` | NeuroMechFly v2 in MuJoCo (flygym 1.2.1), one fly, float64 |
| ``flyenv/PlumeTracking-kinematic-v0`` | the calibrated kinematic twin (torch): ``gym.make`` gives one fly, ``gym.make_vec(..., num_envs=N)`` a native vector env (same-step autoreset, ``final_obs`` / ``final_info``); the plume is sampled in torch, bilinear in space and linear in time, so odor and wind are differentiable in position |

The same seed draws the same start on both bodies.

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

``Box(low, high, (9,), float32)`` with ``observation="intensity"`` (the default):

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

With ``observation="orn"`` and ``odor_name`` (the plume's odor, one DoOR name, CAS or
InChIKey, e.g. ``odor_name="ethyl acetate"``) the odor block becomes the firing rates
of the ORNs of the connectome's G = 55 glomeruli (``flyenv.connectome.door``), as in
``OdorTaxis`` (``flyenv.tasks.odor_taxis.OrnObservation``, reused): side s of glomerulus
g reads the concentration at that side's antenna, or at its maxillary palp for the 6
palp glomeruli; drive = DoOR response x ``orn_concentration_scale`` x concentration;
rate = the saturating ORN model (``orn_config``). ``Box(low, high, (2G + 5,) = (115,),
float32)``:

| Num | Observation | Min | Max | Unit |
|-----|-------------|-----|-----|------|
| g | ORN rate of glomerulus g (sorted names), left side | 0 | 1 | max_rate_hz |
| G + g | ORN rate of glomerulus g, right side | 0 | 1 | max_rate_hz |
| 2G | wind along the body axis (as Num 4 above) | -10 | 10 | wind_obs_scale_mm_s |
| 2G + 1 | wind across the body (as Num 5 above) | -10 | 10 | wind_obs_scale_mm_s |
| 2G + 2 .. 2G + 4 | forward speed, leftward speed, yaw rate (as Num 6-8 above) | -10 | 10 | as above |

The spiking olfactory brain reads the first 2G entries (``OlfactoryBrain.orn_rates``)
and, with its wind pathway on (``OlfactoryBrainConfig(wind_obs_columns=(110, 111))``,
antennal mechanosensation -> descending neurons, a model choice), the two wind entries;
never the self-motion.

## Rewards

``progress_reward_per_mm * (d_prev - d_now)`` (thorax-to-source distance), ``+
success_bonus`` on reaching the source region, ``- failure_penalty`` on leaving the
plume domain, flipping or diverging physics (the last two: MuJoCo only). Each term is in
``info``: ``reward_progress``, ``reward_success``, ``reward_failure``.

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
``is_success``, ``termination_reason`` and the reward terms; the vector env gives each as
an array over flies.

## Arguments

Every field of ``PlumeTrackingConfig`` is a keyword of ``gym.make``, as is
``render_mode="rgb_array"`` (MuJoCo: the overhead camera with the plume painted on the
floor; twin: a top-down plume map). The twin also takes ``device``, ``noise`` and
``calibration_path``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from flyenv.bodies.base import Body
from flyenv.connectome.door import OrnConfig, OrnFrontEnd
from flyenv.stimuli.plume import PlumeData, flygym_plume_short_path, load_plume, world_to_body
from flyenv.tasks.base import (
    ODOR_OBS_MAX,
    SELF_MOTION_OBS_MAX,
    Starts,
    WalkingTask,
    WalkingTaskConfig,
    fix_start_options,
)

_SOURCE_RGBA = (0.95, 0.45, 0.05, 1.0)


WIND_OBS_MAX = 10.0
OBSERVATIONS = ("intensity", "orn")


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
    observation: str = "intensity"
    """"intensity": log-compressed concentration at the 4 sensors; "orn": ORN rates of the
    connectome's glomeruli on the left and right side (needs ``odor_name``)."""
    odor_name: str | None = None
    """The plume's odor (one DoOR name, CAS or InChIKey) for observation="orn"."""
    orn_config: OrnConfig | None = None
    """ORN rate model for observation="orn" (None: ``OrnConfig()`` defaults; a dict of its
    fields is accepted)."""
    orn_concentration_scale: float = 1.0
    """Plume concentration -> the ORN model's concentration units (OdorTaxis intensity
    units, in which ``OrnConfig.half_saturation`` = 0.01). 1: plume units as they are
    (in-plume concentrations of the shipped plume are ~0.01-0.8, so hits saturate)."""
    _plume: PlumeData | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.orn_config, dict):
            self.orn_config = OrnConfig(**self.orn_config)

    def validate(self) -> None:
        if self.observation not in OBSERVATIONS:
            raise ValueError(f"observation={self.observation!r}; use one of {OBSERVATIONS}")
        if self.observation == "orn":
            if not isinstance(self.odor_name, str):
                raise ValueError(
                    'observation="orn" needs the plume\'s odor: pass odor_name="ethyl acetate" '
                    f"(one DoOR odor name, CAS or InChIKey), got odor_name={self.odor_name!r}"
                )
            if not self.orn_concentration_scale > 0:
                raise ValueError(
                    f"orn_concentration_scale must be > 0, got {self.orn_concentration_scale}"
                )
            plume_orn_observation(self)  # unknown odor names fail here
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
        super().validate()
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


def observation_space(cfg: PlumeTrackingConfig | None = None) -> spaces.Box:
    """4 odor values (or 2G ORN rates with observation="orn") + 2 wind + 3 self-motion."""
    if cfg is not None and cfg.observation == "orn":
        from flyenv.tasks.odor_taxis import orn_glomeruli

        n, odor_max = 2 * len(orn_glomeruli()), 1.0
    else:
        n, odor_max = 4, ODOR_OBS_MAX
    low = np.concatenate([np.zeros(n), -np.full(2, WIND_OBS_MAX), -np.full(3, SELF_MOTION_OBS_MAX)])
    high = np.concatenate(
        [np.full(n, odor_max), np.full(2, WIND_OBS_MAX), np.full(3, SELF_MOTION_OBS_MAX)]
    )
    return spaces.Box(low.astype(np.float32), high.astype(np.float32), dtype=np.float32)


def plume_orn_observation(cfg: PlumeTrackingConfig):
    """OdorTaxis's ``OrnObservation`` for the plume's one odor: built from a one-source
    OdorTaxis config (source peak 1, so ``observe`` takes concentrations as they are).
    ``observe(orn_concentration_scale * concentration[None])``, concentration (4,) at the
    sensors, is the numpy formula of the observation's ORN block."""
    from flyenv.tasks.odor_taxis import OdorTaxisConfig, OrnObservation

    taxis = OdorTaxisConfig(
        odor_names=(cfg.odor_name,), observation="orn", orn_config=cfg.orn_config
    )
    return OrnObservation.from_config(taxis)


def sample_plume_starts(
    rng: np.random.Generator, n: int, cfg: PlumeTrackingConfig, options: dict | None = None
) -> Starts:
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
    starts = Starts(xy, heading, phases)
    fix_start_options(starts, n, options, cfg)
    return starts


def odor_observation(concentration, threshold: float):
    """Concentration (numpy or torch) -> log10(1 + c / threshold), clipped to [0, 8]."""
    if isinstance(concentration, np.ndarray):
        return np.clip(
            np.log10(1.0 + np.maximum(concentration, 0.0) / threshold), 0.0, ODOR_OBS_MAX
        )
    return (1.0 + concentration.clamp_min(0.0) / threshold).log10().clamp(0.0, ODOR_OBS_MAX)


class PlumeTrackingTask(WalkingTask):
    """Plume tracking for B flies; see the module docstring."""

    config_cls = PlumeTrackingConfig
    name = "PlumeTracking"
    termination_reasons = ("success", "left_domain")
    failure_reasons = ("left_domain",)
    observations = OBSERVATIONS

    def __init__(
        self,
        config: PlumeTrackingConfig,
        num_envs: int,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__(config, num_envs, device, dtype)
        self.plume = config.plume
        self.torch_plume = self.plume.to_torch(self.device, dtype)
        self.source = self._tensor(self.plume.source_xy_mm)
        self.extent = self._tensor(self.plume.extent_mm)
        self._vmax = float(np.percentile(self.plume.concentration, 99.5)) or 1.0
        self._sensed: tuple[torch.Tensor, torch.Tensor] | None = None
        self.orn = plume_orn_observation(config) if config.observation == "orn" else None
        if self.orn is not None:
            self.orn_response = self._tensor(self.orn.response[0])  # (G,)
            self.orn_sensor_index = torch.as_tensor(self.orn.sensor_index, device=self.device)

    def observation_space(self) -> spaces.Box:
        return observation_space(self.config)

    def sample_starts(self, rng, n, options) -> Starts:
        return sample_plume_starts(rng, n, self.config, options)

    def initialize_episode(self, starts: Starts, rows: torch.Tensor) -> None:
        pass  # the plume and its source are the same for every episode

    def plume_time(self, time_s: torch.Tensor) -> torch.Tensor:
        return self.config.plume_start_s + time_s

    def sense(self, body: Body, time_s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Concentration at the 4 sensors (B, 4) and wind at the antennae' midpoint (B, 2),
        world frame."""
        sensors = body.sensor_positions()[..., :2]  # (B, 4, 2)
        points = torch.cat([sensors, sensors[:, 2:4].mean(dim=1, keepdim=True)], dim=1)
        conc, wind, _ = self.torch_plume.sample(self.plume_time(time_s), points)
        return conc[:, :4], wind[:, 4]

    def orn_observation(self, conc: torch.Tensor) -> torch.Tensor:
        """(B, 4) concentration at the sensors -> (B, 2G) ORN rates / max_rate_hz (left
        side, then right side); the torch form of ``OrnObservation.observe``."""
        c = self.config.orn_concentration_scale * conc.clamp_min(0.0)
        drive = self.orn_response * c[:, self.orn_sensor_index]  # (B, 2, G)
        rates = OrnFrontEnd.rates_torch(drive, self.orn.config)
        return (rates / self.orn.config.max_rate_hz).flatten(1)

    def get_observation(self, body: Body, time_s: torch.Tensor) -> torch.Tensor:
        conc, wind = self._sensed = self.sense(body, time_s)
        wind_body = world_to_body(wind, body.heading) / self.config.wind_obs_scale_mm_s
        if self.orn is not None:
            odor = self.orn_observation(conc)
        else:
            odor = odor_observation(conc, self.config.odor_detection_threshold)
        return torch.cat([odor, wind_body.clamp(-WIND_OBS_MAX, WIND_OBS_MAX)], dim=1)

    def goal_distance(self, body: Body) -> torch.Tensor:
        return torch.linalg.vector_norm(body.xy - self.source, dim=1)

    def get_termination(self, body: Body, distance: torch.Tensor) -> dict[str, torch.Tensor]:
        xy = body.xy.detach()
        return {
            "success": distance.detach() < self.config.success_radius_mm,
            "left_domain": ((xy < 0) | (xy >= self.extent)).any(dim=1),
        }

    def get_info(self, body: Body, time_s: torch.Tensor) -> dict[str, torch.Tensor]:
        # get_observation ran first in this step (WalkingEpisodes' order): reuse its reading.
        conc, wind = self._sensed if self._sensed is not None else self.sense(body, time_s)
        B = body.num_envs
        return {
            "source_position_mm": self.source.expand(B, 2),
            "odor_concentration": conc,
            "wind_mm_s": wind,
        }

    # ------------------------------------------------------------------ rendering
    def markers(self) -> tuple[np.ndarray, list[tuple[float, ...]]]:
        return self.plume.source_xy_mm[None].copy(), [_SOURCE_RGBA]

    def marker_positions(self, index: int) -> np.ndarray:
        return self.plume.source_xy_mm[None].copy()

    def arena_size_mm(self) -> tuple[float, float]:
        ex, ey = self.plume.extent_mm
        return (ex + 50.0, ey + 50.0)

    def discs(self, index: int) -> list:
        return [(self.plume.source_xy_mm, self.config.success_radius_mm, (0.95, 0.45, 0.05, 0.2))]

    def overlay(
        self,
        frame: np.ndarray,
        ground_xy: Callable[[], np.ndarray],
        fly_xy: np.ndarray,
        time_s: float,
    ) -> np.ndarray:
        """Blend the plume (magenta, by concentration) onto the floor under the fly."""
        xy = ground_xy().reshape(-1, 2)
        conc, _, _ = self.plume.sample(self.config.plume_start_s + time_s, xy)
        alpha = np.clip(conc / self._vmax, 0.0, 1.0) * 0.75
        # Keep the fly itself unpainted: it stands above the floor the plume is drawn on.
        alpha[np.linalg.norm(xy - fly_xy, axis=1) < 2.0] = 0.0
        alpha = alpha.reshape(frame.shape[:2])[..., None]
        color = np.array([220, 40, 160], dtype=np.float32)
        return (frame * (1 - alpha) + color * alpha).astype(np.uint8)

    def render_topdown(self, index, trail_xy, heading_rad, time_s, width, height) -> np.ndarray:
        from flyenv.viz.topdown import TopDownPlumeRenderer

        renderer = self._topdown_renderer(TopDownPlumeRenderer, width, height, margin_mm=10.0)
        return renderer.render(
            self.plume,
            self.config.plume_start_s + time_s,
            trail_xy,
            heading_rad,
            self.config.success_radius_mm,
            self._vmax,
        )
