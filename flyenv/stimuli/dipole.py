"""Hydrodynamic dipole stimulus for a fish lateral line (docs/research_systems.md, lateral line).

A sphere of radius R moving at speed U past a straight line of neuromasts is, in
potential flow, a dipole. The along-line velocity it induces at a neuromast with
offset (dx, dy) from the sphere centre is

    v_x = -(U R^3 / 2) * (e_x (2 dx^2 - dy^2) + e_y 3 dx dy) / |rho|^5

(e = unit travel direction). Afferent rates are ``clip(r0 + A v + eta, 0, r_max)``
with eta an Ornstein-Uhlenbeck process whose innovations are correlated along the
line (squared-exponential kernel of length ``noise_length_cm``).

Everything is generated in chunks of time steps so memory stays bounded whatever
the number of training trials (the original allocated the whole training stream,
about 9.6 GB for 10,000 trials). Training snapshots are random-access: snapshot k
uses its own RNG stream ``default_rng([seed, k])``, so any window of the stream can
be regenerated exactly (used by the offline environment and by resume).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter


@dataclass(frozen=True)
class DipoleStimulusConfig:
    """Geometry, rate model and noise of the lateral-line stimulus."""

    sphere_radius_cm: float = 0.5
    line_length_cm: float = 4.0
    n_neuromasts: int = 100
    mu_distance_cm: float = 1.5
    sigma_distance_cm: float = 0.6
    r0_hz: float = 40.0
    rmax_hz: float = 200.0
    # Rate gain: 30000 m^-1 in the thesis table = 300 Hz per cm/s.
    gain_hz_per_cm_s: float = 300.0
    sigma_noise_hz: float = 10.0
    tau_noise_s: float = 0.1
    noise_length_cm: float = 1.0

    def __post_init__(self) -> None:
        if self.n_neuromasts < 1:
            raise ValueError(f"n_neuromasts must be >= 1, got {self.n_neuromasts}")
        for name in ("sphere_radius_cm", "line_length_cm", "tau_noise_s", "noise_length_cm"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.rmax_hz <= 0:
            raise ValueError(f"rmax_hz must be > 0, got {self.rmax_hz}")

    def neuromast_x_cm(self) -> np.ndarray:
        """Equally spaced neuromast positions on [0, line_length_cm]."""
        return np.linspace(0.0, self.line_length_cm, self.n_neuromasts)


def dipole_velocity_cm_s(
    xi_cm: np.ndarray,
    sphere_x_cm: np.ndarray | float,
    distance_cm: np.ndarray | float,
    speed_cm_s: np.ndarray | float,
    radius_cm: float,
    direction: np.ndarray | float = 1.0,
) -> np.ndarray:
    """Along-line flow velocity at neuromasts ``xi_cm`` (y = 0).

    ``sphere_x_cm``, ``distance_cm``, ``speed_cm_s`` and ``direction`` may be arrays of
    shape (T,) (one value per time step); the result then has shape (T, n).
    The sphere moves along x (e_y = 0), so only the first dipole term remains.
    """
    x = np.asarray(sphere_x_cm, dtype=float)[..., None]
    d = np.asarray(distance_cm, dtype=float)[..., None]
    u = np.asarray(speed_cm_s, dtype=float)[..., None]
    e = np.asarray(direction, dtype=float)[..., None]
    dx = np.asarray(xi_cm, dtype=float) - x
    dy = -d  # neuromasts at y = 0, sphere at y = distance
    rho2 = np.maximum(dx * dx + dy * dy, 1e-9)  # floor avoids 0/0 at contact
    return -0.5 * u * radius_cm**3 * e * (2.0 * dx * dx - dy * dy) / rho2**2.5


def rates_from_velocity_hz(
    v_cm_s: np.ndarray, eta_hz: np.ndarray | float, cfg: DipoleStimulusConfig
) -> np.ndarray:
    """Afferent rate model: baseline + gain * velocity + noise, rectified."""
    return np.clip(cfg.r0_hz + cfg.gain_hz_per_cm_s * v_cm_s + eta_hz, 0.0, cfg.rmax_hz)


def spatial_noise_cholesky(cfg: DipoleStimulusConfig) -> np.ndarray:
    """Cholesky factor of the along-line noise correlation (squared-exponential)."""
    xi = cfg.neuromast_x_cm()
    dist = xi[:, None] - xi[None, :]
    corr = np.exp(-0.5 * (dist / cfg.noise_length_cm) ** 2)
    return np.linalg.cholesky(corr + 1e-12 * np.eye(xi.size))


class CorrelatedOUNoise:
    """Ornstein-Uhlenbeck noise per neuromast with spatially correlated innovations.

    Euler-Maruyama: eta_k = (1 - dt/tau) eta_{k-1} + sqrt(2 sigma^2 dt / tau) L z_k,
    so the stationary std is about ``sigma_noise_hz``. The state carries over between
    chunks; each chunk is one ``lfilter`` call (no Python loop over time).
    """

    def __init__(self, cfg: DipoleStimulusConfig, dt_s: float, rng: np.random.Generator):
        self.cfg = cfg
        self.rng = rng
        self.chol = spatial_noise_cholesky(cfg)
        self.decay = 1.0 - dt_s / cfg.tau_noise_s
        self.gain = np.sqrt(2.0 * cfg.sigma_noise_hz**2 * dt_s / cfg.tau_noise_s)
        self.eta = np.zeros(cfg.n_neuromasts)

    def sample(self, n_steps: int) -> np.ndarray:
        """Next ``n_steps`` noise values, shape (n_steps, n_neuromasts), in Hz."""
        z = self.rng.standard_normal((n_steps, self.cfg.n_neuromasts))
        innov = self.gain * (z @ self.chol.T)
        zi = (self.decay * self.eta)[None, :]
        out, _ = lfilter([1.0], [1.0, -self.decay], innov, axis=0, zi=zi)
        if n_steps:
            self.eta = out[-1].copy()
        return out


@dataclass(frozen=True)
class TrainingSweepConfig:
    """Training stream: the sphere is held at positions swept forward then back."""

    dt_s: float = 0.001
    hold_s: float = 0.05
    speed_cm_s: float = 5.0
    speed_sigma_cm_s: float = 0.0
    ordered_sweeps: bool = True
    bidirectional: bool = False
    direction: float = 1.0  # travel direction of the held sphere (+1 or -1)
    fixed_distance: bool = True
    distance_min_cm: float | None = 0.8
    distance_max_cm: float | None = 1.8
    noise_scale_early: float = 0.0
    noise_scale_late: float = 0.0
    noise_switch_fraction: float = 0.5
    # Held positions span [-margin, L + margin] (same number of positions as neuromasts);
    # 0 = the line itself (the original). The test sweep starts 0.5 cm before the line.
    margin_cm: float = 0.0

    def __post_init__(self) -> None:
        if not self.dt_s > 0:
            raise ValueError(f"dt_s must be > 0, got {self.dt_s}")
        if self.margin_cm < 0:
            raise ValueError(f"margin_cm must be >= 0, got {self.margin_cm}")
        if self.hold_s < self.dt_s:
            raise ValueError(f"hold_s ({self.hold_s}) must be >= dt_s ({self.dt_s})")
        if not self.speed_cm_s > 0:
            raise ValueError(f"speed_cm_s must be > 0, got {self.speed_cm_s}")
        if self.direction not in (1.0, -1.0):
            raise ValueError(f"direction must be +1 or -1, got {self.direction}")


class TrainingSweep:
    """Held-position training stream of ``total_steps`` time steps, made in chunks.

    Snapshot k holds the sphere at position ``x_seq[k]`` for ``hold_steps`` steps;
    positions are the neuromast grid swept forward then backward (or shuffled per
    pass). Distance, direction, speed and the static noise of snapshot k are drawn
    from ``default_rng([seed, k])``, so any window can be regenerated on its own.
    """

    def __init__(
        self,
        stim: DipoleStimulusConfig,
        cfg: TrainingSweepConfig,
        total_steps: int,
        seed: int,
    ):
        if total_steps < 0:
            raise ValueError(f"total_steps must be >= 0, got {total_steps}")
        self.stim = stim
        self.cfg = cfg
        self.total_steps = int(total_steps)
        self.seed = int(seed)
        self.hold_steps = max(1, int(round(cfg.hold_s / cfg.dt_s)))
        self.xi_cm = stim.neuromast_x_cm()
        m = cfg.margin_cm
        self.x_grid_cm = np.linspace(-m, stim.line_length_cm + m, stim.n_neuromasts)
        self.chol = spatial_noise_cholesky(stim)

    def _position(self, k: int) -> float:
        n = self.x_grid_cm.size
        if self.cfg.ordered_sweeps:
            p = k % (2 * n)
            return float(self.x_grid_cm[p] if p < n else self.x_grid_cm[2 * n - 1 - p])
        # Shuffled passes: one permutation per pass, drawn from the pass's own stream.
        perm = np.random.default_rng([self.seed, 1_000_003, k // n]).permutation(n)
        return float(self.x_grid_cm[perm[k % n]])

    def _distance(self, rng: np.random.Generator) -> float:
        c = self.cfg
        if c.fixed_distance:
            return self.stim.mu_distance_cm
        lo, hi = c.distance_min_cm, c.distance_max_cm
        if lo is not None and hi is not None and lo < hi:
            return float(rng.uniform(lo, hi))
        d = float(rng.normal(self.stim.mu_distance_cm, self.stim.sigma_distance_cm))
        if lo is not None:
            d = max(lo, d)
        if hi is not None:
            d = min(hi, d)
        return d

    def snapshot(self, k: int) -> tuple[np.ndarray, dict[str, float]]:
        """Rates (n,) and metadata of snapshot ``k``."""
        rng = np.random.default_rng([self.seed, k])
        c = self.cfg
        start = k * self.hold_steps
        frac = start / max(1, self.total_steps - 1)
        scale = c.noise_scale_early if frac < c.noise_switch_fraction else c.noise_scale_late
        distance = self._distance(rng)
        direction = -c.direction if (c.bidirectional and k % 2 == 1) else c.direction
        speed = c.speed_cm_s
        if c.speed_sigma_cm_s > 0:
            speed = max(0.1, float(rng.normal(c.speed_cm_s, c.speed_sigma_cm_s)))
        x = self._position(k)
        v = dipole_velocity_cm_s(
            self.xi_cm, x, distance, speed, self.stim.sphere_radius_cm, direction
        )
        eta = 0.0
        if scale > 0:
            eta = (
                scale
                * self.stim.sigma_noise_hz
                * (self.chol @ rng.standard_normal(self.xi_cm.size))
            )
        meta = {"x_cm": x, "distance_cm": distance, "speed_cm_s": speed, "direction": direction}
        return rates_from_velocity_hz(v, eta, self.stim), meta

    def window(self, start: int, n_steps: int) -> dict[str, np.ndarray]:
        """Steps [start, start + n_steps) of the stream (clipped to its end)."""
        stop = min(self.total_steps, start + n_steps)
        n = max(0, stop - start)
        out = {
            "rates_hz": np.empty((n, self.stim.n_neuromasts)),
            "x_cm": np.empty(n),
            "distance_cm": np.empty(n),
            "speed_cm_s": np.empty(n),
            "direction": np.empty(n),
        }
        t = start
        while t < stop:
            k = t // self.hold_steps
            end = min(stop, (k + 1) * self.hold_steps)
            rates, meta = self.snapshot(k)
            sl = slice(t - start, end - start)
            out["rates_hz"][sl] = rates
            for key in ("x_cm", "distance_cm", "speed_cm_s", "direction"):
                out[key][sl] = meta[key]
            t = end
        return out

    def chunks(self, chunk_steps: int, start: int = 0) -> Iterator[dict[str, np.ndarray]]:
        """Consecutive windows of ``chunk_steps`` from ``start`` to the end."""
        if chunk_steps < 1:
            raise ValueError(f"chunk_steps must be >= 1, got {chunk_steps}")
        for t in range(start, self.total_steps, chunk_steps):
            yield self.window(t, chunk_steps)


@dataclass(frozen=True)
class ContinuousSweepConfig:
    """Continuous test sweep at constant speed and distance, with OU noise."""

    dt_s: float = 0.001
    speed_cm_s: float = 5.0
    distance_cm: float = 1.5
    direction: float = 1.0
    path_cm: float = 4.0
    start_margin_cm: float = 0.5
    extra_noise_hz: float = 0.0  # white Gaussian noise added on top (test_ll_noise_hz)

    def __post_init__(self) -> None:
        if not self.distance_cm > 0:
            raise ValueError(f"distance_cm must be > 0, got {self.distance_cm}")
        if not self.speed_cm_s > 0:
            raise ValueError(f"speed_cm_s must be > 0, got {self.speed_cm_s}")
        if not self.path_cm > 0:
            raise ValueError(f"path_cm must be > 0, got {self.path_cm}")
        if self.direction == 0 or not np.isfinite(self.direction):
            raise ValueError(f"direction must be +1 or -1, got {self.direction}")


class ContinuousSweep:
    """The sphere crosses the line once: x0 = -margin (forward) or L + margin (back)."""

    def __init__(self, stim: DipoleStimulusConfig, cfg: ContinuousSweepConfig, seed: int):
        self.stim = stim
        self.cfg = cfg
        self.seed = int(seed)
        self.direction = 1.0 if cfg.direction > 0 else -1.0
        self.total_steps = int(np.arange(0.0, cfg.path_cm / cfg.speed_cm_s, cfg.dt_s).size)
        self.x0_cm = (
            -cfg.start_margin_cm
            if self.direction > 0
            else stim.line_length_cm + cfg.start_margin_cm
        )
        self.xi_cm = stim.neuromast_x_cm()

    def x_cm(self) -> np.ndarray:
        """Sphere position at every step (small: one float per step)."""
        t = np.arange(self.total_steps) * self.cfg.dt_s
        return self.x0_cm + self.direction * self.cfg.speed_cm_s * t

    def chunks(self, chunk_steps: int) -> Iterator[dict[str, np.ndarray]]:
        if chunk_steps < 1:
            raise ValueError(f"chunk_steps must be >= 1, got {chunk_steps}")
        rng = np.random.default_rng([self.seed, 999])
        noise = CorrelatedOUNoise(self.stim, self.cfg.dt_s, rng)
        extra_rng = np.random.default_rng([self.seed, 8888])
        x_all = self.x_cm()
        for t0 in range(0, self.total_steps, chunk_steps):
            x = x_all[t0 : t0 + chunk_steps]
            v = dipole_velocity_cm_s(
                self.xi_cm,
                x,
                self.cfg.distance_cm,
                self.cfg.speed_cm_s,
                self.stim.sphere_radius_cm,
                self.direction,
            )
            rates = rates_from_velocity_hz(v, noise.sample(x.size), self.stim)
            if self.cfg.extra_noise_hz > 0:
                rates = np.clip(
                    rates + extra_rng.normal(0.0, self.cfg.extra_noise_hz, rates.shape), 0.0, None
                )
            n = x.size
            yield {
                "rates_hz": rates,
                "x_cm": x,
                "distance_cm": np.full(n, self.cfg.distance_cm),
                "speed_cm_s": np.full(n, self.cfg.speed_cm_s),
                "direction": np.full(n, self.direction),
            }
