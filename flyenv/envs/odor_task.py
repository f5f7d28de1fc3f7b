"""The odor-taxis task, independent of the body that performs it.

Shared by the MuJoCo environment (``odor_taxis.py``) and the kinematic twin
(``odor_taxis_kinematic.py``) so that both draw the same starts from the same seed,
scale odor the same way and pay the same reward.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium import spaces

from flyenv.bodies.hybrid_turning import DRIVE_RANGE
from flyenv.connectome.door import ANTENNA, OrnConfig, OrnFrontEnd
from flyenv.connectome.mushroom_body import load_mushroom_body
from flyenv.envs.walking_task import WalkingTaskConfig
from flyenv.stimuli.odor import diffusion_function

ODOR_OBS_MAX = 8.0
SELF_MOTION_OBS_MAX = 10.0
OBSERVATIONS = ("intensity", "orn")


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
        self.validate_walking()
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


def action_to_drive(action: np.ndarray) -> np.ndarray:
    """Map Box(-1, 1) onto flygym's drive range [-0.5, 1.5]."""
    lo, hi = DRIVE_RANGE
    return lo + (np.asarray(action, dtype=np.float64) + 1.0) * (hi - lo) / 2.0


def odor_to_observation(intensity: np.ndarray, threshold: np.ndarray) -> np.ndarray:
    """(k, 4) intensities -> log-compressed (k, 4) observation block."""
    return np.clip(np.log10(1.0 + intensity / threshold[:, None]), 0.0, ODOR_OBS_MAX)


def make_config(config_cls, kwargs: dict[str, Any], env_name: str):
    """Build a config dataclass from ``gym.make`` keywords, naming unknown ones."""
    known = {f.name for f in dataclasses.fields(config_cls) if not f.name.startswith("_")}
    unknown = sorted(set(kwargs) - known)
    if unknown:
        raise TypeError(
            f"{env_name} got unknown option(s) {unknown}; valid options: {sorted(known)}"
        )
    config = config_cls(**kwargs)
    config.validate()
    return config


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


ACTION_SPACE = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)


@dataclass
class Starts:
    """Start conditions of n episodes."""

    source_xy_mm: np.ndarray  # (n, 2)
    aversive_xy_mm: np.ndarray  # (n, m, 2)
    heading_rad: np.ndarray  # (n,)
    cpg_phases: np.ndarray  # (n, 6); used by the MuJoCo body only


def sample_starts(
    rng: np.random.Generator, n: int, cfg: OdorTaxisConfig, options: dict | None = None
) -> Starts:
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
    if options.get("start_heading_rad") is not None:
        heading = np.full(n, float(options["start_heading_rad"]))
    if options.get("init_phases") is not None:
        phases = np.broadcast_to(
            np.asarray(options["init_phases"], dtype=np.float64), (n, 6)
        ).copy()
    source = np.stack([d, np.zeros(n)], axis=1)
    return Starts(source, aversive, heading, phases)
