"""Generate odor plumes carried by wind: 2-D incompressible flow + odor advection.

A numpy/scipy "stable fluids" solver that reproduces the model behind flygym's
``simulate_plume_dataset.py`` (phiflow) in physical units, so that plumes can be longer
and larger than the shipped ``plume_short.hdf5`` and carry their wind field:

* staggered (MAC) velocity grid, ``velocity_cell_factor`` times coarser than the odor
  grid (flygym: 0.5 vs 0.25 units, i.e. 1 mm vs 0.5 mm);
* velocity: semi-Lagrangian self-advection (RK2 back-trace), no viscosity, plus
  flygym's meandering force: each step, one Gaussian 2-vector ``xi`` (the same for the
  whole domain) pushes the air in proportion to the local odor concentration,
  ``du = c * sigma * sqrt(dt) * xi``. flygym uses white noise of std 0.2 scaled by
  (0.1, 2) per 1/200 s step in units of its 280 mm/s background wind, which is
  ``sigma = (79.2, 1584) mm/s/sqrt(s)`` here; the sqrt(dt) makes it step-size independent;
* incompressibility: pressure projection; the Poisson matrix is factorised once with
  ``scipy.sparse.linalg.splu`` and reused every step, which makes the discrete
  divergence zero to round-off;
* boundaries: inflow at x = 0 (uniform wind ``wind_speed_mm_s`` in +x), outflow at
  x = L (pressure 0), free-slip walls at y = 0 and y = H (a wind tunnel);
* odor: MacCormack advection with a min/max limiter (as phiflow's ``mac_cormack``),
  inflow disc at the source adding ``source_rate_per_s`` per second (flygym: 0.2 per
  1/200 s step) along each parcel's path through it, optional molecular diffusion
  (explicit, sub-stepped for stability).

The run is deterministic from ``seed``, shows a tqdm bar, and is cached on disk (key =
hash of the config; see ``generate_plume``); files are written atomically. Cost on one
core: ~15 ms per step for the default 160 x 80 mm (about 25 s for the default 5 s
plume), ~50 ms per step for flygym's 240 x 160 mm. Output is an
HDF5 file that ``flyenv.stimuli.plume.load_plume`` reads: ``plume`` (T, H, W) and
``velocity`` (T, H, W, 2, mm/s at the odor cell centres), both float16 like flygym's
file, plus attrs with units and the config.

CLI: ``python -m flyenv.stimuli.plume_generator --duration-s 5 --seed 0 --out plume.h5``
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import splu
from tqdm import tqdm

from flyenv.io import atomic_write
from flyenv.stimuli.plume import FORMAT_NAME, FORMAT_VERSION, PlumeData, load_plume

# Bump when the numerics change, so that cached files from older solvers are not reused.
SOLVER_VERSION = 1
CACHE_ENV_VAR = "FLYENV_CACHE_DIR"


@dataclass(frozen=True)
class PlumeGeneratorConfig:
    """Parameters of one generated plume. Defaults follow flygym's plume, on a smaller
    domain (160 x 80 mm instead of 240 x 160 mm) so that it runs in tens of seconds."""

    domain_mm: tuple[float, float] = (160.0, 80.0)  # (x, y); wind blows toward +x
    cell_size_mm: float = 0.5  # odor grid (flygym: 0.5)
    velocity_cell_factor: int = 2  # velocity cell = factor * cell_size_mm (flygym: 2)
    duration_s: float = 5.0  # recorded time; frames at 0, 1/fps, ..., duration_s
    fps: float = 50.0
    sim_dt_s: float = 0.005  # solver step (flygym: 1/200 s); 1 / (fps * sim_dt_s) integer
    spinup_s: float | None = None  # unrecorded warm-up; None: two domain transits
    wind_speed_mm_s: float = 280.0  # flygym: 1 length unit per time unit = 280 mm/s
    source_xy_mm: tuple[float, float] = (10.0, 40.0)
    source_radius_mm: float = 2.0
    source_rate_per_s: float = 40.0  # odor added per second inside the source disc
    meander_noise_mm_s_sqrt_s: tuple[float, float] = (79.2, 1584.0)  # (x, y)
    diffusion_mm2_s: float = 0.0  # molecular diffusion; numerical diffusion dominates
    seed: int = 0

    def __post_init__(self) -> None:
        # Canonical types, so that equal configs hash equally (160 vs 160.0, list vs tuple).
        try:
            for name in ("domain_mm", "source_xy_mm", "meander_noise_mm_s_sqrt_s"):
                val = tuple(float(x) for x in getattr(self, name))
                if len(val) != 2:
                    raise ValueError(f"{name} has {len(val)} values; expected 2 (x, y)")
                object.__setattr__(self, name, val)
            for name in (
                "cell_size_mm",
                "duration_s",
                "fps",
                "sim_dt_s",
                "wind_speed_mm_s",
                "source_radius_mm",
                "source_rate_per_s",
                "diffusion_mm2_s",
            ):
                object.__setattr__(self, name, float(getattr(self, name)))
            if self.spinup_s is not None:
                object.__setattr__(self, "spinup_s", float(self.spinup_s))
        except TypeError as e:
            raise ValueError(f"malformed PlumeGeneratorConfig: {e}") from e
        lx, ly = self.domain_mm
        f = self.velocity_cell_factor
        coarse = self.cell_size_mm * f
        if not (isinstance(f, int) and f >= 1):
            raise ValueError(f"velocity_cell_factor={f!r}; expected an integer >= 1")
        for name in ("cell_size_mm", "duration_s", "fps", "sim_dt_s", "wind_speed_mm_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}={getattr(self, name)} must be > 0")
        for name in ("source_radius_mm", "source_rate_per_s", "diffusion_mm2_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 0")
        if self.spinup_s is not None and self.spinup_s < 0:
            raise ValueError(f"spinup_s={self.spinup_s} must be >= 0 (or None for automatic)")
        for size, axis in ((lx, "x"), (ly, "y")):
            n = size / coarse
            if abs(n - round(n)) > 1e-9 or round(n) < 4:
                raise ValueError(
                    f"domain_mm {axis}={size} must be a multiple (>= 4x) of the velocity "
                    f"cell {coarse} mm (cell_size_mm * velocity_cell_factor)"
                )
        spf = 1.0 / (self.fps * self.sim_dt_s)
        if abs(spf - round(spf)) > 1e-6 or round(spf) < 1:
            raise ValueError(
                f"1 / (fps * sim_dt_s) = {spf:.4g} is not a whole number of solver steps "
                "per frame; pick fps and sim_dt_s so that it is (e.g. fps=50, sim_dt_s=0.005)"
            )
        sx, sy = self.source_xy_mm
        if not (0 <= sx < lx and 0 <= sy < ly):
            raise ValueError(
                f"source_xy_mm={self.source_xy_mm} lies outside the domain {lx}x{ly} mm"
            )

    @property
    def steps_per_frame(self) -> int:
        return round(1.0 / (self.fps * self.sim_dt_s))

    @property
    def n_frames(self) -> int:
        return round(self.duration_s * self.fps) + 1

    @property
    def effective_spinup_s(self) -> float:
        if self.spinup_s is not None:
            return self.spinup_s
        return 2.0 * self.domain_mm[0] / self.wind_speed_mm_s

    @property
    def spinup_steps(self) -> int:
        return round(self.effective_spinup_s / self.sim_dt_s)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    def cache_key(self) -> str:
        text = f"solver{SOLVER_VERSION}:{self.to_json()}"
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _bilinear(
    a: np.ndarray, gy: np.ndarray, gx: np.ndarray, bounds: bool = False
) -> tuple[np.ndarray, ...]:
    """Bilinear sample of ``a`` at fractional indices (edge values held outside).

    With ``bounds``, also the min and max of the four corners (MacCormack limiter).
    """
    h, w = a.shape
    gx = np.clip(gx, 0, w - 1)
    gy = np.clip(gy, 0, h - 1)
    x0 = np.minimum(gx.astype(np.intp), w - 2)  # gx >= 0, so astype floors
    y0 = np.minimum(gy.astype(np.intp), h - 2)
    fx, fy = gx - x0, gy - y0
    flat = a.ravel()
    i00 = y0 * w + x0
    v00, v01, v10, v11 = flat[i00], flat[i00 + 1], flat[i00 + w], flat[i00 + w + 1]
    out = (v00 * (1 - fx) + v01 * fx) * (1 - fy) + (v10 * (1 - fx) + v11 * fx) * fy
    if not bounds:
        return (out,)
    lo = np.minimum(np.minimum(v00, v01), np.minimum(v10, v11))
    hi = np.maximum(np.maximum(v00, v01), np.maximum(v10, v11))
    return out, lo, hi


def _poisson_matrix(ny: int, nx: int) -> sp.csc_matrix:
    """5-point Laplacian (unit spacing) on cell centres: Neumann at the inlet and the
    walls (the normal velocity there is prescribed), Dirichlet p = 0 on the outlet face
    (ghost value -p, hence -2 on the diagonal)."""
    idx = np.arange(ny * nx).reshape(ny, nx)
    rows, cols, vals = [], [], []
    diag = np.zeros((ny, nx))
    for (dj, di), valid in (
        ((0, 1), (slice(None), slice(0, nx - 1))),
        ((0, -1), (slice(None), slice(1, nx))),
        ((1, 0), (slice(0, ny - 1), slice(None))),
        ((-1, 0), (slice(1, ny), slice(None))),
    ):
        src = idx[valid]
        rows.append(src.ravel())
        cols.append((src + dj * nx + di).ravel())
        vals.append(np.ones(src.size))
        diag[valid] -= 1.0
    diag[:, nx - 1] -= 2.0
    rows.append(idx.ravel())
    cols.append(idx.ravel())
    vals.append(diag.ravel())
    n = ny * nx
    return sp.csc_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)
    )


class PlumeSolver:
    """State and one time step of the flow + odor simulation (see module docstring).

    State: ``u`` (ny, nx + 1) x-velocity on vertical faces, ``v`` (ny + 1, nx) y-velocity
    on horizontal faces (mm/s), ``conc`` (H, W) odor on the fine grid.
    """

    def __init__(self, config: PlumeGeneratorConfig) -> None:
        self.config = c = config
        f = c.velocity_cell_factor
        self.h = c.cell_size_mm
        self.d = c.cell_size_mm * f
        self.W = round(c.domain_mm[0] / self.h)
        self.H = round(c.domain_mm[1] / self.h)
        self.nx, self.ny = self.W // f, self.H // f
        self.U = c.wind_speed_mm_s
        self.u = np.full((self.ny, self.nx + 1), self.U)
        self.v = np.zeros((self.ny + 1, self.nx))
        self.conc = np.zeros((self.H, self.W))
        self.rng = np.random.default_rng(c.seed)
        self.time_s = 0.0
        self.max_divergence_before = 0.0  # |div| * d / U, max over steps: dimensionless
        self.max_divergence_after = 0.0

        # Face and cell-centre positions in mm
        d, h = self.d, self.h
        self._u_xy = np.meshgrid(np.arange(self.nx + 1) * d, (np.arange(self.ny) + 0.5) * d)
        self._v_xy = np.meshgrid((np.arange(self.nx) + 0.5) * d, np.arange(self.ny + 1) * d)
        xc, yc = np.meshgrid((np.arange(self.W) + 0.5) * h, (np.arange(self.H) + 0.5) * h)
        self._c_xy = (xc, yc)
        # Window of cells that the source can reach within one step (the disc swept by
        # at most a few times the wind), where the swept source term is evaluated.
        reach = c.source_radius_mm + 3.0 * c.wind_speed_mm_s * c.sim_dt_s + 2 * h
        sx, sy = c.source_xy_mm
        cols = slice(max(0, int((sx - reach) / h)), min(self.W, int((sx + reach) / h) + 1))
        rows = slice(max(0, int((sy - reach) / h)), min(self.H, int((sy + reach) / h) + 1))
        self._src_win = (rows, cols)
        # sub-samples of the back-trajectory: about two per cell travelled per step
        self._src_sub = max(2, math.ceil(2 * c.wind_speed_mm_s * c.sim_dt_s / h))
        self._lu = splu(_poisson_matrix(self.ny, self.nx))

    # -- sampling of the staggered velocity at arbitrary points (mm)
    def velocity_at(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d = self.d
        (ux,) = _bilinear(self.u, y / d - 0.5, x / d)
        (vy,) = _bilinear(self.v, y / d, x / d - 0.5)
        return ux, vy

    def divergence(self) -> np.ndarray:
        """Discrete divergence (1/s) of the MAC velocity per velocity cell, (ny, nx)."""
        return (np.diff(self.u, axis=1) + np.diff(self.v, axis=0)) / self.d

    def _advect_conc(self, dt: float) -> np.ndarray:
        x, y = self._c_xy
        ux, vy = self.velocity_at(x, y)
        gx, gy = x / self.h - 0.5, y / self.h - 0.5
        sx, sy = dt * ux / self.h, dt * vy / self.h
        fwd, lo, hi = _bilinear(self.conc, gy - sy, gx - sx, bounds=True)
        (back,) = _bilinear(fwd, gy + sy, gx + sx)
        out = np.clip(fwd + 0.5 * (self.conc - back), lo, hi)
        out[self._src_win] += self._swept_source(ux, vy, dt)
        return out

    def _swept_source(self, ux: np.ndarray, vy: np.ndarray, dt: float) -> np.ndarray:
        """Odor a parcel collects while it crosses the source disc during one step:
        ``rate * integral_0^dt disc(x - u s) ds`` along its back-trajectory. Adding
        ``rate * dt * disc(x)`` once per step instead leaves beads spaced u * dt apart."""
        c = self.config
        win = self._src_win
        x, y = self._c_xy[0][win], self._c_xy[1][win]
        u, v = ux[win], vy[win]
        acc = np.zeros_like(x)
        for k in range(self._src_sub):
            s = dt * (k + 0.5) / self._src_sub
            dist = np.hypot(x - u * s - c.source_xy_mm[0], y - v * s - c.source_xy_mm[1])
            # antialiased disc (one cell wide edge): smooth in radius and position
            acc += np.clip((c.source_radius_mm - dist) / self.h + 0.5, 0.0, 1.0)
        return c.source_rate_per_s * dt * acc / self._src_sub

    def _diffuse(self, conc: np.ndarray, dt: float) -> np.ndarray:
        dcoef = self.config.diffusion_mm2_s
        if dcoef == 0:
            return conc
        n_sub = max(1, math.ceil(dcoef * dt / (0.2 * self.h**2)))  # explicit limit 0.25
        k = dcoef * dt / n_sub / self.h**2
        for _ in range(n_sub):
            p = np.pad(conc, 1, mode="edge")  # no flux through the boundary
            lap = p[:-2, 1:-1] + p[2:, 1:-1] + p[1:-1, :-2] + p[1:-1, 2:] - 4 * conc
            conc = conc + k * lap
        return conc

    def _advect_velocity(self, dt: float) -> tuple[np.ndarray, np.ndarray]:
        d = self.d
        out = []
        for arr, (x, y), (oy, ox) in (
            (self.u, self._u_xy, (0.5, 0.0)),
            (self.v, self._v_xy, (0.0, 0.5)),
        ):
            ux, vy = self.velocity_at(x, y)
            mx, my = self.velocity_at(x - 0.5 * dt * ux, y - 0.5 * dt * vy)  # RK2 midpoint
            bx, by = x - dt * mx, y - dt * my
            out.append(_bilinear(arr, by / d - oy, bx / d - ox)[0])
        return out[0], out[1]

    def _project(self) -> None:
        """Make the velocity divergence-free: solve L phi = div * d^2, subtract grad phi."""
        d = self.d
        div = self.divergence()
        phi = self._lu.solve((div * d * d).ravel()).reshape(self.ny, self.nx)
        self.u[:, 1:-1] -= np.diff(phi, axis=1) / d
        self.u[:, -1] += 2.0 * phi[:, -1] / d  # outlet face, ghost phi = -phi
        self.v[1:-1, :] -= np.diff(phi, axis=0) / d
        scale = d / self.U
        self.max_divergence_before = max(self.max_divergence_before, np.abs(div).max() * scale)
        after = np.abs(self.divergence()).max() * scale
        self.max_divergence_after = max(self.max_divergence_after, after)

    def _apply_boundaries(self) -> None:
        self.u[:, 0] = self.U  # inflow
        self.v[0, :] = 0.0  # free-slip walls
        self.v[-1, :] = 0.0

    def step(self) -> None:
        c = self.config
        dt = c.sim_dt_s
        # Same order as flygym's step(): odor with the old flow, then the flow.
        self.conc = self._diffuse(self._advect_conc(dt), dt)
        u, v = self._advect_velocity(dt)
        # Meandering force: the odor-laden air is pushed by a domain-wide random kick.
        f = c.velocity_cell_factor
        cc = self.conc.reshape(self.ny, f, self.nx, f).mean(axis=(1, 3))
        cp = np.pad(cc, 1, mode="edge")
        c_u = 0.5 * (cp[1:-1, :-1] + cp[1:-1, 1:])  # (ny, nx + 1) at u faces
        c_v = 0.5 * (cp[:-1, 1:-1] + cp[1:, 1:-1])  # (ny + 1, nx) at v faces
        xi = self.rng.standard_normal(2) * math.sqrt(dt)
        sx, sy = c.meander_noise_mm_s_sqrt_s
        self.u = u + c_u * (sx * xi[0])
        self.v = v + c_v * (sy * xi[1])
        self._apply_boundaries()
        self._project()
        self.time_s += dt

    def frame(self) -> tuple[np.ndarray, np.ndarray]:
        """Current odor (H, W) and velocity at the odor cell centres (H, W, 2), mm/s."""
        ux, vy = self.velocity_at(*self._c_xy)
        return self.conc.copy(), np.stack([ux, vy], axis=-1)


@dataclass(frozen=True)
class GeneratedPlume:
    path: Path
    from_cache: bool  # True: an existing file with the same config was returned as is
    config_hash: str


def default_cache_dir() -> Path:
    env = os.environ.get(CACHE_ENV_VAR)
    return Path(env) if env else Path.home() / ".cache" / "flyenv" / "plumes"


def _matches(path: Path, key: str) -> bool:
    try:
        with h5py.File(path, "r") as f:
            return f.attrs.get("config_hash") == key and "velocity" in f
    except OSError:
        return False  # unreadable or truncated: regenerate


def generate_plume(
    config: PlumeGeneratorConfig | None = None,
    *,
    out: str | Path | None = None,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    progress: bool = True,
) -> GeneratedPlume:
    """Simulate ``config`` and write it to ``out`` (default: the cache), unless a file with
    the same config is already there.

    Cache directory: ``cache_dir``, else ``$FLYENV_CACHE_DIR``, else
    ``~/.cache/flyenv/plumes``; file name ``plume_<config hash>.h5``.
    """
    config = config or PlumeGeneratorConfig()
    key = config.cache_key()
    if out is None:
        base = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        path = base / f"plume_{key}.h5"
    else:
        path = Path(out)
    if use_cache and path.is_file() and _matches(path, key):
        return GeneratedPlume(path=path, from_cache=True, config_hash=key)

    solver = PlumeSolver(config)
    n_frames, spf = config.n_frames, config.steps_per_frame
    conc = np.empty((n_frames, solver.H, solver.W), dtype=np.float16)
    vel = np.empty((n_frames, solver.H, solver.W, 2), dtype=np.float16)
    total = config.spinup_steps + (n_frames - 1) * spf
    with tqdm(total=total, desc="plume", unit="step", disable=not progress) as bar:
        for _ in range(config.spinup_steps):
            solver.step()
            bar.update()
        for k in range(n_frames):
            if k > 0:
                for _ in range(spf):
                    solver.step()
                    bar.update()
            c, v = solver.frame()
            conc[k], vel[k] = c, v
    _write_plume(path, config, key, conc, vel, solver)
    return GeneratedPlume(path=path, from_cache=False, config_hash=key)


def get_plume(config: PlumeGeneratorConfig | None = None, **kwargs) -> PlumeData:
    """Generate (or fetch from the cache) and load a plume. kwargs go to ``generate_plume``
    except ``time_mode`` and ``time_interp``, which go to ``load_plume``."""
    load_kw = {k: kwargs.pop(k) for k in ("time_mode", "time_interp") if k in kwargs}
    return load_plume(generate_plume(config, **kwargs).path, **load_kw)


def _write_plume(
    path: Path,
    config: PlumeGeneratorConfig,
    key: str,
    conc: np.ndarray,
    vel: np.ndarray,
    solver: PlumeSolver,
) -> None:
    def write(tmp: Path) -> None:
        with h5py.File(tmp, "w") as f:
            opts = {"compression": "gzip", "compression_opts": 1, "shuffle": True}
            f.create_dataset("plume", data=conc, chunks=(1, *conc.shape[1:]), **opts)
            f.create_dataset("velocity", data=vel, chunks=(1, *vel.shape[1:]), **opts)
            # flygym's geometry datasets, here in mm (see attrs)
            f["inflow_pos"] = np.asarray(config.source_xy_mm)
            f["inflow_radius"] = [config.source_radius_mm]
            f["inflow_scaler"] = [config.source_rate_per_s * config.sim_dt_s]
            a = f.attrs
            a["format"] = FORMAT_NAME
            a["format_version"] = FORMAT_VERSION
            a["solver_version"] = SOLVER_VERSION
            a["config_json"] = config.to_json()
            a["config_hash"] = key
            a["seed"] = config.seed
            a["cell_size_mm"] = config.cell_size_mm
            a["fps"] = config.fps
            a["source_xy_mm"] = np.asarray(config.source_xy_mm, dtype=np.float64)
            a["source_radius_mm"] = config.source_radius_mm
            a["nominal_wind_mm_s"] = np.array([config.wind_speed_mm_s, 0.0])
            a["inflow_units"] = "mm; inflow_scaler is odor added per solver step"
            a["velocity_units"] = "mm/s, (x, y) world frame, at odor cell centres"
            a["max_rel_divergence_before_projection"] = solver.max_divergence_before
            a["max_rel_divergence_after_projection"] = solver.max_divergence_after

    atomic_write(path, write)


def main(argv: list[str] | None = None) -> None:
    d = PlumeGeneratorConfig()
    p = argparse.ArgumentParser(
        prog="python -m flyenv.stimuli.plume_generator",
        description="Generate a wind-borne odor plume (HDF5, readable by load_plume).",
    )
    p.add_argument("--out", type=Path, help="output file (default: the cache directory)")
    p.add_argument("--cache-dir", type=Path, help=f"cache directory (env {CACHE_ENV_VAR})")
    p.add_argument("--duration-s", type=float, default=d.duration_s)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--domain-mm", type=float, nargs=2, default=d.domain_mm, metavar=("X", "Y"))
    p.add_argument("--cell-size-mm", type=float, default=d.cell_size_mm)
    p.add_argument("--fps", type=float, default=d.fps)
    p.add_argument("--sim-dt-s", type=float, default=d.sim_dt_s)
    p.add_argument("--spinup-s", type=float, default=d.spinup_s)
    p.add_argument("--wind-speed-mm-s", type=float, default=d.wind_speed_mm_s)
    p.add_argument("--source-xy-mm", type=float, nargs=2, default=d.source_xy_mm)
    p.add_argument("--diffusion-mm2-s", type=float, default=d.diffusion_mm2_s)
    p.add_argument("--force", action="store_true", help="regenerate even if cached")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    try:
        config = PlumeGeneratorConfig(
            domain_mm=tuple(args.domain_mm),
            cell_size_mm=args.cell_size_mm,
            duration_s=args.duration_s,
            fps=args.fps,
            sim_dt_s=args.sim_dt_s,
            spinup_s=args.spinup_s,
            wind_speed_mm_s=args.wind_speed_mm_s,
            source_xy_mm=tuple(args.source_xy_mm),
            diffusion_mm2_s=args.diffusion_mm2_s,
            seed=args.seed,
        )
    except ValueError as e:
        p.error(str(e))
    res = generate_plume(
        config,
        out=args.out,
        cache_dir=args.cache_dir,
        use_cache=not args.force,
        progress=not args.no_progress,
    )
    how = "found in cache" if res.from_cache else "generated"
    print(f"{how}: {res.path}")


if __name__ == "__main__":
    main()
