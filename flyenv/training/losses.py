"""Loss terms of embodied BPTT training (the four objectives of the original olfactory
navigation training, docs/research_systems.md, made differentiable).

All terms are computed from tensors that carry gradients back through the twin's
body state and the brain's membrane state: distances come from twin positions,
energy from twin velocities, sparsity and activity from surrogate-gradient spikes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class LossWeights:
    """Weights of the original's objectives (defaults 1, 0.1, 0.01, 0.001)."""

    nav_weight: float = 1.0
    energy_weight: float = 0.1
    sparsity_weight: float = 0.01
    activity_weight: float = 0.001
    goal_bonus: float = 0.5
    """Subtracted (per fly, scaled by nav_weight) when the final distance is under the goal radius;
    made smooth so it passes a gradient near the boundary."""
    kc_target_activity: float = 0.02
    """Fraction of KCs active per step that the sparsity term aims for."""
    max_rate_hz: float = 100.0
    """Rates above this are penalised by the activity term."""


class EpisodeLoss:
    """Accumulates per-step terms over an episode, then combines them."""

    def __init__(self, weights: LossWeights, goal_radius_mm: float, dt_s: float) -> None:
        self.w = weights
        self.goal_radius_mm = goal_radius_mm
        self.dt_s = dt_s
        self.distance_sum = 0.0
        self.energy_sum = 0.0
        self.sparsity_sum = 0.0
        self.activity_sum = 0.0
        self.steps = 0
        self.initial_distance: torch.Tensor | None = None
        self.last_distance: torch.Tensor | None = None
        self.path_length = 0.0

    def add_step(
        self,
        distance_mm: torch.Tensor,
        velocity: torch.Tensor,
        displacement_mm: torch.Tensor,
        aux: dict[str, torch.Tensor],
        done: torch.Tensor | None = None,
    ) -> None:
        """distance_mm (B,), velocity (B, 3) body-frame (mm/s, mm/s, rad/s),
        displacement_mm (B,), aux: optional 'kc_activity' (B,) fraction of KCs spiking,
        'spike_rate_hz' (B, N) per-neuron rates of the recorded populations.
        done (B,) bool: flies that reached the source at an earlier step. Their episode
        is over (as in the env, which terminates on success): they count as at the
        source (distance 0) and spend no energy, so walking fast to the source is not
        penalised by what the twin does after it (overshooting)."""
        if self.initial_distance is None:
            if not bool((distance_mm.detach() > 0).any()):
                self.steps += 1  # no goal yet (e.g. a conditioning phase): nothing to add
                self.path_length = self.path_length + displacement_mm.detach().mean()
                return
            self.initial_distance = distance_mm.detach().clamp_min(1.0)
        if done is not None:
            keep = (~done).to(distance_mm.dtype)
            distance_mm = distance_mm * keep
            velocity = velocity * keep[:, None]
        self.distance_sum = self.distance_sum + (distance_mm / self.initial_distance).mean()
        self.energy_sum = self.energy_sum + (velocity[:, :2] ** 2).sum(dim=1).mean() / 100.0
        if "kc_activity" in aux:
            self.sparsity_sum = (
                self.sparsity_sum + ((aux["kc_activity"] - self.w.kc_target_activity) ** 2).mean()
            )
        if "spike_rate_hz" in aux:
            rates = aux["spike_rate_hz"]
            excess = torch.relu(rates - self.w.max_rate_hz) / self.w.max_rate_hz
            self.activity_sum = (
                self.activity_sum + rates.mean() / self.w.max_rate_hz + (excess**2).mean()
            )
        self.path_length = self.path_length + displacement_mm.detach().mean()
        self.last_distance = distance_mm
        self.steps += 1

    def total(self) -> tuple[torch.Tensor, dict[str, float]]:
        if self.steps == 0:
            raise ValueError("no steps were added to the episode loss")
        n = self.steps
        nav = self.distance_sum / n
        final = self.last_distance / self.initial_distance
        # Smooth goal bonus: sigmoid of how far inside the goal radius the fly ends.
        inside = torch.sigmoid((self.goal_radius_mm - self.last_distance) / 0.5)
        nav = nav + 0.5 * final.mean() - self.w.goal_bonus * inside.mean()
        energy = self.energy_sum / n
        sparsity = (
            self.sparsity_sum / n if not isinstance(self.sparsity_sum, float) else torch.zeros(())
        )
        activity = (
            self.activity_sum / n if not isinstance(self.activity_sum, float) else torch.zeros(())
        )
        total = (
            self.w.nav_weight * nav
            + self.w.energy_weight * energy
            + self.w.sparsity_weight * sparsity
            + self.w.activity_weight * activity
        )
        parts = {
            "total": float(total.detach()),
            "navigation": float(nav.detach()),
            "energy": float(energy.detach()),
            "kc_sparsity": float(sparsity.detach()),
            "activity": float(activity.detach()),
        }
        return total, parts
