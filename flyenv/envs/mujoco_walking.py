"""What every MuJoCo walking task shares: the body in an arena, agent steps of a
control period, failure detection, self-motion, overhead rendering.

A task subclasses ``MujocoWalkingEnv`` and supplies its observation, reward and
success rule through the hooks at the bottom of the class.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from flygym.arena import OdorArena

from flyenv.bodies.mujoco_fly import MujocoFly, MujocoFlyConfig, PhysicsUnstableError
from flyenv.envs.odor_task import SELF_MOTION_OBS_MAX, action_to_drive
from flyenv.envs.validation import validate_box_action

CAMERA_NAME = "flyenv_overhead"
VIEW_MARGIN_MM = 6.0


def build_marker_arena(
    marker_xy: np.ndarray,
    marker_colors: list[tuple[float, ...]],
    size_mm: tuple[float, float] = (300, 300),
) -> OdorArena:
    """Flat floor with movable (mocap) source markers that nothing collides with,
    and a downward-looking camera for ``OverheadRenderer``."""
    n = len(marker_xy)
    arena = OdorArena(
        size=size_mm,
        odor_source=np.concatenate([marker_xy, np.zeros((n, 1))], axis=1),
        peak_odor_intensity=np.ones((n, 1)),
        marker_colors=marker_colors,
        marker_size=0.5,
    )
    for i in range(n):
        for geom in arena.root_element.find("body", f"odor_source_marker_{i}").find_all("geom"):
            geom.contype, geom.conaffinity = 0, 0
    arena.root_element.worldbody.add(
        "camera", name=CAMERA_NAME, mode="fixed", pos=(10, 0, 30), euler=(0, 0, 0), fovy=45
    )
    return arena


class MujocoWalkingEnv(gym.Env):
    """Base class; ``self.config`` needs control_period_s, physics_timestep_s,
    spawn_height_mm, time_limit_s, failure_penalty, render_width, render_height, camera."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 100}
    env_name = "MujocoWalking"

    def _init_body(self, render_mode: str | None, arena: OdorArena, n_markers: int) -> None:
        if render_mode not in (None, "rgb_array"):
            raise ValueError(
                f"render_mode={render_mode!r}; {self.env_name} supports None or 'rgb_array'"
            )
        cfg = self.config
        self.render_mode = render_mode
        self.metadata = {**self.metadata, "render_fps": int(round(1.0 / cfg.control_period_s))}
        self.body = MujocoFly(
            arena,
            MujocoFlyConfig(timestep_s=cfg.physics_timestep_s, spawn_height_mm=cfg.spawn_height_mm),
        )
        physics = self.body.physics
        bodies = [
            physics.model.name2id(f"odor_source_marker_{i}", "body") for i in range(n_markers)
        ]
        self._marker_mocap_ids = np.array([self.body.model.body_mocapid[b] for b in bodies])
        self._marker_xy = np.zeros((n_markers, 2))
        self._renderer = None
        self._needs_reset = True
        self._steps = 0

    # ------------------------------------------------------------------ body
    def _move_markers(self, data) -> None:
        data.mocap_pos[self._marker_mocap_ids, :2] = self._marker_xy
        data.mocap_pos[self._marker_mocap_ids, 2] = 0.0

    def _reset_body(self, phases: np.ndarray, heading_rad: float, xy_mm=(0.0, 0.0)) -> None:
        self.body.reset(
            phases, heading_rad=heading_rad, position_xy_mm=xy_mm, setup_world=self._move_markers
        )
        self._steps = 0
        self._needs_reset = False
        self._prev_xy = self.body.thorax_position[:2]
        self._prev_heading = self.body.heading_rad
        if self._renderer is not None:
            self._renderer.reset_trail()
            self._place_camera()

    def _advance(self, action) -> str | None:
        """Validate and apply one agent step; returns a failure reason or None."""
        if self._needs_reset:
            raise RuntimeError(
                f"{self.env_name}: call reset() before step() (and after an episode ends)"
            )
        action = validate_box_action(action, self.action_space, self.env_name)
        self._steps += 1
        try:
            self.body.step(action_to_drive(action), self.config.physics_steps_per_action)
        except PhysicsUnstableError:
            return "physics_unstable"
        if not self.body.is_finite():
            return "physics_unstable"
        if self.body.is_flipped:
            return "flipped"
        return None

    def _self_motion(self) -> np.ndarray:
        """(forward / 10 mm/s, leftward / 10 mm/s, yaw rad/s) over the last agent step."""
        dt = self.config.control_period_s
        xy, heading = self.body.thorax_position[:2], self.body.heading_rad
        dx, dy = (xy - self._prev_xy) / dt
        c, s = np.cos(self._prev_heading), np.sin(self._prev_heading)
        forward, left = c * dx + s * dy, -s * dx + c * dy
        yaw_rate = np.angle(np.exp(1j * (heading - self._prev_heading))) / dt
        self._prev_xy, self._prev_heading = xy, heading
        motion = np.array([forward / 10.0, left / 10.0, yaw_rate])
        return np.clip(motion, -SELF_MOTION_OBS_MAX, SELF_MOTION_OBS_MAX)

    def _finish_step(self, reason: str | None) -> tuple[bool, bool]:
        terminated = reason is not None
        truncated = not terminated and self._steps >= self.config.max_episode_steps
        self._needs_reset = terminated or truncated
        if self._renderer is not None:
            self._renderer.add_trail_point(self.body.thorax_position)
        return terminated, truncated

    def _unstable_result(self, info: dict[str, Any]):
        """MuJoCo has reset its data: the state is meaningless, so end the episode."""
        self._needs_reset = True
        obs = np.zeros(self.observation_space.shape, np.float32)
        return obs, -self.config.failure_penalty, True, False, info

    # ------------------------------------------------------------------ render
    def _place_camera(self) -> None:
        model = self.body.model
        pts = self._view_points()
        if self._renderer.trail:
            pts = np.concatenate([pts, np.array(self._renderer.trail)[:, :2]])
        lo, hi = pts.min(axis=0) - VIEW_MARGIN_MM, pts.max(axis=0) + VIEW_MARGIN_MM
        center = (lo + hi) / 2
        half = (hi - lo) / 2
        aspect = self.config.render_width / self.config.render_height
        tan = np.tan(np.deg2rad(model.cam_fovy[self._renderer.camera_id] / 2))
        height = max(half[1] / tan, half[0] / (tan * aspect))
        self._renderer.place_camera(model, self.body.data, np.array([center[0], center[1], height]))
        self._renderer.set_discs(self._discs())

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        if self._renderer is None:
            from flyenv.viz.mujoco_render import OverheadRenderer

            cfg = self.config
            self._renderer = OverheadRenderer(
                self.body.model, CAMERA_NAME, cfg.render_width, cfg.render_height
            )
            self._place_camera()
        if self.config.camera == "follow":
            pos = self.body.thorax_position
            self._renderer.place_camera(
                self.body.model, self.body.data, np.array([pos[0], pos[1], 12.0])
            )
        elif self._renderer.trail:
            self._place_camera()  # grow the view to keep the whole walk in frame
        return self._overlay(self._renderer.render(self.body.data))

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    # ------------------------------------------------------------------ task hooks
    def _view_points(self) -> np.ndarray:
        """(n, 2) points the overhead view must contain (start, sources, ...)."""
        return np.zeros((1, 2))

    def _discs(self) -> list:
        """Translucent floor discs (xy, radius_mm, rgba) such as goal regions."""
        return []

    def _overlay(self, frame: np.ndarray) -> np.ndarray:
        """Draw task-specific layers (e.g. a plume) over the rendered frame."""
        return frame
