"""The MuJoCo side of a walking env: the arena with the task's source markers, the body in
it, and the overhead camera that follows the walk."""

from __future__ import annotations

import numpy as np
from flygym.arena import OdorArena

from flyenv.bodies.mujoco_fly import MujocoFly, MujocoFlyConfig
from flyenv.tasks.base import WalkingTask

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


class MujocoScene:
    """Builds the MuJoCo fly in the task's arena and draws it (``render``)."""

    def __init__(self, task: WalkingTask, physics_timestep_s: float, spawn_height_mm: float):
        self.task = task
        marker_xy, colors = task.markers()
        arena = build_marker_arena(marker_xy, colors, size_mm=task.arena_size_mm())
        self.body = MujocoFly(
            arena,
            MujocoFlyConfig(timestep_s=physics_timestep_s, spawn_height_mm=spawn_height_mm),
            setup_world=self._move_markers,
        )
        physics = self.body.physics
        ids = [
            physics.model.name2id(f"odor_source_marker_{i}", "body") for i in range(len(marker_xy))
        ]
        self._marker_mocap_ids = np.array([self.body.model.body_mocapid[b] for b in ids], dtype=int)
        self._renderer = None

    def _move_markers(self, data) -> None:
        """Runs inside the body's reset, after the task has placed this episode's sources."""
        if len(self._marker_mocap_ids):
            data.mocap_pos[self._marker_mocap_ids, :2] = self.task.marker_positions(0)
            data.mocap_pos[self._marker_mocap_ids, 2] = 0.0

    # ------------------------------------------------------------------ render
    def reset_view(self, start_xy: np.ndarray) -> None:
        if self._renderer is not None:
            self._renderer.reset_trail()
            self._place_camera(start_xy)

    def add_trail_point(self) -> None:
        if self._renderer is not None:
            self._renderer.add_trail_point(self.body.thorax_position)

    def _place_camera(self, start_xy: np.ndarray) -> None:
        model = self.body.model
        pts = self.task.view_points(0, start_xy)
        if self._renderer.trail:
            pts = np.concatenate([pts, np.array(self._renderer.trail)[:, :2]])
        lo, hi = pts.min(axis=0) - VIEW_MARGIN_MM, pts.max(axis=0) + VIEW_MARGIN_MM
        center = (lo + hi) / 2
        half = (hi - lo) / 2
        aspect = self._width / self._height
        tan = np.tan(np.deg2rad(model.cam_fovy[self._renderer.camera_id] / 2))
        height = max(half[1] / tan, half[0] / (tan * aspect))
        self._renderer.place_camera(model, self.body.data, np.array([center[0], center[1], height]))
        self._renderer.set_discs(self.task.discs(0))

    def render(
        self, width: int, height: int, camera: str, start_xy: np.ndarray, time_s: float
    ) -> np.ndarray:
        if self._renderer is None:
            from flyenv.viz.mujoco_render import OverheadRenderer

            self._width, self._height = width, height
            self._renderer = OverheadRenderer(self.body.model, CAMERA_NAME, width, height)
            self._place_camera(start_xy)
        if camera == "follow":
            pos = self.body.thorax_position
            self._renderer.place_camera(
                self.body.model, self.body.data, np.array([pos[0], pos[1], 12.0])
            )
        elif self._renderer.trail:
            self._place_camera(start_xy)  # grow the view to keep the whole walk in frame
        self._move_markers(
            self.body.data
        )  # sources that moved mid-episode (shown from the next step)
        frame = self._renderer.render(self.body.data)
        renderer, model = self._renderer, self.body.model
        return self.task.overlay(
            frame, lambda: renderer.ground_xy(model), self.body.thorax_position[:2], time_s
        )

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
