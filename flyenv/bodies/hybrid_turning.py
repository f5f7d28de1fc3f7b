"""The hybrid turning controller (CPG + stepping corrections), vectorised over legs.

This is the controller of flygym 1.2.1's ``HybridTurningController`` rewritten on
plain arrays so that it can be stepped without flygym's per-step observation
dictionary (which costs about half of flygym's loop). It computes the same
numbers, in the same order, from the same data:

* six phase oscillators (Euler-integrated CPG, tripod coupling) whose amplitude and
  frequency sign are set by the 2-D descending drive (left legs, right legs);
* joint targets from the preprogrammed single step (periodic cubic spline),
  scaled by the oscillator magnitude around the neutral pose;
* the retraction rule (lift the leg whose tip hangs lowest) with persistence, and
  the stumbling rule (lift a leg whose tibia/tarsus pushes against the heading),
  each gated by the phase of the step cycle;
* adhesion on during stance.

A test checks it against flygym's own class step by step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from flygym.examples.locomotion import PreprogrammedSteps

LEGS: tuple[str, ...] = ("LF", "LM", "LH", "RF", "RM", "RH")
STUMBLE_SEGMENTS: tuple[str, ...] = ("Tibia", "Tarsus1", "Tarsus2")
DRIVE_RANGE: tuple[float, float] = (-0.5, 1.5)
"""flygym's range of the descending drive (per side)."""


def action_to_drive(action: np.ndarray) -> np.ndarray:
    """Map an action in [-1, 1] (the envs' action space) onto flygym's drive range [-0.5, 1.5]."""
    lo, hi = DRIVE_RANGE
    return lo + (np.asarray(action, dtype=np.float64) + 1.0) * (hi - lo) / 2.0


_TRIPOD_PHASE_BIASES = np.pi * np.array(
    [[(i + j) % 2 for j in range(6)] for i in range(6)], dtype=float
)


@dataclass
class HybridTurningParams:
    """Parameters of the hybrid turning controller (flygym 1.2.1 defaults)."""

    timestep_s: float = 1e-4
    intrinsic_freq_hz: float = 12.0
    intrinsic_amp: float = 1.0
    coupling_weight: float = 10.0
    convergence_coef: float = 20.0
    stumbling_force_threshold: float = -1.0
    """Contact force projected on the heading below which a leg counts as stumbling."""
    retraction_rates_per_s: tuple[float, float] = (800.0, 700.0)
    stumbling_rates_per_s: tuple[float, float] = (2200.0, 1800.0)
    max_increment: float = 80.0
    """Cap on the correction amount (flygym: 80 / 1e-4 * timestep)."""
    retraction_persistence_steps: float = 20.0
    retraction_persistence_init_threshold: float = 20.0
    retraction_z_margin_mm: float = 0.05
    swing_extension_rad: float = np.pi / 4
    correction_vectors: dict[str, np.ndarray] = field(
        default_factory=lambda: {
            # (Coxa, Coxa_roll, Coxa_yaw, Femur, Femur_roll, Tibia, Tarsus1), radians
            "F": np.array([-0.03, 0, 0, -0.03, 0, 0.03, 0.03]),
            "M": np.array([-0.015, 0.001, 0.025, -0.02, 0, -0.02, 0.0]),
            "H": np.array([0, 0, 0, -0.02, 0, 0.01, -0.02]),
        }
    )

    def scaled_to_timestep(self) -> HybridTurningParams:
        """flygym expresses the caps in units of 1e-4 s steps; rescale them."""
        scale = self.timestep_s / 1e-4
        return HybridTurningParams(
            **{
                **self.__dict__,
                "max_increment": self.max_increment * scale,
                "retraction_persistence_steps": self.retraction_persistence_steps * scale,
                "retraction_persistence_init_threshold": self.retraction_persistence_init_threshold
                * scale,
            }
        )


class HybridTurningCPG:
    """Stateful controller: drive + leg sensing in, joint targets + adhesion out."""

    def __init__(self, params: HybridTurningParams | None = None) -> None:
        self.params = params or HybridTurningParams()
        p = self.params
        steps = PreprogrammedSteps()
        # Spline coefficients of each leg's 7 DoFs: (4, n_intervals, 6 legs, 7 dofs).
        splines = [steps._psi_funcs[leg] for leg in LEGS]
        self._knots = splines[0].x
        self._period = self._knots[-1] - self._knots[0]
        coefs = np.stack([s.c for s in splines], axis=2)  # (4, n_int, 6, 7)
        self._coefs = np.ascontiguousarray(coefs)
        self._neutral = np.stack([steps.neutral_pos[leg][:, 0] for leg in LEGS])  # (6, 7)

        swing_start = np.array([steps.swing_period[leg][0] for leg in LEGS])
        swing_end = np.array([steps.swing_period[leg][1] for leg in LEGS])
        # flygym lengthens the swing by pi/4 when it builds the phasic gain; adhesion
        # uses the lengthened swing too.
        self._swing_start = swing_start
        self._swing_end = swing_end + p.swing_extension_rad
        # Phasic gain: piecewise linear through 5 points, extrapolated linearly.
        self._gain_x = np.stack(
            [
                swing_start,
                (swing_start + swing_end) / 2,
                swing_end + p.swing_extension_rad,
                (swing_end + 2 * np.pi) / 2,
                np.full(6, 2 * np.pi),
            ],
            axis=1,
        )  # (6, 5)
        self._gain_y = np.array([0.0, 0.8, 0.0, -0.1, 0.0])
        self._corr_vec = np.stack([p.correction_vectors[leg[1]] for leg in LEGS])  # (6, 7)
        # flygym multiplies right-leg corrections by right_leg_inversion[leg_index], a
        # per-DoF list indexed by leg: RF, RM, RH get +1, -1, +1. Kept for fidelity.
        inversion = np.array([1, -1, -1, 1, -1, 1, 1], dtype=float)
        self._leg_sign = np.where(np.arange(6) >= 3, inversion[:6], 1.0)
        self._weights = (_TRIPOD_PHASE_BIASES > 0) * p.coupling_weight
        self.reset(np.zeros(6))

    def reset(self, init_phases: np.ndarray, init_magnitudes: np.ndarray | None = None) -> None:
        self.phases = np.array(init_phases, dtype=float)
        self.magnitudes = (
            np.zeros(6) if init_magnitudes is None else np.array(init_magnitudes, dtype=float)
        )
        self.retraction = np.zeros(6)
        self.stumbling = np.zeros(6)
        self.persistence = np.zeros(6)

    def _spline(self, phases: np.ndarray) -> np.ndarray:
        """Evaluate the six periodic splines at one phase per leg: (6, 7)."""
        x0 = self._knots[0]
        x = x0 + (phases - x0) % self._period
        idx = np.clip(np.searchsorted(self._knots, x, side="right") - 1, 0, len(self._knots) - 2)
        dx = (x - self._knots[idx])[:, None]
        c = self._coefs[:, idx, np.arange(6)]  # (4, 6, 7)
        return ((c[0] * dx + c[1]) * dx + c[2]) * dx + c[3]

    def _phasic_gain(self, phases: np.ndarray) -> np.ndarray:
        x = phases % (2 * np.pi)
        xs, ys = self._gain_x, self._gain_y
        # Segment index with linear extrapolation beyond both ends (scipy interp1d).
        seg = np.clip((x[:, None] >= xs[:, 1:-1]).sum(axis=1), 0, 3)
        rows = np.arange(6)
        x_lo, x_hi = xs[rows, seg], xs[rows, seg + 1]
        y_lo, y_hi = ys[seg], ys[seg + 1]
        return y_lo + (x - x_lo) * (y_hi - y_lo) / (x_hi - x_lo)

    def step(
        self,
        drive: np.ndarray,
        tip_depth_mm: np.ndarray,
        stumble_force: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Advance one physics step.

        Args:
            drive: (2,) descending drive (left, right) in flygym's range [-0.5, 1.5].
            tip_depth_mm: (6,) thorax height minus each leg tip's height.
            stumble_force: (6, 3) per leg, the contact force of its tibia/tarsus1/tarsus2
                projected on the body heading (one column per segment).

        Returns:
            joint targets (42,) in flygym's actuator order, adhesion on/off (6,).
        """
        p = self.params
        dt = p.timestep_s
        amps = np.repeat(np.abs(drive), 3)
        sign = np.where(drive > 0, 1.0, -1.0)
        freqs = p.intrinsic_freq_hz * np.repeat(sign, 3)

        # Retraction rule on the state before this step (as flygym).
        order = np.argsort(tip_depth_mm)
        leg_to_retract = -1
        if tip_depth_mm[order[-1]] > tip_depth_mm[order[-3]] + p.retraction_z_margin_mm:
            leg_to_retract = order[-1]
            if self.retraction[leg_to_retract] > p.retraction_persistence_init_threshold:
                self.persistence[leg_to_retract] = 1
        self.persistence[self.persistence > 0] += 1
        self.persistence[self.persistence > p.retraction_persistence_steps] = 0
        retract = self.persistence > 0
        if leg_to_retract >= 0:
            retract[leg_to_retract] = True

        # CPG (Euler).
        theta, r = self.phases, self.magnitudes
        coupling = (
            r * self._weights * np.sin(theta[None, :] - theta[:, None] - _TRIPOD_PHASE_BIASES)
        ).sum(axis=1)
        self.phases = theta + (2 * np.pi * freqs + coupling) * dt
        self.magnitudes = r + p.convergence_coef * (amps - r) * dt

        up_r, down_r = p.retraction_rates_per_s
        self.retraction = np.where(
            retract, self.retraction + up_r * dt, np.maximum(0.0, self.retraction - down_r * dt)
        )
        stumbling_now = (stumble_force < p.stumbling_force_threshold).any(axis=1)
        up_s, down_s = p.stumbling_rates_per_s
        self.stumbling = np.where(
            stumbling_now, self.stumbling + up_s * dt, np.maximum(0.0, self.stumbling - down_s * dt)
        )
        retracted = self.retraction > 0
        net = np.where(retracted, self.retraction, self.stumbling)
        self.stumbling[retracted] = 0.0
        net = np.clip(net, 0.0, p.max_increment) * self._leg_sign
        net = net * self._phasic_gain(self.phases)

        psi = self._spline(self.phases)
        angles = self._neutral + self.magnitudes[:, None] * (psi - self._neutral)
        angles += net[:, None] * self._corr_vec
        wrapped = self.phases % (2 * np.pi)
        adhesion = ~((self._swing_start < wrapped) & (wrapped < self._swing_end))
        return angles.ravel(), adhesion.astype(np.float64)
