"""``OdorChoice``: the fly chooses between two odors, one of which is rewarded.

Registered on two bodies (``flyenv.registration``):

| id | body |
|----|------|
| ``flyenv/OdorChoice-v0`` | NeuroMechFly v2 in MuJoCo (flygym 1.2.1), one fly, float64 |
| ``flyenv/OdorChoice-kinematic-v0`` | the calibrated kinematic twin (torch): ``gym.make`` gives one fly, ``gym.make_vec(..., num_envs=N)`` a native vector env stepping N flies in one tensor op; differentiable |

The same seed draws the same start on both bodies.

## Description

A two-choice assay in the open field, the walking analogue of the T-maze in which fly
olfactory learning is measured. Two point sources of two different DoOR odors lie at
the same distance from the fly, ``source_separation_deg`` apart as seen from it; the
fly starts between them facing a random direction. Reaching one source is the choice.
One odor of the pair is rewarded; which one is never in the observation: with
``rewarded_odors=None`` (default) it is drawn at random every episode (a naive fly can
only be at chance; ``OdorConditioning`` tells it in a training phase), with a tuple of
odor names the pair's member in that set is rewarded (a fixed valence to be learned
across episodes).

**Odor panel** (``ODOR_PANEL``, 12 DoOR 2.0 odors chosen for coverage: each has
measured responses for >= 63 % of the 49 connectome glomeruli that have a DoOR unit,
and >= 6 glomeruli respond with |delta| > 0.2): ethyl acetate, benzaldehyde,
1-hexanol, ethyl butyrate, 2-heptanone, pentyl acetate, 1-octen-3-ol, E2-hexenal,
3-octanol, acetic acid, 2,3-butanedione, butyl acetate. **Pairs**: the 66 unordered
pairs of the panel, split once (``split_pairs``: a fixed permutation from
``pair_split_seed``) into 44 training pairs and 22 held-out pairs; ``pair_set`` picks
which ones episodes draw from. ``odor_similarity(a, b)`` is the Pearson correlation of
the two odors' DoOR response vectors over the glomeruli (the generalisation axis).

**Two odors at one sensor.** Each source emits its own odor; at a sensor the odor's
concentration is its source's peak x diffusion(distance), as in OdorTaxis. The ORN
drive of glomerulus g is the sum over odors of DoOR delta x concentration, and the
rate saturates that sum (Michaelis-Menten around the spontaneous rate,
``flyenv.connectome.door``): a saturating sum of the two odors' responses.

## Action Space

``Box(-1, 1, (2,), float32)``: left and right descending drive, as in OdorTaxis.

## Observation Space

``Box(low, high, (2 G + 3,), float32)`` with G = 55 glomeruli of the connectome's PNs:

| Num | Observation | Min | Max | Unit |
|-----|-------------|-----|-----|------|
| g | ORN rate of glomerulus g (sorted names), left side | 0 | 1 | max_rate_hz |
| G + g | ORN rate of glomerulus g, right side | 0 | 1 | max_rate_hz |
| 2G + 0 | forward speed over the last agent step | -10 | 10 | 10 mm/s |
| 2G + 1 | leftward speed over the last agent step | -10 | 10 | 10 mm/s |
| 2G + 2 | yaw rate (counter-clockwise) | -10 | 10 | rad/s |

Antennal glomeruli read the antennae, the 6 palp glomeruli the maxillary palps.

## Rewards

``progress_reward_per_mm * (d_prev - d_now)`` (distance to the rewarded source),
``+ success_bonus`` on choosing the rewarded odor, ``- failure_penalty`` on choosing the
other one (or when the MuJoCo body flips or diverges). Terms in ``info``:
``reward_progress``, ``reward_success``, ``reward_failure``.

## Starting State

The fly at the origin, heading uniform in ``start_heading_range_deg``; the two sources
at distance d (uniform in ``source_distance_mm``) at bearings axis +- separation / 2,
the axis uniform in [-180, 180) deg; the pair uniform among ``pair_set``'s pairs;
source 0 emits the pair's first odor. ``reset(options=...)`` can fix ``pair`` (a pair of
panel odor names), ``rewarded_source`` (0 or 1), ``start_heading_rad`` and ``init_phases``.

## Episode End

Terminated when the thorax comes within ``choice_radius_mm`` of a source:
``termination_reason`` ``"chose_rewarded"`` (``is_success``) or ``"chose_unrewarded"``
(and, MuJoCo only, ``"flipped"`` / ``"physics_unstable"``). Truncated at
``time_limit_s`` without a choice. Performance index over n episodes, as in fly T-maze
assays: PI = (n_rewarded - n_unrewarded) / n (``performance_index``).

## Info

``distance_mm`` (to the rewarded source), ``position_mm``, ``heading_rad``,
``source_positions_mm`` (2, 2), ``rewarded_source`` (0 or 1), ``pair_index`` (into
``task.pairs``), ``time_s``, ``is_success``, ``termination_reason`` and the reward terms.

## Arguments

Every field of ``OdorChoiceConfig`` is a keyword of ``gym.make``, as is
``render_mode="rgb_array"``; the twin also takes ``device``, ``noise`` and
``calibration_path``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from gymnasium import spaces

from flyenv.bodies.base import Body
from flyenv.connectome.door import ANTENNA, OrnConfig, OrnFrontEnd
from flyenv.connectome.mushroom_body import load_mushroom_body
from flyenv.stimuli.odor import diffusion_function, odor_intensity_torch
from flyenv.tasks.base import (
    SELF_MOTION_OBS_MAX,
    Starts,
    WalkingTask,
    WalkingTaskConfig,
    fix_start_options,
)

ODOR_PANEL: tuple[str, ...] = (
    "ethyl acetate",
    "benzaldehyde",
    "1-hexanol",
    "ethyl butyrate",
    "2-heptanone",
    "pentyl acetate",
    "1-octen-3-ol",
    "E2-hexenal",
    "3-octanol",
    "acetic acid",
    "2,3-butanedione",
    "butyl acetate",
)
PAIR_SETS = ("train", "heldout", "all")
_SOURCE_RGBA = ((0.95, 0.45, 0.05, 1.0), (0.1, 0.6, 0.6, 1.0))


def split_pairs(
    panel: Sequence[str], heldout_fraction: float = 1 / 3, seed: int = 0
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """All unordered pairs of ``panel`` split into (training, held-out) by a fixed permutation."""
    pairs = list(itertools.combinations(panel, 2))
    order = np.random.default_rng(seed).permutation(len(pairs))
    n_held = int(round(heldout_fraction * len(pairs)))
    held = sorted(order[:n_held].tolist())
    train = sorted(order[n_held:].tolist())
    return [pairs[i] for i in train], [pairs[i] for i in held]


@lru_cache(maxsize=4)
def _front_end() -> OrnFrontEnd:
    return OrnFrontEnd(load_mushroom_body().glomeruli)


def odor_similarity(a: str, b: str) -> float:
    """Pearson correlation of two odors' DoOR response vectors over the connectome's
    glomeruli (unmeasured pairs count as no response)."""
    resp = _front_end().response_matrix([a, b])
    return float(np.corrcoef(resp[0], resp[1])[0, 1])


def performance_index(reasons: Sequence[str | None]) -> float:
    """PI = (n_rewarded - n_unrewarded) / n over episodes' termination reasons."""
    n = len(reasons)
    if n == 0:
        raise ValueError("performance_index needs at least one episode")
    rewarded = sum(r == "chose_rewarded" for r in reasons)
    unrewarded = sum(r == "chose_unrewarded" for r in reasons)
    return (rewarded - unrewarded) / n


@dataclass
class OdorChoiceConfig(WalkingTaskConfig):
    """Task settings; distances in mm, times in s."""

    time_limit_s: float = 6.0
    odor_panel: tuple[str, ...] = ODOR_PANEL
    """DoOR odor names (or CAS / InChIKey) the pairs are drawn from."""
    pair_set: str = "train"
    """Which pairs episodes draw from: "train", "heldout" or "all"."""
    heldout_fraction: float = 1 / 3
    pair_split_seed: int = 0
    """Seed of the fixed train / held-out split of the panel's pairs."""
    rewarded_odors: tuple[str, ...] | None = None
    """None: the rewarded odor of each episode is drawn at random (50/50). A tuple: the
    pair's member in this set is rewarded; pairs with none or both in it are left out."""
    source_distance_mm: tuple[float, float] = (8.0, 12.0)
    source_separation_deg: float = 120.0
    """Angle between the two sources as seen from the start."""
    start_heading_range_deg: tuple[float, float] = (-180.0, 180.0)
    peak_intensity: float = 1.0
    diffusion: str = "inverse_square"
    detection_range_mm: float = 100.0
    """Only for rendering: the odor map's threshold is a source's intensity here."""
    choice_radius_mm: float = 2.0
    observation: str = "orn"
    orn_config: OrnConfig | None = None
    """ORN rate model (None: ``OrnConfig()`` defaults)."""

    def __post_init__(self) -> None:
        for name in ("odor_panel", "rewarded_odors"):
            if isinstance(getattr(self, name), list):
                setattr(self, name, tuple(getattr(self, name)))

    def validate(self) -> None:
        super().validate()
        if self.observation != "orn":
            raise ValueError(
                f'observation={self.observation!r}; OdorChoice observes ORN rates: use "orn"'
            )
        if self.pair_set not in PAIR_SETS:
            raise ValueError(f"pair_set={self.pair_set!r}; use one of {PAIR_SETS}")
        if isinstance(self.odor_panel, str) or len(set(self.odor_panel)) < 3:
            raise ValueError("odor_panel must name at least 3 different odors")
        lo, hi = self.source_distance_mm
        if not self.choice_radius_mm < lo <= hi:
            raise ValueError(
                f"source_distance_mm={self.source_distance_mm} must be (min, max) with "
                f"choice_radius_mm={self.choice_radius_mm} < min <= max"
            )
        gap = 2 * lo * np.sin(np.deg2rad(self.source_separation_deg) / 2)
        if gap <= 2 * self.choice_radius_mm:
            raise ValueError(
                f"the sources are {gap:.1f} mm apart at source_separation_deg="
                f"{self.source_separation_deg}: their choice regions overlap; separate them more"
            )
        diffusion_function(self.diffusion)
        front = OrnFrontEnd(load_mushroom_body().glomeruli, config=self.orn_config)
        front.response_matrix(self.odor_panel)  # names and missing-value policy
        if not self.pairs():
            raise ValueError(
                f"no pair of pair_set={self.pair_set!r} has exactly one odor of "
                f"rewarded_odors={self.rewarded_odors}"
            )

    @property
    def goal_radius_mm(self) -> float:
        return float(self.choice_radius_mm)

    def pairs(self) -> list[tuple[str, str]]:
        """The pairs episodes draw from (after the rewarded-odor filter)."""
        train, held = split_pairs(self.odor_panel, self.heldout_fraction, self.pair_split_seed)
        pairs = {"train": train, "heldout": held, "all": train + held}[self.pair_set]
        if self.rewarded_odors is not None:
            r = set(self.rewarded_odors)
            pairs = [p for p in pairs if (p[0] in r) != (p[1] in r)]
        return pairs


@dataclass
class ChoiceStarts(Starts):
    source_xy_mm: np.ndarray  # (n, 2, 2)
    pair_index: np.ndarray  # (n,)
    rewarded_source: np.ndarray  # (n,)


class OdorChoiceTask(WalkingTask):
    """Two-odor choice for B flies; see the module docstring.

    State: ``sources`` (B, 2, 3), ``response`` (B, 2, G) DoOR deltas of each source's
    odor, ``rewarded`` (B,) index of the rewarded source, ``pair_index`` (B,).
    """

    config_cls = OdorChoiceConfig
    name = "OdorChoice"
    observations = ("orn",)
    termination_reasons = ("chose_rewarded", "chose_unrewarded")
    success_reason = "chose_rewarded"
    failure_reasons = ("chose_unrewarded",)

    def __init__(
        self,
        config: OdorChoiceConfig,
        num_envs: int,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__(config, num_envs, device, dtype)
        self.pairs = config.pairs()
        front = OrnFrontEnd(load_mushroom_body().glomeruli, config=config.orn_config)
        self.orn_config = front.config
        self.glomeruli = front.glomeruli
        self.panel = tuple(config.odor_panel)
        self.panel_response = self._tensor(front.response_matrix(self.panel))  # (P, G)
        pair_odors = [[self.panel.index(a), self.panel.index(b)] for a, b in self.pairs]
        self.pair_odors = torch.as_tensor(pair_odors, device=self.device)  # (n_pairs, 2)
        antenna = np.array([o == ANTENNA for o in front.glomerulus_organ])
        self.sensor_index = torch.as_tensor(
            np.stack([np.where(antenna, 2, 0), np.where(antenna, 3, 1)]), device=self.device
        )  # (2, G): side -> sensor (L/R palp 0/1, L/R antenna 2/3)
        self.peaks = config.peak_intensity * torch.eye(2, device=self.device, dtype=dtype)
        self.threshold = self._tensor(
            np.full(
                2,
                config.peak_intensity
                * float(diffusion_function(config.diffusion)(np.array(config.detection_range_mm))),
            )
        )
        B, G = num_envs, len(self.glomeruli)
        self.sources = torch.zeros(B, 2, 3, device=self.device, dtype=dtype)
        self.response = torch.zeros(B, 2, G, device=self.device, dtype=dtype)
        self.rewarded = torch.zeros(B, dtype=torch.long, device=self.device)
        self.pair_index = torch.zeros(B, dtype=torch.long, device=self.device)

    def observation_space(self) -> spaces.Box:
        n = 2 * len(self.glomeruli)
        m = SELF_MOTION_OBS_MAX
        low = np.concatenate([np.zeros(n), -np.full(3, m)]).astype(np.float32)
        high = np.concatenate([np.ones(n), np.full(3, m)]).astype(np.float32)
        return spaces.Box(low, high, dtype=np.float32)

    # ------------------------------------------------------------------ episode
    def sample_starts(self, rng, n, options) -> ChoiceStarts:
        cfg, options = self.config, options or {}
        d = rng.uniform(*cfg.source_distance_mm, size=n)
        axis = rng.uniform(-np.pi, np.pi, size=n)
        heading = np.deg2rad(rng.uniform(*cfg.start_heading_range_deg, size=n))
        phases = rng.uniform(0.0, 2 * np.pi, size=(n, 6))
        pair = rng.integers(len(self.pairs), size=n)
        rewarded = rng.integers(2, size=n)
        if options.get("pair") is not None:
            want = tuple(options["pair"])
            if want not in self.pairs:
                raise ValueError(
                    f"pair={want} is not one of the task's {len(self.pairs)} pairs "
                    f"(pair_set={cfg.pair_set!r}); e.g. {self.pairs[0]}"
                )
            pair = np.full(n, self.pairs.index(want))
        if cfg.rewarded_odors is not None:
            first_rewarded = np.array([self.pairs[p][0] in cfg.rewarded_odors for p in pair])
            rewarded = np.where(first_rewarded, 0, 1)
        if options.get("rewarded_source") is not None:
            r = int(options["rewarded_source"])
            if r not in (0, 1):
                raise ValueError(f"rewarded_source={r}; use 0 or 1")
            rewarded = np.full(n, r)
        half = np.deg2rad(cfg.source_separation_deg) / 2
        bearings = axis[:, None] + np.array([-half, half])[None, :]
        src = d[:, None, None] * np.stack([np.cos(bearings), np.sin(bearings)], axis=-1)
        starts = ChoiceStarts(np.zeros((n, 2)), heading, phases, src, pair, rewarded)
        fix_start_options(starts, n, options, cfg)
        return starts

    def initialize_episode(self, starts: ChoiceStarts, rows: torch.Tensor) -> None:
        src = torch.zeros(len(rows), 2, 3, device=self.device, dtype=self.dtype)
        src[:, :, :2] = self._tensor(starts.source_xy_mm)
        pair = torch.as_tensor(starts.pair_index, device=self.device)
        sources, response = self.sources.clone(), self.response.clone()
        sources[rows] = src
        response[rows] = self.panel_response[self.pair_odors[pair]]
        self.sources, self.response = sources, response
        self.rewarded = self.rewarded.clone()
        self.rewarded[rows] = torch.as_tensor(starts.rewarded_source, device=self.device)
        self.pair_index = self.pair_index.clone()
        self.pair_index[rows] = pair

    # ------------------------------------------------------------------ step
    def orn_observation(self, sensors_mm: torch.Tensor) -> torch.Tensor:
        """(B, 4, 3) sensors -> (B, 2G) ORN rates / max_rate_hz (left side, then right)."""
        conc = odor_intensity_torch(sensors_mm, self.sources, self.peaks, self.config.diffusion)
        conc = conc[:, :, self.sensor_index]  # (B, 2 odors, 2 sides, G)
        drive = torch.einsum("bsg,bsjg->bjg", self.response, conc)
        rates = OrnFrontEnd.rates_torch(drive, self.orn_config)
        return (rates / self.orn_config.max_rate_hz).flatten(1)

    def get_observation(self, body: Body, time_s: torch.Tensor) -> torch.Tensor:
        return self.orn_observation(body.sensor_positions())

    def _source_distances(self, body: Body) -> torch.Tensor:
        return torch.linalg.vector_norm(body.xy[:, None] - self.sources[:, :, :2], dim=2)

    def goal_distance(self, body: Body) -> torch.Tensor:
        d = self._source_distances(body)
        return d.gather(1, self.rewarded[:, None]).squeeze(1)

    def get_termination(self, body: Body, distance: torch.Tensor) -> dict[str, torch.Tensor]:
        reached = self._source_distances(body).detach() < self.config.choice_radius_mm
        rewarded = reached.gather(1, self.rewarded[:, None]).squeeze(1)
        other = reached.gather(1, (1 - self.rewarded)[:, None]).squeeze(1)
        return {"chose_rewarded": rewarded, "chose_unrewarded": other}

    def get_info(self, body: Body, time_s: torch.Tensor) -> dict[str, torch.Tensor]:
        return {
            "source_positions_mm": self.sources[:, :, :2],
            "rewarded_source": self.rewarded,
            "pair_index": self.pair_index,
        }

    # ------------------------------------------------------------------ rendering
    def markers(self) -> tuple[np.ndarray, list[tuple[float, ...]]]:
        return np.array([[10.0, 5.0], [10.0, -5.0]]), list(_SOURCE_RGBA)

    def marker_positions(self, index: int) -> np.ndarray:
        return self.sources[index, :, :2].detach().cpu().numpy().astype(np.float64)

    def discs(self, index: int) -> list:
        xy = self.marker_positions(index)
        r = self.config.choice_radius_mm
        return [(xy[k], r, (*_SOURCE_RGBA[k][:3], 0.25)) for k in range(2)]

    def render_topdown(self, index, trail_xy, heading_rad, time_s, width, height) -> np.ndarray:
        return self._odor_map(
            index,
            trail_xy,
            heading_rad,
            width,
            height,
            self.config.choice_radius_mm,
            self.config.choice_radius_mm,
        )
