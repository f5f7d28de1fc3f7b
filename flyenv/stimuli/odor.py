"""Static odor fields: point sources whose intensity falls off with distance.

The formula is flygym 1.2.1's ``OdorArena.get_olfaction``: the intensity of odor
channel k at a sensor is ``sum_n peak[n, k] * f(|sensor - source_n|)``, with the
diffusion function ``f`` (inverse square by default). Both the MuJoCo environment
and the kinematic twin use this module, so their odor landscapes are identical.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

TORCH_DIFFUSION_FUNCTIONS: dict[str, Callable] = {
    "inverse_square": lambda d: d.pow(-2.0),
    "exponential_5mm": lambda d: (-d / 5.0).exp(),
}
"""The same functions on torch tensors (the kinematic twin); a test checks they agree."""

DIFFUSION_FUNCTIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    # flygym's default; sensors never sit on a source (bodies have size), so no clamp.
    "inverse_square": lambda d: d**-2.0,
    "exponential_5mm": lambda d: np.exp(-d / 5.0),
}


def diffusion_function(name: str) -> Callable[[np.ndarray], np.ndarray]:
    try:
        return DIFFUSION_FUNCTIONS[name]
    except KeyError:
        raise ValueError(
            f"unknown diffusion function {name!r}; choose one of {sorted(DIFFUSION_FUNCTIONS)}"
        ) from None


class StaticOdorField:
    """Odor intensities from ``n`` point sources in ``k`` odor channels.

    Args:
        source_positions_mm: (n, 3) source positions.
        peak_intensities: (n, k) intensity of each source in each channel.
        diffusion: name of the distance fall-off function (see ``DIFFUSION_FUNCTIONS``).
    """

    def __init__(
        self,
        source_positions_mm: np.ndarray,
        peak_intensities: np.ndarray,
        diffusion: str = "inverse_square",
    ) -> None:
        self.diffusion = diffusion
        self._f = diffusion_function(diffusion)
        self.peak_intensities = np.atleast_2d(np.asarray(peak_intensities, dtype=np.float64))
        self.set_sources(source_positions_mm)

    def set_sources(self, source_positions_mm: np.ndarray) -> None:
        pos = np.atleast_2d(np.asarray(source_positions_mm, dtype=np.float64))
        if pos.shape[1] == 2:
            pos = np.concatenate([pos, np.zeros((len(pos), 1))], axis=1)
        if pos.shape != (len(self.peak_intensities), 3):
            raise ValueError(
                f"source positions have shape {pos.shape}; expected "
                f"({len(self.peak_intensities)}, 3) to match the peak intensities"
            )
        self.source_positions_mm = pos

    @property
    def num_channels(self) -> int:
        return self.peak_intensities.shape[1]

    def intensity(self, sensor_positions_mm: np.ndarray) -> np.ndarray:
        """(w, 3) sensor positions -> (k, w) intensities."""
        delta = sensor_positions_mm[None, :, :] - self.source_positions_mm[:, None, :]
        dist = np.linalg.norm(delta, axis=2)  # (n, w)
        return np.einsum("nk,nw->kw", self.peak_intensities, self._f(dist))


def odor_intensity_torch(sensors_mm, sources_mm, peaks, diffusion: str = "inverse_square"):
    """Batched, differentiable version of ``StaticOdorField.intensity``.

    Args:
        sensors_mm: (B, w, 3) sensor positions.
        sources_mm: (B, n, 3) source positions.
        peaks: (n, k) peak intensities.

    Returns:
        (B, k, w) intensities.
    """
    diffusion_function(diffusion)  # same name check and message as the numpy path
    f = TORCH_DIFFUSION_FUNCTIONS[diffusion]
    dist = (sensors_mm[:, None, :, :] - sources_mm[:, :, None, :]).norm(dim=-1)  # (B, n, w)
    return (peaks[None, :, :, None] * f(dist)[:, :, None, :]).sum(dim=1)
