"""``OdorTaxis``: the fly walks to an attractive odor source.

Registered on two bodies (``flyenv.registration``):

| id | body |
|----|------|
| ``flyenv/OdorTaxis-v0`` | NeuroMechFly v2 in MuJoCo (flygym 1.2.1), one fly, float64 |
| ``flyenv/OdorTaxis-kinematic-v0`` | the calibrated kinematic twin (torch): ``gym.make`` gives one fly, ``gym.make_vec(..., num_envs=N)`` a native vector env stepping N flies in one tensor op; differentiable |

The same seed draws the same start on both bodies.

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
the body flips or the physics diverges (MuJoCo only: the twin cannot fail).
Each term is in ``info``: ``reward_progress``, ``reward_aversive``, ``reward_success``,
``reward_failure`` (they sum to the reward).

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
or when MuJoCo reports a diverging state (``"physics_unstable"``; the observation is
then all zeros, since MuJoCo has reset its state). Truncated at ``time_limit_s``.
The vector env resets finished flies in the same step (``AutoresetMode.SAME_STEP``): the
returned observation is the next episode's first, the last one is in
``info["final_obs"]`` and the last info in ``info["final_info"]`` (rows valid where
``info["_final_obs"]`` is True).

## Info

``distance_mm``, ``position_mm`` (x, y), ``heading_rad``, ``source_position_mm``,
``aversive_positions_mm``, ``time_s``, ``is_success``, ``termination_reason`` and the
reward terms. The vector env gives each as an array over flies.

## Arguments

Every field of ``OdorTaxisConfig`` is a keyword of ``gym.make``, e.g.
``gym.make("flyenv/OdorTaxis-v0", n_aversive_sources=1, time_limit_s=5.0)``, as is
``render_mode="rgb_array"`` (MuJoCo: the overhead camera; twin: a top-down odor map).
The twin also takes ``device`` ("cpu", "cuda"), ``noise`` (calibrated trial-to-trial
velocity noise, default False) and ``calibration_path``; it ignores the MuJoCo-only
``physics_timestep_s`` and ``spawn_height_mm``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from gymnasium import spaces

from flyenv.bodies.base import Body
from flyenv.connectome.door import ANTENNA, OrnConfig, OrnFrontEnd
from flyenv.connectome.mushroom_body import load_mushroom_body
from flyenv.stimuli.odor import diffusion_function, odor_intensity_torch
from flyenv.tasks.base import (
    ODOR_OBS_MAX,
    SELF_MOTION_OBS_MAX,
    Starts,
    WalkingTask,
    WalkingTaskConfig,
    fix_start_options,
)

OBSERVATIONS = ("intensity", "orn")
_ATTRACTIVE_RGBA = (0.95, 0.45, 0.05, 1.0)
_AVERSIVE_RGBA = (0.45, 0.2, 0.85, 1.0)


@dataclass
class OdorTaxisConfig(WalkingTaskConfig):
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
    success_radius_mm: float = 2.0
    aversive_radius_mm: float = 3.0
    aversive_penalty_per_s: float = 5.0
    odor_names: tuple[str, ...] | None = None
    """One DoOR odor (name, CAS or InChIKey) per source: attractive first, then each
    aversive source. None: odors are anonymous channels."""
    observation: str = "intensity"
    """"intensity": log-compressed intensity per channel at the 4 sensors; "orn": ORN
    rates of the connectome's glomeruli on the left and right side (needs odor_names)."""
    orn_config: OrnConfig | None = None
    """ORN rate model for observation="orn" (None: ``OrnConfig()`` defaults)."""

    def __post_init__(self) -> None:
        if isinstance(self.odor_names, list):
            self.odor_names = tuple(self.odor_names)

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
        super().validate()
        diffusion_function(self.diffusion)
        self._validate_odors()

    def _validate_odors(self) -> None:
        if self.observation not in OBSERVATIONS:
            raise ValueError(f"observation={self.observation!r}; use one of {OBSERVATIONS}")
        if self.odor_names is None:
            if self.observation == "orn":
                raise ValueError(
                    'observation="orn" needs odor identities: pass odor_names=(attractive, '
                    '*aversive), e.g. odor_names=("ethyl acetate",)'
                )
            return
        n_sources = 1 + self.n_aversive_sources
        if isinstance(self.odor_names, str) or len(self.odor_names) != n_sources:
            raise ValueError(
                f"odor_names={self.odor_names!r} must be a tuple of {n_sources} DoOR odor "
                f"name(s), one per source (attractive first, then {self.n_aversive_sources} "
                f'aversive), e.g. ("ethyl acetate",)'
            )
        orn_front_end(self).response_matrix(self.odor_names)  # names, missing policy

    @property
    def channels(self) -> int:
        if self.odor_channels is not None:
            return self.odor_channels
        return 2 if self.n_aversive_sources > 0 else 1


def peak_intensities(cfg: OdorTaxisConfig) -> np.ndarray:
    """(n_sources, channels): source 0 is attractive (channel 0), the rest aversive (channel 1)."""
    peaks = np.zeros((1 + cfg.n_aversive_sources, cfg.channels))
    peaks[0, 0] = cfg.attractive_peak_intensity
    if cfg.n_aversive_sources:
        peaks[1:, 1] = cfg.aversive_peak_intensity
    return peaks


def odor_thresholds(cfg: OdorTaxisConfig) -> np.ndarray:
    """(channels,) detection threshold: strongest source of the channel at detection range."""
    f = diffusion_function(cfg.diffusion)
    channel_peak = np.maximum(peak_intensities(cfg).max(axis=0), 1e-12)
    return channel_peak * float(f(np.array(cfg.detection_range_mm)))


def observation_space(cfg: OdorTaxisConfig) -> spaces.Box:
    if cfg.observation == "orn":
        n, odor_max = 2 * len(orn_glomeruli()), 1.0
    else:
        n, odor_max = 4 * cfg.channels, ODOR_OBS_MAX
    low = np.concatenate([np.zeros(n), -np.full(3, SELF_MOTION_OBS_MAX)]).astype(np.float32)
    high = np.concatenate([np.full(n, odor_max), np.full(3, SELF_MOTION_OBS_MAX)]).astype(
        np.float32
    )
    return spaces.Box(low, high, dtype=np.float32)


# ---------------------------------------------------------------------- ORN observation
def orn_glomeruli() -> tuple[str, ...]:
    """The 55 glomeruli of the connectome's uniglomerular PNs (sorted)."""
    return load_mushroom_body().glomeruli


def orn_front_end(cfg: OdorTaxisConfig) -> OrnFrontEnd:
    return OrnFrontEnd(orn_glomeruli(), config=cfg.orn_config)


@dataclass
class OrnObservation:
    """What both bodies need to turn per-source intensities into ORN observations.

    Each source emits its own odor; its concentration at a sensor is the intensity
    the intensity observation uses (peak x diffusion). Side s (0 left, 1 right) of
    glomerulus g is read at ``sensor_index[s, g]``: the antenna, or the maxillary palp
    for the 6 palp glomeruli (DoOR sensillum type). Observation: rate / max_rate_hz.
    """

    response: np.ndarray  # (n_sources, n_glom) DoOR delta of each source's odor
    sensor_index: np.ndarray  # (2, n_glom) index into the 4 sensors (L/R palp, L/R antenna)
    source_peaks: np.ndarray  # (n_sources,) peak intensity of each source
    config: OrnConfig

    @classmethod
    def from_config(cls, cfg: OdorTaxisConfig) -> OrnObservation:
        front = orn_front_end(cfg)
        antenna = np.array([o == ANTENNA for o in front.glomerulus_organ])
        sensor_index = np.stack([np.where(antenna, 2, 0), np.where(antenna, 3, 1)])
        return cls(
            response=front.response_matrix(cfg.odor_names),
            sensor_index=sensor_index,
            source_peaks=peak_intensities(cfg).sum(axis=1),
            config=front.config,
        )

    def observe(self, intensity: np.ndarray) -> np.ndarray:
        """(n_sources, 4) per-source intensity at the sensors -> (2 * n_glom,) obs."""
        conc = intensity[:, self.sensor_index]  # (n_sources, 2, n_glom)
        drive = np.einsum("sg,sjg->jg", self.response, conc)
        rates = OrnFrontEnd.rates(drive, self.config)
        return (rates / self.config.max_rate_hz).ravel()


@dataclass
class OdorStarts(Starts):
    source_xy_mm: np.ndarray  # (n, 2)
    aversive_xy_mm: np.ndarray  # (n, m, 2)


def sample_starts(
    rng: np.random.Generator, n: int, cfg: OdorTaxisConfig, options: dict | None = None
) -> OdorStarts:
    """Draw n starts; ``options`` fixes any of ``source_distance_mm``, ``start_heading_rad``,
    ``aversive_positions_mm`` (m, 2) and ``init_phases`` (6,) for all of them.

    The draws happen in a fixed order whether or not an option overrides them, so a
    seed gives the same start in the MuJoCo env and in the twin.
    """
    options = options or {}
    m = cfg.n_aversive_sources
    d = rng.uniform(*cfg.source_distance_mm, size=n)
    frac = rng.uniform(0.3, 0.7, size=(n, m))
    side = rng.choice([-1.0, 1.0], size=(n, m)) * rng.uniform(2.0, 5.0, size=(n, m))
    heading = np.deg2rad(rng.uniform(*cfg.start_heading_range_deg, size=n))
    phases = rng.uniform(0.0, 2 * np.pi, size=(n, 6))
    if options.get("source_distance_mm") is not None:
        d = np.full(n, float(options["source_distance_mm"]))
        if not np.all(d > cfg.success_radius_mm):
            raise ValueError(
                f"source_distance_mm={d[0]} must exceed success_radius_mm={cfg.success_radius_mm}"
            )
    aversive = np.stack([frac * d[:, None], side], axis=-1)
    if options.get("aversive_positions_mm") is not None:
        av = np.asarray(options["aversive_positions_mm"], dtype=np.float64).reshape(-1, 2)
        if len(av) != m:
            raise ValueError(
                f"aversive_positions_mm has {len(av)} rows; the env has n_aversive_sources={m}"
            )
        aversive = np.broadcast_to(av, (n, m, 2)).copy()
    source = np.stack([d, np.zeros(n)], axis=1)
    starts = OdorStarts(np.zeros((n, 2)), heading, phases, source, aversive)
    fix_start_options(starts, n, options, cfg)
    return starts


class OdorTaxisTask(WalkingTask):
    """Odor taxis for B flies; see the module docstring. State: ``sources`` (B, n, 3)."""

    config_cls = OdorTaxisConfig
    name = "OdorTaxis"
    observations = OBSERVATIONS

    def __init__(
        self,
        config: OdorTaxisConfig,
        num_envs: int,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__(config, num_envs, device, dtype)
        self.peaks = self._tensor(peak_intensities(config))  # (n, k)
        self.threshold = self._tensor(odor_thresholds(config))  # (k,)
        self.orn = OrnObservation.from_config(config) if config.observation == "orn" else None
        if self.orn is not None:
            self.orn_response = self._tensor(self.orn.response)  # (n, G)
            self.orn_sensor_index = torch.as_tensor(self.orn.sensor_index, device=self.device)
            self.source_peaks = torch.diag(self._tensor(self.orn.source_peaks))
        self.sources = torch.zeros(num_envs, len(self.peaks), 3, device=self.device, dtype=dtype)

    def observation_space(self) -> spaces.Box:
        return observation_space(self.config)

    def sample_starts(self, rng, n, options) -> OdorStarts:
        return sample_starts(rng, n, self.config, options)

    def initialize_episode(self, starts: OdorStarts, rows: torch.Tensor) -> None:
        src = torch.zeros(len(rows), len(self.peaks), 3, device=self.device, dtype=self.dtype)
        src[:, 0, :2] = self._tensor(starts.source_xy_mm)
        if self.config.n_aversive_sources:
            src[:, 1:, :2] = self._tensor(starts.aversive_xy_mm)
        sources = self.sources.clone()
        sources[rows] = src
        self.sources = sources

    # ------------------------------------------------------------------ step
    def odor_observation(self, sensors_mm: torch.Tensor) -> torch.Tensor:
        """(B, 4, 3) sensor positions -> (B, 4k) log-compressed intensities per channel
        (L palp, R palp, L antenna, R antenna), or with ``observation="orn"`` (B, 2G)
        ORN rates / max_rate_hz (left side, then right side)."""
        if self.orn is not None:
            return self.orn_observation(sensors_mm)
        intensity = odor_intensity_torch(
            sensors_mm, self.sources, self.peaks, self.config.diffusion
        )
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

    def get_observation(self, body: Body, time_s: torch.Tensor) -> torch.Tensor:
        return self.odor_observation(body.sensor_positions())

    def goal_distance(self, body: Body) -> torch.Tensor:
        return torch.linalg.vector_norm(body.xy - self.sources[:, 0, :2], dim=1)

    def get_reward_terms(self, body: Body) -> dict[str, torch.Tensor]:
        cfg = self.config
        if not cfg.n_aversive_sources:
            return {}
        near = torch.linalg.vector_norm(self.sources[:, 1:, :2] - body.xy[:, None], dim=2)
        inside = (near < cfg.aversive_radius_mm).any(dim=1).to(self.dtype)
        return {"aversive": -(cfg.aversive_penalty_per_s * cfg.control_period_s * inside)}

    def get_info(self, body: Body, time_s: torch.Tensor) -> dict[str, torch.Tensor]:
        return {
            "source_position_mm": self.sources[:, 0, :2],
            "aversive_positions_mm": self.sources[:, 1:, :2],
        }

    # ------------------------------------------------------------------ rendering
    def markers(self) -> tuple[np.ndarray, list[tuple[float, ...]]]:
        n = len(self.peaks)
        xy = np.array([[10.0 + 5 * i, 0.0] for i in range(n)])
        return xy, [_ATTRACTIVE_RGBA] + [_AVERSIVE_RGBA] * self.config.n_aversive_sources

    def marker_positions(self, index: int) -> np.ndarray:
        return self.sources[index, :, :2].detach().cpu().numpy().astype(np.float64)

    def discs(self, index: int) -> list:
        cfg = self.config
        xy = self.marker_positions(index)
        discs = [(xy[0], cfg.success_radius_mm, (0.95, 0.45, 0.05, 0.25))]
        discs += [(p, cfg.aversive_radius_mm, (0.45, 0.2, 0.85, 0.25)) for p in xy[1:]]
        return discs

    def render_topdown(self, index, trail_xy, heading_rad, time_s, width, height) -> np.ndarray:
        return self._odor_map(
            index,
            trail_xy,
            heading_rad,
            width,
            height,
            self.config.success_radius_mm,
            self.config.aversive_radius_mm,
        )
