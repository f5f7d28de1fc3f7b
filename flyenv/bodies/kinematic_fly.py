"""A batched, differentiable kinematic twin of the MuJoCo fly (torch).

State per fly: thorax position (x, y) in mm, heading in rad, and the body-frame
velocities (forward mm/s, leftward mm/s, yaw rad/s). Each step:

1. the calibrated drive map gives the steady-state velocities for the action;
2. the velocities follow them through two cascaded first-order lags with the
   calibrated time constant (exact exponential updates): an S-shaped response, as
   the MuJoCo fly's start-up, with no dead time, so every action has a gradient;
3. position and heading are integrated (midpoint heading).

Optional calibrated noise: an Ornstein-Uhlenbeck perturbation of the target
velocities whose stationary std is the measured trial-to-trial spread.
All B flies advance in one set of tensor operations; everything is differentiable
(gradients flow from positions or sensor readings back to every action).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from flyenv.bodies.drive_map import Calibration, DriveMap


@dataclass
class KinematicFlyConfig:
    noise: bool = False
    """Add calibrated trial-to-trial velocity noise."""
    noise_correlation_s: float = 0.2
    calibration_path: str | None = None
    """None: the shipped calibration."""


class KinematicFly(torch.nn.Module):
    """B flies; call ``reset`` then ``step(actions, dt_s)``. Implements
    ``flyenv.bodies.base.Body``; it cannot flip or diverge, so ``failure()`` is all 0."""

    failure_reasons: tuple[str, ...] = ()

    def __init__(
        self,
        batch_size: int,
        config: KinematicFlyConfig | None = None,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.config = config or KinematicFlyConfig()
        cal = Calibration.load(self.config.calibration_path)
        self.calibration = cal
        self.batch_size = batch_size
        self.drive_map = DriveMap(cal)
        self.tau_s = cal.response_tau_s
        self.register_buffer(
            "sensor_offsets", torch.as_tensor(cal.sensor_offsets_body_mm, dtype=dtype)
        )
        self.to(device=device, dtype=dtype)
        z = torch.zeros(batch_size, device=device, dtype=dtype)
        self.xy = torch.zeros(batch_size, 2, device=device, dtype=dtype)
        self.heading = z.clone()
        self.velocity = torch.zeros(batch_size, 3, device=device, dtype=dtype)
        self.lagged_target = torch.zeros(batch_size, 3, device=device, dtype=dtype)
        self.time_since_reset = z.clone()
        self.noise_state = torch.zeros(batch_size, 3, device=device, dtype=dtype)
        self.generator = torch.Generator(device=device)
        """Draws the velocity noise (``seed`` sets it; the env seeds it at ``reset(seed=...)``)."""

    @property
    def device(self) -> torch.device:
        return self.sensor_offsets.device

    @property
    def dtype(self) -> torch.dtype:
        return self.sensor_offsets.dtype

    @property
    def num_envs(self) -> int:
        return self.batch_size

    def seed(self, seed: int) -> None:
        self.generator.manual_seed(int(seed))

    def failure(self) -> torch.Tensor:
        return torch.zeros(self.batch_size, dtype=torch.long, device=self.device)

    def reset(
        self,
        xy: torch.Tensor | None = None,
        heading: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        init_phases=None,
    ) -> None:
        """Put flies at rest at ``xy`` (B, 2) facing ``heading`` (B,); ``mask`` selects which.
        ``init_phases`` is accepted for the ``Body`` interface and ignored (no CPG)."""
        B, dev, dt = self.batch_size, self.device, self.sensor_offsets.dtype
        xy = torch.zeros(B, 2, device=dev, dtype=dt) if xy is None else xy.to(dev, dt)
        heading = torch.zeros(B, device=dev, dtype=dt) if heading is None else heading.to(dev, dt)
        if mask is None:
            self.xy, self.heading = xy.clone(), heading.clone()
            self.velocity = torch.zeros_like(self.velocity)
            self.lagged_target = torch.zeros_like(self.lagged_target)
            self.time_since_reset = torch.zeros_like(self.time_since_reset)
            self.noise_state = torch.zeros_like(self.noise_state)
            return
        m = mask.to(dev)
        # torch.where keeps the graph of the flies that carry on.
        self.xy = torch.where(m[:, None], xy, self.xy)
        self.heading = torch.where(m, heading, self.heading)
        self.velocity = torch.where(m[:, None], torch.zeros_like(self.velocity), self.velocity)
        self.lagged_target = torch.where(
            m[:, None], torch.zeros_like(self.lagged_target), self.lagged_target
        )
        self.time_since_reset = torch.where(
            m, torch.zeros_like(self.time_since_reset), self.time_since_reset
        )
        self.noise_state = torch.where(
            m[:, None], torch.zeros_like(self.noise_state), self.noise_state
        )

    def step(
        self, actions: torch.Tensor, dt_s: float, generator: torch.Generator | None = None
    ) -> None:
        """Advance all flies by ``dt_s`` under ``actions`` (B, 2) in [-1, 1]."""
        target = self.drive_map(actions)
        if self.config.noise:
            generator = self.generator if generator is None else generator
            decay = math.exp(-dt_s / self.config.noise_correlation_s)
            eps = torch.randn(
                self.noise_state.shape, generator=generator, device=self.device, dtype=target.dtype
            )
            self.noise_state = decay * self.noise_state + math.sqrt(1 - decay**2) * eps
            target = target + self.noise_state * self.drive_map.std(actions)
        alpha = 1.0 - math.exp(-dt_s / self.tau_s)
        self.lagged_target = self.lagged_target + alpha * (target - self.lagged_target)
        self.velocity = self.velocity + alpha * (self.lagged_target - self.velocity)
        forward, left, yaw = self.velocity.unbind(dim=1)
        mid = self.heading + 0.5 * yaw * dt_s
        c, s = torch.cos(mid), torch.sin(mid)
        self.xy = self.xy + dt_s * torch.stack(
            [forward * c - left * s, forward * s + left * c], dim=1
        )
        self.heading = self.heading + yaw * dt_s
        self.time_since_reset = self.time_since_reset + dt_s

    def sensor_positions(self) -> torch.Tensor:
        """(B, 4, 3) world positions of L/R palps and L/R antennae, in mm."""
        c, s = torch.cos(self.heading)[:, None], torch.sin(self.heading)[:, None]
        off = self.sensor_offsets  # (4, 3)
        x = self.xy[:, 0:1] + c * off[:, 0] - s * off[:, 1]
        y = self.xy[:, 1:2] + s * off[:, 0] + c * off[:, 1]
        z = off[:, 2].expand_as(x)
        return torch.stack([x, y, z], dim=-1)

    def detach_(self) -> None:
        """Cut the autograd history (truncated BPTT)."""
        self.xy, self.heading = self.xy.detach(), self.heading.detach()
        self.velocity = self.velocity.detach()
        self.lagged_target = self.lagged_target.detach()
        self.noise_state = self.noise_state.detach()
