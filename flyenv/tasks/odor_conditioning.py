"""``OdorConditioning``: differential conditioning and a two-odor choice in one episode.

Registered on two bodies (``flyenv.registration``):

| id | body |
|----|------|
| ``flyenv/OdorConditioning-v0`` | NeuroMechFly v2 in MuJoCo (flygym 1.2.1), one fly, float64 |
| ``flyenv/OdorConditioning-kinematic-v0`` | the calibrated kinematic twin (torch): ``gym.make`` gives one fly, ``gym.make_vec(..., num_envs=N)`` a native vector env; differentiable |

## Description

The classic differential conditioning protocol of fly olfactory learning (Tully & Quinn
1985, J Comp Physiol A 157:263), inside one episode:

1. **Training phase** (``training_s`` in all). The odors of the episode's pair are
   presented one after the other, each for ``cs_duration_s`` and separated by
   ``gap_s``, the pair of presentations repeated ``training_cycles`` times (default 1): the CS+ together with the reinforcement signal, the CS- without
   (which comes first is drawn per episode, or fixed by ``cs_plus_first``). A
   presented odor reaches all four sensors at ``presentation_concentration`` (an odor
   puff in an air stream: no gradient to follow). The fly walks freely.
2. **Test phase**: the two-source choice of ``OdorChoice``. At the end of training
   the two sources appear around the fly where it is, at distance d and bearings axis
   +- separation / 2 (axis drawn at reset), and the fly has ``test_s`` to choose.

The reinforcement arrives as the last observation column, ``reinforcement`` in
[-1, 1]: +1 (sugar) with the CS+ when ``reinforcement="reward"``, -1 (shock) when
``"punishment"``, always 0 when ``"none"`` (the no-reinforcement control), and +1 or
-1 drawn 50/50 per episode when ``"mixed"`` (a population trained with both; the sign
is only seen while the CS+ is presented). It is 0 outside the CS+ presentation and in
the whole test phase: the association must live in the brain's state, not in the
observation.

The correct choice (``chose_rewarded``, the success) is the CS+ after reward and the
CS- after punishment (per episode under ``"mixed"``); after ``"none"`` it is the CS+ by convention (a control that
should score PI ~ 0). ``info["chose_cs_plus"]`` and ``cs_plus_source`` let analyses
compute the T-maze performance index relative to the CS+ (``performance_index_cs_plus``),
whose sign flips between reward and punishment in a fly that learned.

Odors, pairs (training / held-out split), the ORN model of two odors at a sensor and
everything else are those of ``OdorChoice`` (``flyenv.tasks.odor_choice``).

## Action Space

``Box(-1, 1, (2,), float32)``: left and right descending drive.

## Observation Space

``Box(low, high, (2 G + 4,), float32)``, G = 55:

| Num | Observation | Min | Max | Unit |
|-----|-------------|-----|-----|------|
| g | ORN rate of glomerulus g, left side | 0 | 1 | max_rate_hz |
| G + g | ORN rate of glomerulus g, right side | 0 | 1 | max_rate_hz |
| 2G + 0 | forward speed over the last agent step | -10 | 10 | 10 mm/s |
| 2G + 1 | leftward speed over the last agent step | -10 | 10 | 10 mm/s |
| 2G + 2 | yaw rate (counter-clockwise) | -10 | 10 | rad/s |
| 2G + 3 | reinforcement (sugar +1, shock -1) | -1 | 1 | |

## Rewards

No reward during training (the reinforcement signal is an observation, not the RL
reward). In the test phase: progress toward the correct source per mm,
``+ success_bonus`` for the correct choice, ``- failure_penalty`` for the other one
(and, MuJoCo only, for flipping or diverging physics). Terms in ``info``.

## Starting State

The fly at the origin, heading uniform in ``start_heading_range_deg``; pair, CS+ (the
pair's odor drawn 50/50 unless ``rewarded_odors`` names it), presentation order,
source distance and axis drawn at reset. ``reset(options=...)`` takes ``pair``,
``rewarded_source`` (the CS+ source, 0 or 1), ``start_heading_rad``, ``init_phases``.
Under ``"mixed"`` the sign is drawn at reset too (after the other draws, so the other
settings' episodes are unchanged).

## Episode End

In the test phase: terminated on reaching a source (``"chose_rewarded"`` /
``"chose_unrewarded"``), truncated at ``training_s + test_s`` without a choice.

## Info

That of ``OdorChoice`` plus ``phase`` (0 training, 1 test), ``cs_plus_source``,
``chose_cs_plus``, ``reinforcement`` (the signal now) and ``reinforcement_sign``
(the episode's: +1 sugar, -1 shock, 0 none).

## Arguments

Every field of ``OdorConditioningConfig`` (those of ``OdorChoiceConfig`` included) is a
keyword of ``gym.make``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from gymnasium import spaces

from flyenv.bodies.base import Body
from flyenv.connectome.door import OrnFrontEnd
from flyenv.tasks.odor_choice import ChoiceStarts, OdorChoiceConfig, OdorChoiceTask

REINFORCEMENTS = {"reward": 1.0, "punishment": -1.0, "none": 0.0}
MIXED = "mixed"
"""Reinforcement drawn per episode: sugar or shock, 50/50."""


@dataclass
class OdorConditioningConfig(OdorChoiceConfig):
    """Protocol settings; times in s, concentrations in OdorTaxis intensity units."""

    time_limit_s: float | None = None
    """None: training_s + test_s. Set by the protocol; giving another value is an error."""
    reinforcement: str = "reward"
    """"reward" (+1 with the CS+), "punishment" (-1), "none" (control) or "mixed" (+1 or
    -1 drawn per episode)."""
    cs_duration_s: float = 1.0
    gap_s: float = 0.5
    """Odor-free time after each presentation."""
    cs_plus_first: bool | None = None
    """None: the order of CS+ and CS- is drawn per episode."""
    presentation_concentration: float = 0.01
    """Concentration of a presented odor at every sensor (0.01 = a unit source 10 mm away)."""
    test_s: float = 6.0
    training_cycles: int = 1
    """Training cycles: each presents the CS+ and the CS- once, in the episode's order
    (spaced training of T-maze protocols repeats the cycle)."""

    @property
    def training_s(self) -> float:
        return 2 * self.training_cycles * (self.cs_duration_s + self.gap_s)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.time_limit_s is None:
            self.time_limit_s = self.training_s + self.test_s

    def validate(self) -> None:
        if self.reinforcement not in (*REINFORCEMENTS, MIXED):
            raise ValueError(
                f"reinforcement={self.reinforcement!r}; use one of "
                f"{sorted([*REINFORCEMENTS, MIXED])}"
            )
        if self.cs_duration_s <= 0 or self.gap_s < 0 or self.test_s <= 0:
            raise ValueError("cs_duration_s and test_s must be > 0 and gap_s >= 0")
        if not isinstance(self.training_cycles, int | np.integer) or self.training_cycles < 1:
            raise ValueError(f"training_cycles={self.training_cycles!r}: give an integer >= 1")
        if self.presentation_concentration < 0:
            raise ValueError("presentation_concentration must be >= 0")
        if abs(self.time_limit_s - (self.training_s + self.test_s)) > 1e-9:
            raise ValueError(
                f"time_limit_s={self.time_limit_s} must equal training_s + test_s = "
                f"{self.training_s + self.test_s}; set cs_duration_s, gap_s and test_s instead"
            )
        super().validate()


@dataclass
class ConditioningStarts(ChoiceStarts):
    cs_plus_first: np.ndarray  # (n,) bool
    reinforcement_sign: np.ndarray  # (n,) +1 sugar, -1 shock, 0 none


def performance_index_cs_plus(chose_cs_plus: Sequence[bool | None]) -> float:
    """PI relative to the CS+: (n_CS+ - n_CS-) / n; None = no choice (counts in n)."""
    n = len(chose_cs_plus)
    if n == 0:
        raise ValueError("performance_index_cs_plus needs at least one episode")
    return (sum(c is True for c in chose_cs_plus) - sum(c is False for c in chose_cs_plus)) / n


class OdorConditioningTask(OdorChoiceTask):
    """Conditioning then choice for B flies; see the module docstring.

    Beyond ``OdorChoiceTask``'s state: ``offsets`` (B, 2, 2) source positions relative to
    the fly at test onset, ``cs_plus`` (B,) source index of the CS+, ``cs_plus_first``
    (B,) presentation order. ``rewarded`` is the correct source.
    """

    config_cls = OdorConditioningConfig
    name = "OdorConditioning"

    def __init__(self, config: OdorConditioningConfig, num_envs, device="cpu", dtype=torch.float32):
        super().__init__(config, num_envs, device, dtype)
        B = num_envs
        self.offsets = torch.zeros(B, 2, 2, device=self.device, dtype=dtype)
        self.cs_plus = torch.zeros(B, dtype=torch.long, device=self.device)
        self.cs_plus_first = torch.ones(B, dtype=torch.bool, device=self.device)
        self.sign = torch.zeros(B, device=self.device, dtype=dtype)
        self.in_test = torch.zeros(B, dtype=torch.bool, device=self.device)
        self.sources.fill_(1e4)  # far away until the test phase

    def observation_space(self) -> spaces.Box:
        base = super().observation_space()
        low = np.concatenate([base.low, [-1.0]]).astype(np.float32)
        high = np.concatenate([base.high, [1.0]]).astype(np.float32)
        return spaces.Box(low, high, dtype=np.float32)

    # ------------------------------------------------------------------ episode
    def sample_starts(self, rng, n, options) -> ConditioningStarts:
        s = super().sample_starts(rng, n, options)
        first = rng.random(n) < 0.5
        if self.config.cs_plus_first is not None:
            first = np.full(n, bool(self.config.cs_plus_first))
        if self.config.reinforcement == MIXED:  # drawn last: other settings' draws unchanged
            sign = np.where(rng.random(n) < 0.5, 1.0, -1.0)
        else:
            sign = np.full(n, REINFORCEMENTS[self.config.reinforcement])
        return ConditioningStarts(**vars(s), cs_plus_first=first, reinforcement_sign=sign)

    def initialize_episode(self, starts: ConditioningStarts, rows: torch.Tensor) -> None:
        super().initialize_episode(starts, rows)  # sources at the offsets from the origin
        offsets, sources = self.offsets.clone(), self.sources.clone()
        offsets[rows] = self._tensor(starts.source_xy_mm)
        sources[rows, :, :2] = 1e4
        self.offsets, self.sources = offsets, sources
        cs_plus = torch.as_tensor(starts.rewarded_source, device=self.device)
        self.cs_plus = self.cs_plus.clone()
        self.cs_plus[rows] = cs_plus
        sign = torch.as_tensor(starts.reinforcement_sign, device=self.device, dtype=self.dtype)
        self.sign = self.sign.clone()
        self.sign[rows] = sign
        # the correct choice: the CS+ after reward (and "none"), the CS- after punishment
        correct = torch.where(sign < 0, 1 - cs_plus, cs_plus)
        self.rewarded = self.rewarded.clone()
        self.rewarded[rows] = correct
        self.cs_plus_first = self.cs_plus_first.clone()
        self.cs_plus_first[rows] = torch.as_tensor(starts.cs_plus_first, device=self.device)
        self.in_test = self.in_test.clone()
        self.in_test[rows] = False

    # ------------------------------------------------------------------ protocol
    def presented(self, time_s: torch.Tensor) -> torch.Tensor:
        """(B,) source index of the odor presented now, or -1 (gap or test phase)."""
        cfg = self.config
        t = time_s.to(self.device)
        slot = cfg.cs_duration_s + cfg.gap_s
        training = t < cfg.training_s - 1e-9
        if cfg.training_cycles > 1:  # time within the current cycle (a cycle start may
            # arrive a rounding error early: it still starts the next cycle)
            t = t - 2 * slot * torch.floor((t + 1e-6) / (2 * slot))
        first = t < cfg.cs_duration_s
        second = (t >= slot) & (t < slot + cfg.cs_duration_s)
        first_odor = torch.where(self.cs_plus_first, self.cs_plus, 1 - self.cs_plus)
        out = torch.full_like(self.cs_plus, -1)
        out = torch.where(first & training, first_odor, out)
        return torch.where(second & training, 1 - first_odor, out)

    def reinforcement_signal(self, time_s: torch.Tensor) -> torch.Tensor:
        """(B,) the reinforcement observation: +-1 while the CS+ is presented, else 0."""
        on = self.presented(time_s) == self.cs_plus
        return on.to(self.dtype) * self.sign

    def after_step(self, body: Body, time_s: torch.Tensor) -> torch.Tensor | None:
        starting = (time_s.to(self.device) >= self.config.training_s - 1e-9) & ~self.in_test
        if not bool(starting.any()):
            return None
        xy = body.xy.detach()[:, None, :] + self.offsets
        sources = self.sources.clone()
        sources[:, :, :2] = torch.where(starting[:, None, None], xy, sources[:, :, :2])
        self.sources = sources
        self.in_test = self.in_test | starting
        return starting

    # ------------------------------------------------------------------ step
    def get_observation(self, body: Body, time_s: torch.Tensor) -> torch.Tensor:
        test = super().get_observation(body, time_s)
        if bool(self.in_test.all()):
            return test
        presented = self.presented(time_s)
        odor = presented.clamp_min(0)
        delta = self.response.gather(1, odor[:, None, None].expand(-1, 1, self.response.shape[2]))
        # a puff reaches all sensors alike; between puffs the air is clean
        conc = self.config.presentation_concentration * (presented >= 0).to(self.dtype)
        drive = delta[:, 0] * conc[:, None]  # (B, G)
        rates = OrnFrontEnd.rates_torch(drive, self.orn_config) / self.orn_config.max_rate_hz
        training = torch.cat([rates, rates], dim=1)
        return torch.where(self.in_test[:, None], test, training)

    def get_extra_observation(self, body: Body, time_s: torch.Tensor) -> torch.Tensor:
        return self.reinforcement_signal(time_s)[:, None]

    def goal_distance(self, body: Body) -> torch.Tensor:
        d = super().goal_distance(body)
        return torch.where(self.in_test, d, torch.zeros_like(d))

    def get_termination(self, body: Body, distance: torch.Tensor) -> dict[str, torch.Tensor]:
        ends = super().get_termination(body, distance)
        return {k: v & self.in_test for k, v in ends.items()}

    def get_info(self, body: Body, time_s: torch.Tensor) -> dict[str, torch.Tensor]:
        info = super().get_info(body, time_s)
        reached = self._source_distances(body).detach() < self.config.choice_radius_mm
        info.update(
            phase=self.in_test.long(),
            cs_plus_source=self.cs_plus,
            chose_cs_plus=reached.gather(1, self.cs_plus[:, None]).squeeze(1) & self.in_test,
            reinforcement=self.reinforcement_signal(time_s),
            reinforcement_sign=self.sign,
        )
        return info

    def marker_positions(self, index: int) -> np.ndarray:
        if not bool(self.in_test[index]):  # show where the sources will appear from the start
            return self.offsets[index].detach().cpu().numpy().astype(np.float64)
        return super().marker_positions(index)
