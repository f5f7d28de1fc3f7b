"""Settings shared by every walking task (body, control loop, episode, reward scale, view)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class WalkingTaskConfig:
    """Distances in mm, times in s. Task configs extend this."""

    control_period_s: float = 0.01
    """Simulated time per agent step (the MuJoCo body runs it as physics steps)."""
    physics_timestep_s: float = 1e-4
    time_limit_s: float = 10.0
    progress_reward_per_mm: float = 1.0
    success_bonus: float = 10.0
    failure_penalty: float = 10.0
    """Paid when the episode fails (the body flips, the physics diverges, the fly leaves the arena)."""
    spawn_height_mm: float = 0.2
    """Drop height at reset (MuJoCo body); the fly lands within the first few ms."""
    render_width: int = 640
    render_height: int = 480
    camera: str = "overhead"
    """"overhead": fixed above the scene (grows to keep the walk in view); "follow": above the fly."""

    def validate_walking(self) -> None:
        steps = self.control_period_s / self.physics_timestep_s
        if self.control_period_s <= 0 or abs(steps - round(steps)) > 1e-6:
            raise ValueError(
                f"control_period_s={self.control_period_s} must be a positive multiple of "
                f"physics_timestep_s={self.physics_timestep_s}"
            )
        if self.time_limit_s < self.control_period_s:
            raise ValueError(f"time_limit_s={self.time_limit_s} is shorter than one agent step")
        if self.camera not in ("overhead", "follow"):
            raise ValueError(f"camera={self.camera!r}; use 'overhead' or 'follow'")
        if self.render_width <= 0 or self.render_height <= 0:
            raise ValueError(
                f"render size {self.render_width}x{self.render_height} must be positive"
            )

    @property
    def physics_steps_per_action(self) -> int:
        return int(round(self.control_period_s / self.physics_timestep_s))

    @property
    def max_episode_steps(self) -> int:
        return int(np.ceil(self.time_limit_s / self.control_period_s - 1e-9))
