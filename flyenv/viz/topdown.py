"""Top-down frames of a 2-D world: odor field or plume, goal discs, trail, fly.

Pure numpy + OpenCV drawing (no GL), fast enough to render every agent step.
"""

from __future__ import annotations

import cv2
import numpy as np

from flyenv.stimuli.odor import diffusion_function


def _colormap(values: np.ndarray) -> np.ndarray:
    """[0, 1] -> RGB uint8, dark blue -> yellow (viridis, via OpenCV's table)."""
    v = np.clip(values * 255, 0, 255).astype(np.uint8)
    return cv2.applyColorMap(v, cv2.COLORMAP_VIRIDIS)[..., ::-1]


def draw_trail_and_fly(img: np.ndarray, px, trail_xy: np.ndarray, heading_rad: float) -> None:
    """White trail, and the fly as a red triangle (about 2.5 mm) pointing along its heading."""
    if len(trail_xy) > 1:
        pts = np.array([px(p) for p in trail_xy], dtype=np.int32)
        cv2.polylines(img, [pts], False, (255, 255, 255), 2, cv2.LINE_AA)
    c, s = np.cos(heading_rad), np.sin(heading_rad)
    body = np.array([[1.5, 0.0], [-1.0, 0.7], [-1.0, -0.7]])
    world = trail_xy[-1] + body @ np.array([[c, s], [-s, c]])
    cv2.fillPoly(
        img, [np.array([px(p) for p in world], dtype=np.int32)], (230, 60, 40), cv2.LINE_AA
    )


def draw_circle(img: np.ndarray, px, scale: float, xy, radius_mm: float, rgb) -> None:
    cv2.circle(img, px(xy), max(1, int(radius_mm * scale)), rgb, 2, cv2.LINE_AA)


class TopDownView:
    """A view (pixels per mm, centre) that contains given points plus a margin."""

    def __init__(self, width: int, height: int, margin_mm: float = 6.0) -> None:
        if width <= 0 or height <= 0:
            raise ValueError(f"render size must be positive, got {width}x{height}")
        self.width, self.height, self.margin = width, height, margin_mm

    def fit(self, points: np.ndarray) -> None:
        lo, hi = points.min(axis=0) - self.margin, points.max(axis=0) + self.margin
        self.scale = min(self.width / (hi[0] - lo[0]), self.height / (hi[1] - lo[1]))  # px/mm
        self.center = (lo + hi) / 2

    def grid(self) -> tuple[np.ndarray, np.ndarray]:
        """World (x, y) of every pixel centre, each (H, W)."""
        w, h = self.width, self.height
        xs = self.center[0] + (np.arange(w) + 0.5 - w / 2) / self.scale
        ys = self.center[1] - (np.arange(h) + 0.5 - h / 2) / self.scale
        return np.meshgrid(xs, ys)

    def px(self, p) -> tuple[int, int]:
        return (
            int(round(self.width / 2 + (p[0] - self.center[0]) * self.scale)),
            int(round(self.height / 2 - (p[1] - self.center[1]) * self.scale)),
        )


class TopDownOdorRenderer(TopDownView):
    """Static odor sources: log-compressed intensity map, goal and aversive circles."""

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
        self.fit(np.concatenate([sources_xy, trail_xy, [[0.0, 0.0]]]))
        gx, gy = self.grid()
        f = diffusion_function(diffusion)
        d = np.hypot(
            gx[None] - sources_xy[:, 0, None, None], gy[None] - sources_xy[:, 1, None, None]
        )
        intensity = np.einsum("nk,nhw->khw", peaks, f(np.maximum(d, 0.05)))
        level = np.log10(1 + intensity / threshold[:, None, None]) / 4.0
        img = _colormap(level[0]).astype(np.float32)
        if len(level) > 1:  # aversive channel tinted purple on top
            a = 0.5 * np.clip(level[1], 0, 1)[..., None]
            img = img * (1 - a) + np.array([140, 60, 200]) * a
        img = np.ascontiguousarray(img.astype(np.uint8))
        draw_circle(img, self.px, self.scale, sources_xy[0], success_radius_mm, (255, 140, 20))
        for av in sources_xy[1:]:
            draw_circle(img, self.px, self.scale, av, aversive_radius_mm, (170, 80, 230))
        draw_trail_and_fly(img, self.px, trail_xy, heading_rad)
        return img


class TopDownPlumeRenderer(TopDownView):
    """A plume frame (by concentration) with its source region, the trail and the fly."""

    def render(
        self,
        plume,
        time_s: float,
        trail_xy: np.ndarray,
        heading_rad: float,
        success_radius_mm: float,
        vmax: float,
    ) -> np.ndarray:
        self.fit(np.concatenate([plume.source_xy_mm[None], trail_xy]))
        gx, gy = self.grid()
        conc, _, inside = plume.sample(time_s, np.stack([gx.ravel(), gy.ravel()], axis=1))
        img = _colormap(np.clip(conc / vmax, 0, 1).reshape(gx.shape))
        img[~inside.reshape(gx.shape)] //= 3  # darken what lies outside the plume domain
        img = np.ascontiguousarray(img)
        draw_circle(img, self.px, self.scale, plume.source_xy_mm, success_radius_mm, (255, 140, 20))
        draw_trail_and_fly(img, self.px, trail_xy, heading_rad)
        return img
