"""A scripted agent for OdorConditioning: remember the reinforced odor, then steer by it.

It is the task's strongest simple baseline, with a memory written by hand instead of
learned. During training it keeps two templates of ORN patterns above baseline: the
CS+ (frames with a nonzero ``reinforcement``, the last observation value, whose sign it
keeps: +1 sugar, -1 shock) and the CS- (odor puffs, recognised by identical left and
right ORN rates, without reinforcement). In the test it steers toward the remembered
odor to approach (the CS+ after sugar, the CS- after shock): the turn is the
left-minus-right ORN difference projected on (approach template - other template),
plus a general attraction to odor (left-minus-right total excitation) that brings it
to some source; both are divided by the total excitation of both sides, so the command
is a relative left/right difference. With no reinforcement seen it only follows odor
(a chance-level choice).

``policy(obs) -> action`` for one fly; ``reset()`` clears the memory (call it at
every episode start). ``BatchRememberedOdorPolicy`` runs B flies at once (numpy).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class RememberedOdorConfig:
    baseline: float = 0.04
    """ORN observation at zero drive: spontaneous 8 Hz / max 200 Hz (OrnConfig defaults)."""
    turn_gain: float = 1000.0
    """Turn per unit of relative left/right projection on the template difference.
    Gains chosen among (200, 1000) x (0, 50, 200) on seed 0, training pairs, 200
    episodes per reinforcement; reported numbers use other seeds and held-out pairs."""
    odor_gain: float = 50.0
    """Turn toward more odor, per unit of relative left/right excitation."""
    puff_threshold: float = 0.05
    """Summed excitation above which identical left/right rates count as a puff."""
    forward_action: float = 0.3
    """Action of both sides when walking straight."""
    turn_action: float = 0.8
    """Action difference added/subtracted at a saturated turn."""


class BatchRememberedOdorPolicy:
    """B flies; ``reset(mask)`` clears the memory of the flies in ``mask`` (all if None)."""

    def __init__(self, num_envs: int, config: RememberedOdorConfig | None = None) -> None:
        self.config = config or RememberedOdorConfig()
        self.num_envs = num_envs
        self.plus: np.ndarray | None = None  # (B, G) CS+ template
        self.minus: np.ndarray | None = None  # (B, G) CS- template
        self.sign = np.zeros(num_envs)

    def reset(self, mask: np.ndarray | None = None) -> None:
        if self.plus is None:
            return
        m = np.ones(self.num_envs, bool) if mask is None else np.asarray(mask, bool)
        self.plus[m] = 0.0
        self.minus[m] = 0.0
        self.sign[m] = 0.0

    @staticmethod
    def _unit(x: np.ndarray) -> np.ndarray:
        norm = np.linalg.norm(x, axis=1, keepdims=True)
        return np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs, dtype=np.float64)
        if obs.ndim != 2 or obs.shape[0] != self.num_envs or (obs.shape[1] - 4) % 2:
            raise ValueError(
                f"observation has shape {obs.shape}; expected ({self.num_envs}, 2G + 4) "
                "(OdorConditioning: ORN left, ORN right, self-motion, reinforcement)"
            )
        c = self.config
        g = (obs.shape[1] - 4) // 2
        left, right = obs[:, :g] - c.baseline, obs[:, g : 2 * g] - c.baseline
        reinforcement = obs[:, -1]
        if self.plus is None:
            self.plus, self.minus = np.zeros((self.num_envs, g)), np.zeros((self.num_envs, g))
        on = reinforcement != 0
        self.plus[on] += 0.5 * (left[on] + right[on])
        self.sign[on] = np.sign(reinforcement[on])
        excited = np.abs(left).sum(1) > c.puff_threshold
        puff = ~on & excited & (np.abs(left - right).max(1) < 1e-9)
        self.minus[puff] += left[puff]
        approach = np.where((self.sign < 0)[:, None], self.minus, self.plus)
        other = np.where((self.sign < 0)[:, None], self.plus, self.minus)
        direction = np.where(
            (self.sign != 0)[:, None], self._unit(approach) - self._unit(other), 0.0
        )
        total = np.abs(left).sum(1) + np.abs(right).sum(1) + 1e-9
        memory = ((left - right) * direction).sum(1) / total
        odor = (left.sum(1) - right.sum(1)) / total
        turn = c.turn_action * np.tanh(c.turn_gain * memory + c.odor_gain * odor)  # > 0: left
        return np.stack([c.forward_action - turn, c.forward_action + turn], axis=1).astype(
            np.float32
        )


class RememberedOdorPolicy:
    """One fly: ``policy(obs) -> action`` with the memory of ``BatchRememberedOdorPolicy``."""

    def __init__(self, config: RememberedOdorConfig | None = None) -> None:
        self._batch = BatchRememberedOdorPolicy(1, config)

    def reset(self) -> None:
        self._batch.reset()

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        return self._batch(np.asarray(obs)[None])[0]
