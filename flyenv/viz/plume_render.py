"""Colour a plume frame as an RGB image (for videos and quick looks)."""

from __future__ import annotations

import numpy as np

from flyenv.stimuli.plume import PlumeData

# Odor on a light background: white (clean air) -> orange -> dark red (peak), a
# sequential ramp that stays readable under a translucent overlay of the fly.
_RAMP = np.array(
    [[255, 255, 255], [253, 212, 158], [252, 141, 89], [215, 48, 31], [127, 0, 0]],
    dtype=np.float64,
)


def render_plume_frame(
    plume: PlumeData,
    time_s: float,
    size: tuple[int, int] | None = None,
    vmax: float | None = None,
    wind_arrows: int = 0,
) -> np.ndarray:
    """(height, width, 3) uint8 image of the concentration at ``time_s``.

    Args:
        plume: the plume to draw; the image covers its whole domain.
        time_s: time, sampled like ``plume.sample`` (same interpolation and time mode).
        size: (height, width) in pixels; default one pixel per cell. +y points up in
            the image (row 0 is the top, i.e. the largest y), as seen from above.
        vmax: concentration drawn at full colour; default the 99.5th percentile of
            the whole plume, so that colours are comparable across frames.
        wind_arrows: if > 0, draw a grid of about this many wind arrows per row, in
            black, for plumes with a velocity field.
    """
    h_cells, w_cells = plume.shape_hw
    height, width = size if size is not None else (h_cells, w_cells)
    if height < 1 or width < 1:
        raise ValueError(f"size={size}; expected (height, width) with both >= 1")
    ex, ey = plume.extent_mm
    xs = (np.arange(width) + 0.5) * ex / width
    ys = (np.arange(height)[::-1] + 0.5) * ey / height  # top row = max y
    gx, gy = np.meshgrid(xs, ys)
    xy = np.stack([gx.ravel(), gy.ravel()], -1)
    conc, wind, _ = plume.sample(time_s, xy)
    if vmax is None:
        vmax = float(np.percentile(plume.concentration, 99.5)) or 1.0
    if vmax <= 0:
        raise ValueError(f"vmax={vmax} must be > 0")
    level = np.clip(conc / vmax, 0, 1) * (len(_RAMP) - 1)
    lo = np.minimum(level.astype(np.intp), len(_RAMP) - 2)
    frac = (level - lo)[:, None]
    rgb = _RAMP[lo] * (1 - frac) + _RAMP[lo + 1] * frac
    img = rgb.reshape(height, width, 3).round().astype(np.uint8)
    if wind_arrows > 0 and plume.has_velocity:
        _draw_arrows(img, wind.reshape(height, width, 2), wind_arrows, plume)
    return img


def _draw_arrows(img: np.ndarray, wind: np.ndarray, n: int, plume: PlumeData) -> None:
    height, width, _ = img.shape
    step = max(width // n, 4)
    scale = 0.8 * step / max(float(np.linalg.norm(plume.nominal_wind_mm_s)), 1e-9)
    for r in range(step // 2, height, step):
        for c in range(step // 2, width, step):
            vx, vy = wind[r, c]
            # image rows grow downward while y grows upward
            for s in np.linspace(0, 1, 2 * step):
                rr, cc = round(r - s * vy * scale), round(c + s * vx * scale)
                if 0 <= rr < height and 0 <= cc < width:
                    img[rr, cc] = 0
