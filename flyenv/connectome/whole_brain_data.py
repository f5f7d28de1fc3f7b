"""The data of a whole-brain activity fit, loaded from one ``--data-dir``.

:func:`load_whole_brain_data` reads the connectome (signed synapse counts), the neuropil
readout and the preprocessed neuropil recording (:mod:`flyenv.connectome.recordings`) of
real FlyWire files or a synthetic brain, with the recorded areas matched to neuropils by
name. Used by the ``WholeBrainActivity`` env, the fitting trainer and the baselines.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from flyenv.connectome import whole_brain_formats as fmt
from flyenv.connectome.recordings import PreprocessConfig, load_recording


@dataclass
class WholeBrainData:
    signed_counts: sp.csr_matrix  # (N, N) pre x post
    readout_counts: np.ndarray  # (P, N)
    rates_hz: np.ndarray  # (T, P)
    neuropils: tuple[str, ...]
    teacher_rates_hz: np.ndarray | None  # clean rates of a synthetic brain's teacher
    meta: dict
    fps: float = 1.2  # frames per second of the recording

    @property
    def n_frames(self) -> int:
        return self.rates_hz.shape[0]

    def split(self, fraction: float) -> tuple[np.ndarray, np.ndarray]:
        """Train / test frame indices t (each with a next frame t+1), split in time."""
        if not 0 < fraction < 1:
            raise ValueError(f"split must be in (0, 1), got {fraction}")
        n_train = int(round(fraction * self.n_frames))
        if n_train < 2 or self.n_frames - n_train < 3:
            raise ValueError(
                f"recording of {self.n_frames} frames is too short for split {fraction}"
            )
        return np.arange(0, n_train - 1), np.arange(n_train, self.n_frames - 1)


def load_whole_brain_data(
    data_dir: str | Path,
    flywire_version: str | int = "630",
    neural_activity_id: str = "synthetic",
    max_firing_rate_hz: float = 100.0,
) -> WholeBrainData:
    data_dir = Path(data_dir)
    root_ids = fmt.read_completeness(data_dir, flywire_version)
    n = len(root_ids)
    signed = fmt.read_connectivity(data_dir, flywire_version, n_neurons=n)
    conns = fmt.read_neuropil_connections(data_dir, flywire_version)
    rec = load_recording(
        data_dir, neural_activity_id, PreprocessConfig(max_firing_rate_hz=max_firing_rate_hz)
    )
    known = set(conns.neuropils)
    keep = [k for k, a in enumerate(rec.areas) if a in known]
    if not keep:
        raise fmt.WholeBrainDataError(
            f"no recorded area of ito_{neural_activity_id}.npz ({list(rec.areas)[:5]}...) is a "
            f"neuropil of {flywire_version}_connections_processed.csv"
        )
    areas = tuple(rec.areas[k] for k in keep)
    readout = conns.readout_counts(n, areas)
    teacher_path = data_dir / f"teacher_{neural_activity_id}.npz"
    teacher = np.load(teacher_path)["rates"][:, keep] if teacher_path.exists() else None
    meta_path = data_dir / "synthetic_meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    return WholeBrainData(signed, readout, rec.rates_hz[:, keep], areas, teacher, meta, rec.fps)
