"""Offscreen rendering of a MuJoCo scene from an overhead camera, with a trail.

Frames are (H, W, 3) uint8 arrays, as gymnasium's ``RecordVideo`` expects.
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import atexit  # noqa: E402

import mujoco  # noqa: E402
import numpy as np  # noqa: E402

_TRAIL_RGBA = np.array([0.1, 0.35, 0.9, 0.9], dtype=np.float32)
_MAX_TRAIL_MARKERS = 400


class OverheadRenderer:
    """Renders one named camera; draws the fly's past positions as a dotted trail."""

    def __init__(self, model: mujoco.MjModel, camera_name: str, width: int, height: int) -> None:
        if width <= 0 or height <= 0:
            raise ValueError(f"render size must be positive, got {width}x{height}")
        # MuJoCo's offscreen buffer bounds the frame size.
        model.vis.global_.offwidth = max(model.vis.global_.offwidth, width)
        model.vis.global_.offheight = max(model.vis.global_.offheight, height)
        self.camera_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, camera_name)
        if self.camera_id < 0:
            raise ValueError(f"camera {camera_name!r} is not in the model")
        self._renderer = mujoco.Renderer(model, height=height, width=width)
        self._option = mujoco.MjvOption()
        self.trail: list[np.ndarray] = []
        self.discs: list[tuple[np.ndarray, float, tuple[float, ...]]] = []
        # Free the GL context before interpreter teardown (EGL errors otherwise).
        atexit.register(self.close)

    def place_camera(self, model: mujoco.MjModel, data: mujoco.MjData, xyz: np.ndarray) -> None:
        """Move the (world-fixed, downward-looking) camera; takes effect immediately."""
        model.cam_pos[self.camera_id] = xyz
        data.cam_xpos[self.camera_id] = xyz

    def ground_xy(self, model: mujoco.MjModel) -> np.ndarray:
        """(H, W, 2) floor (z = 0) coordinates in mm seen by each pixel of the
        downward-looking camera (for drawing 2-D fields such as plumes under the fly)."""
        height, width = self._renderer.height, self._renderer.width
        cx, cy, cz = model.cam_pos[self.camera_id]
        focal_px = (height / 2) / np.tan(np.deg2rad(model.cam_fovy[self.camera_id]) / 2)
        u = (np.arange(width) + 0.5 - width / 2) * cz / focal_px
        v = (np.arange(height) + 0.5 - height / 2) * cz / focal_px
        gx, gy = np.meshgrid(cx + u, cy - v)
        return np.stack([gx, gy], axis=-1)

    def set_discs(self, discs: list[tuple[np.ndarray, float, tuple[float, ...]]]) -> None:
        """Flat translucent discs on the floor: (xy, radius_mm, rgba), e.g. goal regions."""
        self.discs = [(np.asarray(xy, dtype=np.float64), float(r), rgba) for xy, r, rgba in discs]

    def reset_trail(self) -> None:
        self.trail.clear()

    def add_trail_point(self, xyz: np.ndarray) -> None:
        self.trail.append(np.array(xyz, dtype=np.float64))

    def render(self, data: mujoco.MjData, trail_radius_mm: float = 0.12) -> np.ndarray:
        r = self._renderer
        r.update_scene(data, camera=self.camera_id, scene_option=self._option)
        scene = r.scene
        points = self.trail
        if len(points) > _MAX_TRAIL_MARKERS:
            keep = np.linspace(0, len(points) - 1, _MAX_TRAIL_MARKERS).astype(int)
            points = [points[i] for i in keep]
        size = np.array([trail_radius_mm, 0.0, 0.0])
        eye = np.eye(3).ravel()
        for xy, radius, rgba in self.discs:
            if scene.ngeom >= scene.maxgeom:
                break
            mujoco.mjv_initGeom(
                scene.geoms[scene.ngeom],
                mujoco.mjtGeom.mjGEOM_CYLINDER,
                np.array([radius, 0.01, 0.0]),
                np.array([xy[0], xy[1], 0.01]),
                eye,
                np.asarray(rgba, dtype=np.float32),
            )
            scene.ngeom += 1
        for p in points:
            if scene.ngeom >= scene.maxgeom:
                break
            pos = np.array([p[0], p[1], 0.05])
            mujoco.mjv_initGeom(
                scene.geoms[scene.ngeom], mujoco.mjtGeom.mjGEOM_SPHERE, size, pos, eye, _TRAIL_RGBA
            )
            scene.ngeom += 1
        return r.render().copy()

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
            atexit.unregister(self.close)
