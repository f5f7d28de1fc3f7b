"""Time-varying odor plumes carried by wind: data, loading and sampling.

Coordinates (world frame, millimetres, the arena's x-y plane):
    A plume is a stack of frames ``concentration[t, row, col]`` with ``row`` the y
    index and ``col`` the x index (flygym's layout, phiflow's "y,x"). Cell ``(row, col)``
    covers ``[col, col + 1) * cell_size_mm`` in x and ``[row, row + 1) * cell_size_mm``
    in y; its value sits at the cell centre ``((col + 0.5), (row + 0.5)) * cell_size_mm``.
    The domain is ``[0, W * cell) x [0, H * cell)``; ``extent_mm = (W, H) * cell``.
    Frame ``k`` is the state at time ``k / fps`` seconds.

Sampling (``PlumeData.sample`` in numpy, ``PlumeData.sample_torch`` / ``TorchPlume`` in
torch; both compute the same numbers):
    * space: bilinear between the four surrounding cell centres; in the outer half
      cell (between the last centre and the domain edge) the edge value is held.
      Bilinear weights make the torch result differentiable in the positions.
    * time: ``time_interp="linear"`` (default) blends the two frames around
      ``time_s * fps``; ``"nearest"`` takes the closest frame (no blending, piecewise
      constant in time, like flygym's ``OdorPlumeArena`` which floors).
    * past the last frame: ``time_mode="clamp"`` (default) holds the last frame;
      ``"loop"`` wraps around (frame ``T`` is frame 0 again). Negative times clamp
      to frame 0 or wrap likewise.
    * outside the domain: concentration 0, wind = ``nominal_wind_mm_s``, inside False.

Wind is the air velocity in mm/s, world frame (x, y). Use ``world_to_body`` to express
it relative to the fly's body axis (the antennal mechanosensory observation).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import h5py
import numpy as np
import torch

TimeMode = Literal["clamp", "loop"]
TimeInterp = Literal["linear", "nearest"]

FORMAT_NAME = "flyenv-plume"
FORMAT_VERSION = 1

# flygym 1.2.1's plume (examples/olfaction/simulate_plume_dataset.py) in its own units.
FLYGYM_SMOKE_GRID_UNITS = 0.25  # smoke cell size, simulation length units
FLYGYM_SIM_DT_UNITS = 0.7  # simulation time units per solver step
FLYGYM_BACKGROUND_WIND_UNITS = (1.0, 0.0)  # initial/inflow velocity, length units per time unit
FLYGYM_CELL_SIZE_MM = 0.5  # OdorPlumeArena's default dimension_scale_factor
FLYGYM_STEPS_PER_S = 200.0  # OdorPlumeArena's default plume_simulation_fps, one frame per step
# plume_short.hdf5 keeps every 10th step (smoke_hist[5000:5600:10]); flygym's own test of
# it uses plume_simulation_fps=20. Measured: its frames shift by ~25 cells = 12.5 mm
# between consecutive frames, which is 10 steps of the 1.4 mm/step background flow.
FLYGYM_SHORT_FRAME_STRIDE = 10


@dataclass(eq=False, repr=False)  # arrays: identity equality, short repr
class PlumeData:
    """An odor plume (and optionally its wind field) on a regular grid over time.

    Attributes:
        concentration: (T, H, W) float32, arbitrary odor units (flygym's scale: about
            0.6-0.8 at the source).
        cell_size_mm: edge of one grid cell.
        fps: frames per second of simulated time.
        source_xy_mm: (2,) centre of the odor inflow disc.
        source_radius_mm: radius of the inflow disc.
        nominal_wind_mm_s: (2,) background wind (x, y); used outside the domain and,
            when ``velocity_mm_s`` is None, everywhere.
        velocity_mm_s: (T, H, W, 2) float32 air velocity (x, y) at the cell centres,
            or None when the file stores no wind field (flygym's files).
        time_mode: "clamp" or "loop" past the last frame.
        time_interp: "linear" or "nearest" between frames.
        metadata: provenance (seed, generator config, source file, unit derivation).
    """

    concentration: np.ndarray
    cell_size_mm: float
    fps: float
    source_xy_mm: np.ndarray
    source_radius_mm: float
    nominal_wind_mm_s: np.ndarray
    velocity_mm_s: np.ndarray | None = None
    time_mode: TimeMode = "clamp"
    time_interp: TimeInterp = "linear"
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.concentration = np.asarray(self.concentration, dtype=np.float32)
        if self.concentration.ndim != 3 or min(self.concentration.shape) < 1:
            raise ValueError(
                f"concentration has shape {self.concentration.shape}; expected (T, H, W) "
                "with T, H, W >= 1"
            )
        if self.velocity_mm_s is not None:
            self.velocity_mm_s = np.asarray(self.velocity_mm_s, dtype=np.float32)
            if self.velocity_mm_s.shape != (*self.concentration.shape, 2):
                raise ValueError(
                    f"velocity_mm_s has shape {self.velocity_mm_s.shape}; expected "
                    f"{(*self.concentration.shape, 2)} (concentration shape + (2,) for x, y)"
                )
        if not (self.cell_size_mm > 0 and self.fps > 0):
            raise ValueError(
                f"cell_size_mm={self.cell_size_mm} and fps={self.fps} must both be > 0"
            )
        self.cell_size_mm = float(self.cell_size_mm)
        self.fps = float(self.fps)
        self.source_xy_mm = _vec2(self.source_xy_mm, "source_xy_mm")
        self.nominal_wind_mm_s = _vec2(self.nominal_wind_mm_s, "nominal_wind_mm_s")
        self.source_radius_mm = float(self.source_radius_mm)
        if self.time_mode not in ("clamp", "loop"):
            raise ValueError(f"time_mode={self.time_mode!r}; use 'clamp' or 'loop'")
        if self.time_interp not in ("linear", "nearest"):
            raise ValueError(f"time_interp={self.time_interp!r}; use 'linear' or 'nearest'")
        self._torch_cache: dict[tuple[str, torch.dtype], TorchPlume] = {}

    def __repr__(self) -> str:
        t, h, w = self.concentration.shape
        return (
            f"PlumeData({t} frames x {h} x {w} cells, {self.cell_size_mm} mm, {self.fps} fps, "
            f"wind field: {self.has_velocity}, nominal wind {self.nominal_wind_mm_s.tolist()} "
            f"mm/s, {self.time_mode}/{self.time_interp})"
        )

    @property
    def n_frames(self) -> int:
        return self.concentration.shape[0]

    @property
    def shape_hw(self) -> tuple[int, int]:
        return self.concentration.shape[1], self.concentration.shape[2]

    @property
    def extent_mm(self) -> tuple[float, float]:
        """(x, y) size of the domain in mm."""
        h, w = self.shape_hw
        return w * self.cell_size_mm, h * self.cell_size_mm

    @property
    def duration_s(self) -> float:
        """Time from the first to the last frame."""
        return (self.n_frames - 1) / self.fps

    @property
    def has_velocity(self) -> bool:
        return self.velocity_mm_s is not None

    def sample(
        self, time_s: float | np.ndarray, xy_mm: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Concentration (N,), wind (N, 2) in mm/s and inside (N,) bool at ``xy_mm`` (N, 2).

        ``time_s`` is a scalar or (N,) array (one time per point).
        """
        xy = np.asarray(xy_mm, dtype=np.float64)
        if xy.ndim != 2 or xy.shape[1] != 2:
            raise ValueError(f"xy_mm has shape {xy.shape}; expected (N, 2) positions in mm")
        t = np.broadcast_to(np.asarray(time_s, dtype=np.float64), (len(xy),))
        i0, i1, a = _frame_weights_np(t, self.fps, self.n_frames, self.time_mode, self.time_interp)
        h, w = self.shape_hw
        inside = _inside_np(xy, w * self.cell_size_mm, h * self.cell_size_mm)
        safe = np.where(inside[:, None], xy, 0.0)
        (r0, r1, c0, c1), (wy, wx) = _bilinear_np(safe, self.cell_size_mm, h, w)

        def interp(arr: np.ndarray) -> np.ndarray:
            # trailing axes for the (T, H, W, 2) wind: weights are per point
            ex = (slice(None),) + (None,) * (arr.ndim - 3)
            ax, ay, at_ = wx[ex], wy[ex], a[ex]

            def at(k: np.ndarray) -> np.ndarray:
                top = arr[k, r0, c0] * (1 - ax) + arr[k, r0, c1] * ax
                bot = arr[k, r1, c0] * (1 - ax) + arr[k, r1, c1] * ax
                return top * (1 - ay) + bot * ay

            return at(i0) * (1 - at_) + at(i1) * at_

        conc = np.where(inside, interp(self.concentration), 0.0).astype(np.float32)
        if self.velocity_mm_s is None:
            wind = np.broadcast_to(self.nominal_wind_mm_s, (len(xy), 2)).astype(np.float32)
        else:
            wind = interp(self.velocity_mm_s)
            wind = np.where(inside[:, None], wind, self.nominal_wind_mm_s).astype(np.float32)
        return conc, wind, inside

    def to_torch(
        self, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32
    ) -> TorchPlume:
        """A new torch copy of this plume on ``device`` (see ``TorchPlume``)."""
        return TorchPlume(self, dtype=dtype).to(device)

    def sample_torch(
        self, time_s: float | torch.Tensor, xy_mm: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Batched torch sampling; see ``TorchPlume.sample``.

        The field is copied to ``xy_mm``'s device and dtype on the first call and kept.
        """
        if not isinstance(xy_mm, torch.Tensor):
            raise ValueError(
                "xy_mm must be a torch.Tensor of shape (B, W, 2); use sample() for numpy"
            )
        dtype = xy_mm.dtype if xy_mm.is_floating_point() else torch.float32
        key = (str(xy_mm.device), dtype)
        if key not in self._torch_cache:
            self._torch_cache[key] = self.to_torch(xy_mm.device, dtype)
        return self._torch_cache[key].sample(time_s, xy_mm)


class TorchPlume(torch.nn.Module):
    """The plume as torch buffers: ``.to(device)`` once, then sample thousands of points.

    Concentration and wind are stored together as (T, H, W, C) so one gather per
    corner serves all channels (C = 1 without a velocity field, 3 with it).
    """

    def __init__(self, plume: PlumeData, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        chans = [plume.concentration[..., None]]
        if plume.velocity_mm_s is not None:
            chans.append(plume.velocity_mm_s)
        self.register_buffer("field", torch.from_numpy(np.concatenate(chans, -1)).to(dtype))
        self.register_buffer("nominal_wind", torch.tensor(plume.nominal_wind_mm_s, dtype=dtype))
        self.cell_size_mm = plume.cell_size_mm
        self.fps = plume.fps
        self.time_mode = plume.time_mode
        self.time_interp = plume.time_interp

    def sample(
        self, time_s: float | torch.Tensor, xy_mm: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Concentration (B, W), wind (B, W, 2) mm/s, inside (B, W) bool.

        Args:
            time_s: scalar or (B,) tensor, one time per batch row (e.g. per fly).
            xy_mm: (B, W, 2) positions (e.g. W sensors per fly), on this module's device.
                Gradients flow to ``xy_mm`` through the bilinear weights.
        """
        if not isinstance(xy_mm, torch.Tensor) or xy_mm.ndim != 3 or xy_mm.shape[-1] != 2:
            shape = tuple(xy_mm.shape) if hasattr(xy_mm, "shape") else type(xy_mm).__name__
            raise ValueError(f"xy_mm is {shape}; expected a (B, W, 2) tensor of positions in mm")
        if xy_mm.device != self.field.device:
            raise ValueError(
                f"xy_mm is on {xy_mm.device} but the plume is on {self.field.device}; "
                "move the plume once with .to(device)"
            )
        b, n, _ = xy_mm.shape
        xy = xy_mm.to(self.field.dtype)
        t = torch.as_tensor(time_s, dtype=torch.float64, device=xy.device)
        if t.ndim > 1 or (t.ndim == 1 and t.shape[0] not in (1, b)):
            raise ValueError(f"time_s has shape {tuple(t.shape)}; expected a scalar or ({b},)")
        t = t.reshape(-1, 1).expand(b, 1)
        nt, h, w, c = self.field.shape
        i0, i1, a = _frame_weights_torch(t, self.fps, nt, self.time_mode, self.time_interp)
        a = a.to(xy.dtype)

        inside = (
            (xy[..., 0] >= 0)
            & (xy[..., 0] < w * self.cell_size_mm)
            & (xy[..., 1] >= 0)
            & (xy[..., 1] < h * self.cell_size_mm)
        )
        safe = torch.where(inside[..., None], xy, torch.zeros_like(xy))
        gx = (safe[..., 0] / self.cell_size_mm - 0.5).clamp(0, w - 1)
        gy = (safe[..., 1] / self.cell_size_mm - 0.5).clamp(0, h - 1)
        c0 = gx.detach().floor().long().clamp(max=max(w - 2, 0))
        r0 = gy.detach().floor().long().clamp(max=max(h - 2, 0))
        c1 = (c0 + 1).clamp(max=w - 1)
        r1 = (r0 + 1).clamp(max=h - 1)
        wx = (gx - c0).unsqueeze(-1)
        wy = (gy - r0).unsqueeze(-1)
        flat = self.field.reshape(-1, c)

        def at(frame: torch.Tensor) -> torch.Tensor:
            base = frame * (h * w)  # (B, 1) broadcasts over W sensors

            def g(r: torch.Tensor, col: torch.Tensor) -> torch.Tensor:
                return flat[base + r * w + col]  # (B, W, C)

            top = g(r0, c0) * (1 - wx) + g(r0, c1) * wx
            bot = g(r1, c0) * (1 - wx) + g(r1, c1) * wx
            return top * (1 - wy) + bot * wy

        vals = at(i0) * (1 - a[..., None]) + at(i1) * a[..., None]
        conc = torch.where(inside, vals[..., 0], torch.zeros_like(vals[..., 0]))
        if c == 3:
            wind = torch.where(inside[..., None], vals[..., 1:], self.nominal_wind)
        else:
            wind = self.nominal_wind.expand(b, n, 2)
        return conc, wind, inside

    forward = sample


def world_to_body(vec_xy: Any, heading_rad: Any) -> Any:
    """Rotate world-frame (x, y) vectors into the body frame (x forward, y left).

    Works for numpy arrays and torch tensors; ``heading_rad`` broadcasts against
    ``vec_xy[..., 0]`` (the fly's yaw, counter-clockwise from +x).
    """
    lib = torch if isinstance(vec_xy, torch.Tensor) else np
    cos, sin = lib.cos(heading_rad), lib.sin(heading_rad)
    x, y = vec_xy[..., 0], vec_xy[..., 1]
    return lib.stack([cos * x + sin * y, -sin * x + cos * y], -1)


# ----------------------------------------------------------------------------- loading


def flygym_plume_short_path() -> Path:
    """Path of the short plume shipped with flygym 1.2.1 (60 frames, 320 x 480 cells)."""
    from flygym.util import get_data_path

    return Path(get_data_path("flygym", "data/test_data/plume_tracking/plume_short.hdf5"))


def load_plume(
    path: str | Path,
    *,
    fps: float | None = None,
    time_mode: TimeMode = "clamp",
    time_interp: TimeInterp = "linear",
    flygym_cell_size_mm: float = FLYGYM_CELL_SIZE_MM,
    flygym_frame_stride: int | None = None,
) -> PlumeData:
    """Read a plume HDF5 file: flyenv's format or flygym's.

    flyenv files (``attrs["format"] == "flyenv-plume"``) carry their own units and a
    ``velocity`` dataset. flygym files hold only ``plume`` (T, H, W) and the inflow
    geometry in simulation units; we convert with flygym's conventions:

    * one cell = ``flygym_cell_size_mm`` (0.5 mm); the smoke cell is 0.25 length units,
      so one length unit = 2 mm; source (5, 40) units -> (10, 80) mm, radius 2 mm.
    * one solver step (dt = 0.7 time units) = 1/200 s (OdorPlumeArena's default
      ``plume_simulation_fps``), so one time unit = 1/140 s. A file keeps every
      ``flygym_frame_stride``-th step (default: 10 for ``plume_short.hdf5``, 1 otherwise),
      so ``fps = 200 / stride`` unless ``fps`` is given.
    * the wind is flygym's uniform background flow, 1 length unit per time unit in +x:
      ``2 mm * 0.7 * stride * fps`` mm/s = 280 mm/s at the defaults. It is uniform: the
      file stores no velocity, and the smoke-driven meandering perturbation of the real
      flow is lost. Passing another ``fps`` rescales the wind so that it still matches
      how far the odor moves between frames.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(
            f"plume file {path} does not exist; generate one with "
            "`python -m flyenv.stimuli.plume_generator --out PATH` or use "
            "flygym_plume_short_path()"
        )
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise ValueError(f"{path} is not a readable HDF5 file ({e})") from e
    with f:
        if "plume" not in f:
            raise ValueError(
                f"{path} has no 'plume' dataset (found {sorted(f.keys())}); expected a "
                "flygym or flyenv plume file"
            )
        conc = f["plume"][()].astype(np.float32)
        if f.attrs.get("format") == FORMAT_NAME:
            version = int(f.attrs["format_version"])
            if version > FORMAT_VERSION:
                raise ValueError(
                    f"{path} has plume format version {version}; this flyenv reads "
                    f"<= {FORMAT_VERSION}: upgrade flyenv"
                )
            vel = f["velocity"][()].astype(np.float32) if "velocity" in f else None
            meta = {k: _attr(v) for k, v in f.attrs.items()}
            meta["config"] = json.loads(meta.pop("config_json", "{}"))
            return PlumeData(
                concentration=conc,
                velocity_mm_s=vel,
                cell_size_mm=float(f.attrs["cell_size_mm"]),
                fps=float(f.attrs["fps"]) if fps is None else fps,
                source_xy_mm=np.asarray(f.attrs["source_xy_mm"]),
                source_radius_mm=float(f.attrs["source_radius_mm"]),
                nominal_wind_mm_s=np.asarray(f.attrs["nominal_wind_mm_s"]),
                time_mode=time_mode,
                time_interp=time_interp,
                metadata={**meta, "source_file": str(path)},
            )
        # flygym format
        for key in ("inflow_pos", "inflow_radius"):
            if key not in f:
                raise ValueError(f"{path} looks like a flygym plume but lacks '{key}'")
        stride = flygym_frame_stride
        if stride is None:
            stride = FLYGYM_SHORT_FRAME_STRIDE if path.name == "plume_short.hdf5" else 1
        if fps is None:
            fps = FLYGYM_STEPS_PER_S / stride
        mm_per_unit = flygym_cell_size_mm / FLYGYM_SMOKE_GRID_UNITS
        s_per_unit = 1.0 / (fps * stride * FLYGYM_SIM_DT_UNITS)
        wind = np.asarray(FLYGYM_BACKGROUND_WIND_UNITS) * mm_per_unit / s_per_unit
        return PlumeData(
            concentration=conc,
            velocity_mm_s=None,
            cell_size_mm=flygym_cell_size_mm,
            fps=fps,
            source_xy_mm=np.asarray(f["inflow_pos"][()], dtype=np.float64) * mm_per_unit,
            source_radius_mm=float(np.ravel(f["inflow_radius"][()])[0]) * mm_per_unit,
            nominal_wind_mm_s=wind,
            time_mode=time_mode,
            time_interp=time_interp,
            metadata={
                "format": "flygym",
                "source_file": str(path),
                "frame_stride_steps": stride,
                "mm_per_sim_unit": mm_per_unit,
                "s_per_sim_unit": s_per_unit,
                "inflow_scaler": float(np.ravel(f["inflow_scaler"][()])[0])
                if "inflow_scaler" in f
                else None,
                "wind": "uniform background flow (the file stores no velocity)",
            },
        )


# ----------------------------------------------------------------------------- helpers


def _vec2(v: Any, name: str) -> np.ndarray:
    arr = np.asarray(v, dtype=np.float64).reshape(-1)
    if arr.shape != (2,):
        raise ValueError(f"{name} has {arr.size} values; expected 2 (x, y)")
    return arr


def _attr(v: Any) -> Any:
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    return v


def _frame_weights_np(
    t: np.ndarray, fps: float, nt: int, mode: str, interp: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    f = t * fps
    f = np.mod(f, nt) if mode == "loop" else np.clip(f, 0, nt - 1)
    if interp == "nearest":
        i = np.floor(f + 0.5).astype(np.int64)
        i = i % nt if mode == "loop" else np.minimum(i, nt - 1)
        return i, i, np.zeros_like(f)
    i0 = np.minimum(np.floor(f).astype(np.int64), nt - 1)
    i1 = (i0 + 1) % nt if mode == "loop" else np.minimum(i0 + 1, nt - 1)
    return i0, i1, f - i0


def _frame_weights_torch(
    t: torch.Tensor, fps: float, nt: int, mode: str, interp: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    # float64 so that long episodes (t * fps ~ 1e5) keep sub-frame precision
    f = t * fps
    f = torch.remainder(f, nt) if mode == "loop" else f.clamp(0, nt - 1)
    if interp == "nearest":
        i = torch.floor(f + 0.5).long()
        i = i % nt if mode == "loop" else i.clamp(max=nt - 1)
        return i, i, torch.zeros_like(f)
    i0 = torch.floor(f).long().clamp(max=nt - 1)
    i1 = (i0 + 1) % nt if mode == "loop" else (i0 + 1).clamp(max=nt - 1)
    return i0, i1, f - i0


def _inside_np(xy: np.ndarray, width_mm: float, height_mm: float) -> np.ndarray:
    x, y = xy[:, 0], xy[:, 1]
    return (x >= 0) & (x < width_mm) & (y >= 0) & (y < height_mm)


def _bilinear_np(
    xy: np.ndarray, cell: float, h: int, w: int
) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, np.ndarray]]:
    gx = np.clip(xy[:, 0] / cell - 0.5, 0, w - 1)
    gy = np.clip(xy[:, 1] / cell - 0.5, 0, h - 1)
    c0 = np.minimum(np.floor(gx).astype(np.int64), max(w - 2, 0))
    r0 = np.minimum(np.floor(gy).astype(np.int64), max(h - 2, 0))
    c1 = np.minimum(c0 + 1, w - 1)
    r1 = np.minimum(r0 + 1, h - 1)
    return (r0, r1, c0, c1), (gy - r0, gx - c0)
