"""A scrolling raster of a brain's spikes, drawn beside the behaviour video.

Each population gets a horizontal band: one row per neuron (left-side cells above
right-side cells, separated by a line), one column per agent step, a bright pixel
where the neuron spiked during that step. KCs are too many to show: a fixed
subset is drawn (the first ``max_rows`` of each side), with the fraction of all
KCs active written beside it.
"""

from __future__ import annotations

from collections import deque

import cv2
import numpy as np

_COLORS = {
    "PN": (120, 200, 255),
    "KC": (255, 220, 90),
    "APL": (255, 120, 120),
    "MBON": (140, 255, 140),
    "DN": (255, 140, 255),
    "DAN": (255, 170, 60),
}


class RasterPanel:
    def __init__(
        self,
        populations: tuple[str, ...] = ("KC", "MBON", "DN"),
        width: int = 320,
        height: int = 480,
        window_steps: int = 150,
        max_rows: int = 60,
    ) -> None:
        self.populations = populations
        self.width, self.height = width, height
        self.window = window_steps
        self.max_rows = max_rows
        self.history: deque[dict[str, np.ndarray]] = deque(maxlen=window_steps)

    def reset(self) -> None:
        self.history.clear()

    def push(self, spikes: dict[str, np.ndarray]) -> None:
        """spikes[pop]: (2, n) spike counts of one agent step (left, right side)."""
        self.history.append({p: np.asarray(spikes[p]) for p in self.populations if p in spikes})

    def render(self) -> np.ndarray:
        img = np.zeros((self.height, self.width, 3), np.uint8)
        if not self.history:
            return img
        band_h = (self.height - 10 * len(self.populations)) // len(self.populations)
        y0 = 0
        for pop in self.populations:
            frames = [h[pop] for h in self.history if pop in h]
            if not frames:
                continue
            counts = np.stack(frames)  # (T, 2, n)
            n = counts.shape[2]
            rows = min(n, self.max_rows)
            active = (
                (counts[:, :, :rows] > 0).transpose(1, 2, 0).reshape(2 * rows, -1)
            )  # (2 rows, T)
            raster = np.zeros((2 * rows, self.window), bool)
            raster[:, -active.shape[1] :] = active
            band = cv2.resize(
                raster.astype(np.uint8) * 255,
                (self.width - 70, band_h),
                interpolation=cv2.INTER_NEAREST,
            )
            color = np.array(_COLORS.get(pop, (255, 255, 255)), np.float32) / 255
            img[y0 + 16 : y0 + 16 + band_h - 16, 70:] = (band[16:, :, None] * color).astype(
                np.uint8
            )
            mid = y0 + 16 + (band_h - 16) // 2
            cv2.line(img, (70, mid), (self.width - 1, mid), (90, 90, 90), 1)
            frac = float((counts[-1] > 0).mean())
            label = f"{pop} ({n})" if rows == n else f"{pop} {rows}/{n}"
            _text(img, label, (2, y0 + 12), 0.4, (230, 230, 230))
            _text(img, f"{100 * frac:.1f}% on", (2, y0 + 30), 0.35, (200, 200, 200))
            _text(img, "L", (58, y0 + 30), 0.35, (200, 200, 200))
            _text(img, "R", (58, mid + 14), 0.35, (200, 200, 200))
            y0 += band_h + 10
        return img


def raster_side_panel(policy, populations: tuple[str, ...] | None = None, height: int = 480):
    """For a ``StatefulTorchPolicy`` around a spiking brain that can report spikes
    (``record_spikes``), switch recording on and return ``side_panel()`` for
    ``flyenv.recording.record_video``; None for any other policy. ``populations`` None:
    KC, MBON, DN, and the DANs too when the brain's mushroom body is plastic (the
    reinforcement arriving, then the learned MBON output)."""
    module = getattr(policy, "module", None)
    if module is None or not hasattr(module, "record_spikes"):
        return None
    if populations is None:
        plastic = getattr(getattr(module, "brain", None), "plasticity", None) is not None
        populations = ("KC", "MBON", "DAN", "DN") if plastic else ("KC", "MBON", "DN")
    module.record_spikes = True
    policy.keep_records = True
    raster = RasterPanel(populations=populations, height=height)

    def side_panel() -> np.ndarray:
        if policy.records:
            raster.push({p: policy.records[-1][f"spikes/{p}"] for p in populations})
        return raster.render()

    return side_panel


def _text(img: np.ndarray, text: str, xy: tuple[int, int], scale: float, color) -> None:
    """One anti-aliased label in the panel's font."""
    cv2.putText(img, text, xy, cv2.FONT_HERSHEY_SIMPLEX, scale, color, 1, cv2.LINE_AA)
