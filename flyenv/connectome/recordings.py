"""Neuropil calcium recordings ``ito_{id}.npz`` -> firing rates (the preprocessing of the
original whole-brain activity fitting, docs/research_systems.md).

File format: ``areas`` (P,) neuropil names (Ito et al. 2014 nomenclature, as in FlyWire)
and ``traces`` (P, T) raw fluorescence, one row per area; optional ``fps`` (frames per
second, default 1.2 Hz, the Mann/Turner whole-brain recordings).

Preprocessing, per area:

1. dF/F with F0 = running 8th percentile over ``baseline_window_s`` (tracks bleaching);
2. 0.01 Hz high-pass (2nd-order Butterworth, zero phase) to remove slow drift; the area's
   mean dF/F is kept (only the drift is removed, not the activity level);
3. Savitzky-Golay smoothing (window 5 frames, order 2);
4. non-negative deconvolution with an AR(1) calcium kernel (GCaMP6s decay ``tau_ca_s``):
   s = argmin ||K s - dF/F||^2 subject to s >= 0, solved by FISTA on all areas at once;
5. rates = s x 100 Hz, clipped to [0, max_firing_rate].

Results are cached next to the recording (``cache/ito_{id}_rates_<hash>.npz``, keyed by
the file's size/mtime and the parameters), so a 2,000-frame recording is preprocessed once.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage, signal

from flyenv.connectome.whole_brain_formats import DATA_SOURCES, WholeBrainDataError
from flyenv.io import atomic_write

DEFAULT_FPS = 1.2


@dataclass(frozen=True)
class PreprocessConfig:
    highpass_hz: float = 0.01
    baseline_percentile: float = 8.0
    baseline_window_s: float = 120.0
    savgol_window: int = 5
    savgol_order: int = 2
    tau_ca_s: float = 1.5
    deconv_iters: int = 300
    rate_scale_hz: float = 100.0
    max_firing_rate_hz: float = 100.0


@dataclass(frozen=True)
class Recording:
    areas: tuple[str, ...]
    rates_hz: np.ndarray  # (T, P) float32
    fps: float


def recording_path(data_dir: str | Path, neural_activity_id: str) -> Path:
    path = Path(data_dir) / f"ito_{neural_activity_id}.npz"
    if not path.exists():
        raise WholeBrainDataError(
            f"ito_{neural_activity_id}.npz not found in {Path(data_dir)} (the --data-dir folder). "
            f"Put the recording there. Sources: {DATA_SOURCES}"
        )
    return path


def read_raw_recording(path: str | Path) -> tuple[tuple[str, ...], np.ndarray, float]:
    """(areas, traces (P, T), fps) with shape checks."""
    try:
        data = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise WholeBrainDataError(f"{path} is not a readable .npz file ({exc})") from exc
    for key in ("areas", "traces"):
        if key not in data.files:
            raise WholeBrainDataError(f"{path} lacks the array {key!r} (has {data.files})")
    areas = tuple(str(a) for a in data["areas"])
    traces = np.asarray(data["traces"], dtype=np.float64)
    if traces.ndim != 2 or traces.shape[0] != len(areas):
        raise WholeBrainDataError(
            f"{path}: traces must be (n_areas={len(areas)}, n_frames), got {traces.shape}"
        )
    if not np.all(np.isfinite(traces)):
        raise WholeBrainDataError(f"{path}: traces contain NaN or inf")
    fps = float(data["fps"]) if "fps" in data.files else DEFAULT_FPS
    return areas, traces, fps


def calcium_decay(fps: float, tau_ca_s: float) -> float:
    """AR(1) coefficient of the calcium kernel per frame."""
    return float(np.exp(-1.0 / (fps * tau_ca_s)))


def deconvolve_nonneg(y: np.ndarray, gamma: float, iters: int) -> np.ndarray:
    """argmin_{s>=0} ||K s - y||^2 with K the AR(1) kernel c_t = gamma c_{t-1} + s_t.
    FISTA with step 1/L, L = (sum of the kernel)^2 >= ||K||^2; y is (P, T), all rows at once."""
    a_fwd = [1.0, -gamma]
    lip = (1.0 / (1.0 - gamma)) ** 2  # ||K||_2^2 <= (sum of the kernel)^2

    def k_apply(s: np.ndarray) -> np.ndarray:
        return signal.lfilter([1.0], a_fwd, s, axis=-1)

    def kt_apply(r: np.ndarray) -> np.ndarray:
        return signal.lfilter([1.0], a_fwd, r[..., ::-1], axis=-1)[..., ::-1]

    s = np.maximum(signal.lfilter(a_fwd, [1.0], y, axis=-1), 0.0)  # inverse filter start
    z, t_k = s.copy(), 1.0
    for _ in range(iters):
        s_new = np.maximum(z - kt_apply(k_apply(z) - y) / lip, 0.0)
        t_next = (1.0 + np.sqrt(1.0 + 4.0 * t_k * t_k)) / 2.0
        z = s_new + (t_k - 1.0) / t_next * (s_new - s)
        s, t_k = s_new, t_next
    return s


def preprocess_traces(
    traces: np.ndarray, fps: float, config: PreprocessConfig | None = None
) -> np.ndarray:
    """Raw fluorescence (P, T) -> firing rates (T, P) in Hz (module docstring)."""
    cfg = config or PreprocessConfig()
    n_frames = traces.shape[1]
    if n_frames < max(cfg.savgol_window, 16):
        raise ValueError(f"recording too short for preprocessing: {n_frames} frames")
    win = max(3, int(round(cfg.baseline_window_s * fps)) | 1)
    f0 = ndimage.percentile_filter(traces, cfg.baseline_percentile, size=(1, win), mode="nearest")
    dff = (traces - f0) / np.maximum(np.abs(f0), 1e-9)
    if cfg.highpass_hz > 0 and cfg.highpass_hz < fps / 2:
        sos = signal.butter(2, cfg.highpass_hz, btype="highpass", fs=fps, output="sos")
        mean = dff.mean(axis=1, keepdims=True)
        dff = signal.sosfiltfilt(sos, dff, axis=1) + mean
    dff = signal.savgol_filter(dff, cfg.savgol_window, cfg.savgol_order, axis=1)
    s = deconvolve_nonneg(dff, calcium_decay(fps, cfg.tau_ca_s), cfg.deconv_iters)
    rates = np.clip(s * cfg.rate_scale_hz, 0.0, cfg.max_firing_rate_hz)
    return rates.T.astype(np.float32)


def load_recording(
    data_dir: str | Path,
    neural_activity_id: str,
    config: PreprocessConfig | None = None,
    use_cache: bool = True,
) -> Recording:
    """Read ``ito_{id}.npz`` from ``data_dir`` and preprocess it (cached)."""
    cfg = config or PreprocessConfig()
    path = recording_path(data_dir, neural_activity_id)
    st = path.stat()
    key = json.dumps([st.st_size, st.st_mtime_ns, asdict(cfg)], sort_keys=True)
    digest = hashlib.sha1(key.encode()).hexdigest()[:12]
    cache = path.parent / "cache" / f"ito_{neural_activity_id}_rates_{digest}.npz"
    if use_cache and cache.exists():
        data = np.load(cache)
        return Recording(tuple(str(a) for a in data["areas"]), data["rates"], float(data["fps"]))
    areas, traces, fps = read_raw_recording(path)
    rates = preprocess_traces(traces, fps, cfg)
    if use_cache:

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as fh:
                np.savez(fh, areas=np.array(areas), rates=rates, fps=fps)

        atomic_write(cache, write)
    return Recording(areas, rates, fps)
