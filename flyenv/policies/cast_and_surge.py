"""Scripted cast-and-surge agent for PlumeTracking (intensity observation).

The behaviour of flies in intermittent plumes, reduced to three states:

* **surge**: while the odor is above ``odor_threshold`` (and for ``surge_hold_s`` after
  the last hit), turn to face into the wind and walk fast. The fly knows where upwind
  is from its antennae only (the body-frame wind reading, observation entries 4-5),
  never from the odor.
* **cast**: once the odor has been lost for ``surge_hold_s``, walk crosswind
  (``cast_angle_deg`` from upwind), reversing side after a sweep that starts at
  ``cast_sweep_s`` and grows by ``cast_growth`` at every reversal, so the zigzag widens
  until the plume is found again; a new hit goes straight back to surging and the next
  loss starts the casting over with the first, short sweep.
* before the first hit of an episode the fly casts as well (a search across the wind).

References: walking flies surge upwind on odor and, after losing it, search locally
with crosswind casts of increasing amplitude (van Breugel & Dickinson 2014, Curr Biol
24:274, "Plume-tracking behavior of flying Drosophila emerges from a set of distinct
sensory-motor reflexes"; Álvarez-Salvado et al. 2018, eLife 7:e37815, "Elementary
sensory-motor transformations underlying olfactory navigation in walking fruit-flies":
odor onset drives upwind turning and faster walking, odor offset drives increased
turning, a local search). The numbers here are tuned for the twin, not fitted to data.

Observation (``PlumeTracking`` default ``observation="intensity"``): 0-3 odor at the
left/right palps and antennae (log10(1 + c / threshold)), 4 wind along the body axis
(positive from behind), 5 wind across the body (positive toward the fly's left), then
self-motion (not read). Action: left/right descending drive in [-1, 1]; a left turn
slows the left legs (as ``flyenv.policies.braitenberg``).

``CastAndSurgePolicy`` is stateful: ``policy(obs)`` carries its state from step to step
and ``reset()`` starts a new episode (``flyenv.recording.run_episode`` calls it). It
takes one observation (D,) or a batch (B, D) (e.g. ``flyenv.rl.evaluation.evaluate_twin``
with ``lambda n: CastAndSurgePolicy()``); a batch's state is sized at its first call.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SURGE, CAST = 0, 1


@dataclass
class CastAndSurgeConfig:
    odor_threshold: float = 0.3
    """Odor hit: mean of the 4 odor readings above this (log10(1 + c / threshold)
    units; 0.3 = about the detection threshold concentration)."""
    surge_hold_s: float = 0.2
    """Keep surging this long (s) after the last hit (plume hits are intermittent)."""
    surge_forward: float = 0.8
    """Forward action while surging (both sides; 1 = fastest)."""
    cast_forward: float = 0.5
    """Forward action while casting."""
    steer_gain: float = 1.5
    """Turn action per rad of heading error (saturates at ``max_turn``)."""
    max_turn: float = 1.0
    """Largest left/right action difference / 2 at a saturated turn."""
    cast_angle_deg: float = 90.0
    """Casting heading, degrees from upwind (90: straight across the wind)."""
    cast_sweep_s: float = 0.4
    """Duration (s) of the first sweep to one side."""
    cast_growth: float = 1.5
    """Each further sweep lasts this many times the previous one (growing amplitude)."""
    control_period_s: float = 0.01
    """Agent step (s): the env's control period."""

    def validate(self) -> None:
        if self.control_period_s <= 0 or self.cast_sweep_s <= 0 or self.surge_hold_s < 0:
            raise ValueError("control_period_s and cast_sweep_s must be > 0, surge_hold_s >= 0")
        if self.cast_growth < 1:
            raise ValueError(f"cast_growth must be >= 1 (growing casts), got {self.cast_growth}")
        if not 0 <= self.cast_angle_deg <= 180:
            raise ValueError(f"cast_angle_deg must be in [0, 180], got {self.cast_angle_deg}")


class CastAndSurgePolicy:
    """``policy(obs) -> action`` for PlumeTracking intensity observations (9 values)."""

    OBS_SIZE = 9

    def __init__(self, config: CastAndSurgeConfig | None = None) -> None:
        self.config = config or CastAndSurgeConfig()
        self.config.validate()
        self.reset()

    def reset(self) -> None:
        """Start a new episode (every env of a batch)."""
        self._n: int | None = None

    def _init_state(self, n: int) -> None:
        self._n = n
        self.since_hit_s = np.full(n, np.inf)  # time since the last odor hit
        self.sweep_left_s = np.full(n, self.config.cast_sweep_s)  # of the current sweep
        self.sweep_s = np.full(n, self.config.cast_sweep_s)  # length of the current sweep
        self.side = np.ones(n)  # +1: cast to the left of upwind, -1: to the right

    @property
    def mode(self) -> np.ndarray:
        """Per env: SURGE (0) or CAST (1), as decided at the last step."""
        return np.where(self.since_hit_s <= self.config.surge_hold_s, SURGE, CAST)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs, dtype=np.float64)
        single = obs.ndim == 1
        batch = obs[None] if single else obs
        if batch.ndim != 2 or batch.shape[1] != self.OBS_SIZE:
            raise ValueError(
                f"cast_and_surge reads PlumeTracking's intensity observation ({self.OBS_SIZE} "
                f"values: 4 odor, 2 wind, 3 self-motion); got shape {obs.shape}"
            )
        if self._n != len(batch):
            self._init_state(len(batch))
        c = self.config
        dt = c.control_period_s

        hit = batch[:, :4].mean(axis=1) > c.odor_threshold
        was_casting = self.mode == CAST
        self.since_hit_s = np.where(hit, 0.0, self.since_hit_s + dt)
        surging = self.since_hit_s <= c.surge_hold_s
        # a cast starts over (first, shortest sweep) after every surge
        restart = surging | ~was_casting
        self.sweep_s = np.where(restart, c.cast_sweep_s, self.sweep_s)
        self.sweep_left_s = np.where(restart, c.cast_sweep_s, self.sweep_left_s - dt)
        flip = ~surging & (self.sweep_left_s <= 0)
        self.side = np.where(flip, -self.side, self.side)
        self.sweep_s = np.where(flip, self.sweep_s * c.cast_growth, self.sweep_s)
        self.sweep_left_s = np.where(flip, self.sweep_s, self.sweep_left_s)

        # heading error: upwind (minus the wind vector) in the body frame, + cast offset
        along, across = batch[:, 4], batch[:, 5]
        upwind = np.arctan2(-across, -along)  # > 0: upwind lies to the left
        offset = np.where(surging, 0.0, self.side * np.deg2rad(c.cast_angle_deg))
        error = np.angle(np.exp(1j * (upwind + offset)))  # wrapped to (-pi, pi]
        turn = np.clip(c.steer_gain * error, -c.max_turn, c.max_turn)  # > 0: turn left
        forward = np.where(surging, c.surge_forward, c.cast_forward)
        action = np.stack([forward - turn, forward + turn], axis=1)
        action = np.clip(action, -1.0, 1.0).astype(np.float32)
        return action[0] if single else action


__all__ = ["CAST", "SURGE", "CastAndSurgeConfig", "CastAndSurgePolicy"]
