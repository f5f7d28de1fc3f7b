"""Top-down frames of a 2-D odor world: odor field, sources, goal discs, trail, fly.

Pure numpy + OpenCV drawing (no GL), fast enough to render every agent step.
"""

from __future__ import annotations

import cv2
import numpy as np

from flyenv.stimuli.odor import diffusion_function


def _colormap(values: np.ndarray) -> np.ndarray:
    """[0, 1] -> RGB uint8, dark blue -> yellow (viridis-like, via OpenCV's table)."""
    v = np.clip(values * 255, 0, 255).astype(np.uint8)
    return cv2.applyColorMap(v, cv2.COLORMAP_VIRIDIS)[..., ::-1]


class TopDownOdorRenderer:
    """Draws the scene in a view that contains the start, the sources and the whole trail."""

    def __init__(self, width: int, height: int, margin_mm: float = 6.0) -> None:
        if width <= 0 or height <= 0:
            raise ValueError(f"render size must be positive, got {width}x{height}")
        self.width, self.height, self.margin = width, height, margin_mm

    def _view(self, points: np.ndarray) -> tuple[np.ndarray, float]:
        lo, hi = points.min(axis=0) - self.margin, points.max(axis=0) + self.margin
        scale = min(self.width / (hi[0] - lo[0]), self.height / (hi[1] - lo[1]))  # px per mm
        center = (lo + hi) / 2
        return center, scale

    def render(
        self,
        sources_xy: np.ndarray,
        peaks: np.ndarray,
        diffusion: str,
        threshold: np.ndarray,
        trail_xy: np.ndarray,
        heading_rad: float,
        success_radius_mm: float,
        aversive_radius_mm: float,
    ) -> np.ndarray:
        w, h = self.width, self.height
        center, scale = self._view(np.concatenate([sources_xy, trail_xy, [[0.0, 0.0]]]))
        xs = center[0] + (np.arange(w) + 0.5 - w / 2) / scale
        ys = center[1] - (np.arange(h) + 0.5 - h / 2) / scale
        gx, gy = np.meshgrid(xs, ys)
        f = diffusion_function(diffusion)
        d = np.sqrt(
            (gx[None] - sources_xy[:, 0, None, None]) ** 2
            + (gy[None] - sources_xy[:, 1, None, None]) ** 2
        )
        intensity = np.einsum("nk,nhw->khw", peaks, f(np.maximum(d, 0.05)))
        level = np.log10(1 + intensity / threshold[:, None, None]) / 4.0
        img = _colormap(level[0]).astype(np.float32)
        if len(level) > 1:  # aversive channel tinted purple on top
            img = (
                img * (1 - 0.5 * np.clip(level[1], 0, 1)[..., None])
                + np.array([140, 60, 200]) * 0.5 * np.clip(level[1], 0, 1)[..., None]
            )
        img = np.ascontiguousarray(img.astype(np.uint8))

        def px(p):
            return (
                int(round(w / 2 + (p[0] - center[0]) * scale)),
                int(round(h / 2 - (p[1] - center[1]) * scale)),
            )

        cv2.circle(
            img,
            px(sources_xy[0]),
            max(1, int(success_radius_mm * scale)),
            (255, 140, 20),
            2,
            cv2.LINE_AA,
        )
        for av in sources_xy[1:]:
            cv2.circle(
                img, px(av), max(1, int(aversive_radius_mm * scale)), (170, 80, 230), 2, cv2.LINE_AA
            )
        if len(trail_xy) > 1:
            pts = np.array([px(p) for p in trail_xy], dtype=np.int32)
            cv2.polylines(img, [pts], False, (255, 255, 255), 2, cv2.LINE_AA)
        # The fly: a triangle pointing along its heading, about 2.5 mm long.
        pos = trail_xy[-1]
        c, s = np.cos(heading_rad), np.sin(heading_rad)
        body = np.array([[1.5, 0.0], [-1.0, 0.7], [-1.0, -0.7]])
        world = pos + body @ np.array([[c, s], [-s, c]])
        cv2.fillPoly(
            img, [np.array([px(p) for p in world], dtype=np.int32)], (230, 60, 40), cv2.LINE_AA
        )
        return img
