"""The FlyWire v783 mushroom body (right hemisphere), loaded as typed, checked objects.

Data: ``flyenv/data/flywire_mb_783`` (CC-BY 4.0; Dorkenwald et al. 2024, Schlegel et al.
2024; see the README there). 2,935 neurons: 124 uniglomerular projection neurons (PNs)
in 55 glomeruli, 2,597 Kenyon cells (KCs), the APL, 48 MBONs and 165 DANs. Edges are
kept at >= 5 synapses; the weight of an edge is ``sign(pre) * synapse count`` with the
sign from the presynaptic transmitter (+1 acetylcholine, -1 GABA/glutamate, 0
modulatory). DAN edges (unsigned, modulatory) are kept apart in ``dan_counts``.

The npz file's sha256 is checked against ``meta.json`` on load, so a corrupted or
edited copy fails loudly (``ConnectomeDataError``) instead of giving a wrong brain.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import scipy.sparse as sp

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "flywire_mb_783"
NPZ_NAME = "mb_fafb783.npz"
META_NAME = "meta.json"
POPULATIONS = ("PN", "KC", "APL", "MBON", "DAN")
_INDEX_KEYS = {
    "PN": "pn_idx",
    "KC": "kc_idx",
    "APL": "apl_idx",
    "MBON": "mbon_idx",
    "DAN": "dan_idx",
}
_NEURON_KEYS = (
    "root_id",
    "cell_class",
    "cell_sub_class",
    "cell_type",
    "side",
    "glomerulus",
    "nt",
    "sign",
)
_SIGN_BY_NT = {
    "acetylcholine": 1,
    "gaba": -1,
    "glutamate": -1,
    "dopamine": 0,
    "octopamine": 0,
    "serotonin": 0,
}
_FIX = (
    "Reinstall flyenv (the file ships in flyenv/data/flywire_mb_783/) or copy the original "
    "mb_fafb783.npz and meta.json there, or pass path= to a good copy."
)


class ConnectomeDataError(RuntimeError):
    """A connectome or receptor data file is missing, corrupted or malformed."""


@dataclass(frozen=True)
class Neurons:
    """Per-neuron annotations, arrays aligned by neuron index (n = 2935)."""

    root_id: np.ndarray  # (n,) uint64 FlyWire root ids
    cell_class: np.ndarray  # (n,) str, e.g. "ALPN", "Kenyon_Cell", "MBON"
    cell_sub_class: np.ndarray  # (n,) str
    cell_type: np.ndarray  # (n,) str, e.g. "DA1_lPN", "KCg-m"
    side: np.ndarray  # (n,) str ("right")
    glomerulus: np.ndarray  # (n,) str, PNs only ("" otherwise)
    nt: np.ndarray  # (n,) str, predicted/known transmitter
    sign: np.ndarray  # (n,) int8: +1 excitatory, -1 inhibitory, 0 modulatory

    def __len__(self) -> int:
        return len(self.root_id)


@dataclass(frozen=True)
class MushroomBody:
    """The mushroom-body subgraph: neurons, signed weights, populations."""

    neurons: Neurons
    signed_counts: sp.csr_matrix  # (n, n) row = pre, col = post, sign(pre) * synapse count
    populations: dict[str, np.ndarray]  # "PN", "KC", "APL", "MBON", "DAN" -> neuron indices
    glomeruli: tuple[str, ...]  # sorted unique glomeruli of the PNs
    pn_glomerulus: np.ndarray  # (n_PN,) glomerulus of each PN, aligned with populations["PN"]
    sha256: str
    dan_counts: sp.csr_matrix | None = None  # (n, n) unsigned DAN -> target synapse counts

    @property
    def n_neurons(self) -> int:
        return len(self.neurons)

    def block(self, pre: str, post: str) -> sp.csr_matrix:
        """(n_pre, n_post) signed counts between two populations, in population order."""
        for name in (pre, post):
            if name not in self.populations:
                raise KeyError(f"unknown population {name!r}; choose from {list(self.populations)}")
        rows, cols = self.populations[pre], self.populations[post]
        return self.signed_counts[rows][:, cols].tocsr()

    def glomerulus_to_pn(self) -> sp.csr_matrix:
        """(n_glom, n_PN) 0/1 membership: entry (g, p) = 1 if PN p innervates glomerulus g."""
        g_index = {g: i for i, g in enumerate(self.glomeruli)}
        rows = np.array([g_index[g] for g in self.pn_glomerulus], dtype=np.int64)
        cols = np.arange(len(rows))
        data = np.ones(len(rows), dtype=np.float32)
        return sp.csr_matrix((data, (rows, cols)), shape=(len(self.glomeruli), len(rows)))


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _resolve(path: str | Path | None) -> tuple[Path, Path]:
    """(npz file, meta.json) for a file or a folder path (None: the shipped copy)."""
    p = DATA_DIR if path is None else Path(path)
    npz = p / NPZ_NAME if p.is_dir() or p.suffix != ".npz" else p
    if not npz.is_file():
        raise ConnectomeDataError(f"FlyWire mushroom-body file not found: expected {npz}. {_FIX}")
    return npz, npz.parent / META_NAME


def _expected_sha256(meta_path: Path) -> str:
    if not meta_path.is_file():
        raise ConnectomeDataError(
            f"{meta_path} is missing; it holds the sha256 that {NPZ_NAME} is checked against. "
            f"{_FIX} (or load with verify=False at your own risk)"
        )
    try:
        return str(json.loads(meta_path.read_text())["sha256_npz"])
    except (ValueError, KeyError) as err:
        raise ConnectomeDataError(
            f"{meta_path} is not valid JSON with a 'sha256_npz' entry ({err}). {_FIX}"
        ) from None


def _check(cond: bool, npz: Path, problem: str) -> None:
    if not cond:
        raise ConnectomeDataError(f"{npz} is malformed: {problem}. {_FIX}")


def load_mushroom_body(path: str | Path | None = None, verify: bool = True) -> MushroomBody:
    """Load the mushroom body; default: the copy shipped in ``flyenv/data/flywire_mb_783``.

    Args:
        path: the npz file or the folder holding it (and ``meta.json``).
        verify: check the file's sha256 against ``meta.json["sha256_npz"]``.

    Raises:
        ConnectomeDataError: file missing, checksum mismatch, unreadable or inconsistent.
    """
    npz, meta = _resolve(path)
    mb = _load_cached(str(npz.resolve()), str(meta.resolve()), verify, npz.stat().st_mtime_ns)
    # Fresh sparse matrices per call: the cached ones stay untouched by callers.
    dan = None if mb.dan_counts is None else mb.dan_counts.copy()
    return replace(mb, signed_counts=mb.signed_counts.copy(), dan_counts=dan)


@lru_cache(maxsize=4)
def _load_cached(npz_s: str, meta_s: str, verify: bool, _mtime_ns: int) -> MushroomBody:
    npz, meta = Path(npz_s), Path(meta_s)
    digest = sha256_of(npz)
    if verify:
        expected = _expected_sha256(meta)
        if digest != expected:
            raise ConnectomeDataError(
                f"{npz} is corrupted or modified: sha256 {digest} does not match {expected} "
                f"from {meta}. {_FIX}"
            )
    try:
        with np.load(npz, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except Exception as err:  # zip/format errors of every kind
        raise ConnectomeDataError(
            f"{npz} cannot be read as an npz archive ({err}). {_FIX}"
        ) from None
    required = {"indptr", "indices", "data", *_NEURON_KEYS, *_INDEX_KEYS.values()}
    missing = sorted(required - set(arrays))
    _check(not missing, npz, f"arrays {missing} are missing")
    n = len(arrays["root_id"])
    _check(
        all(len(arrays[k]) == n for k in _NEURON_KEYS), npz, "per-neuron arrays differ in length"
    )
    neurons = Neurons(**{k: _frozen(arrays[k]) for k in _NEURON_KEYS})
    _check(neurons.sign.dtype == np.int8, npz, f"sign has dtype {neurons.sign.dtype}, not int8")
    nt_sign = np.array([_SIGN_BY_NT.get(str(t), 99) for t in neurons.nt])
    _check(np.array_equal(nt_sign, neurons.sign), npz, "signs disagree with the transmitters")
    try:
        w = sp.csr_matrix(
            (arrays["data"], arrays["indices"], arrays["indptr"]), shape=(n, n), dtype=np.int32
        )
    except ValueError as err:
        raise ConnectomeDataError(f"{npz} is malformed: bad CSR arrays ({err}). {_FIX}") from None
    pre = np.repeat(np.arange(n), np.diff(w.indptr))
    _check(
        np.array_equal(np.sign(w.data), neurons.sign[pre].astype(np.int32)),
        npz,
        "edge signs disagree with the presynaptic neuron's sign",
    )
    populations = {name: _frozen(arrays[key].astype(np.int64)) for name, key in _INDEX_KEYS.items()}
    pn_glom = _frozen(neurons.glomerulus[populations["PN"]])
    _check(bool(np.all(pn_glom != "")), npz, "a PN has no glomerulus")
    dan = None
    if {"dan_pre", "dan_post", "dan_syn_count"} <= set(arrays):
        dan = sp.csr_matrix(
            (arrays["dan_syn_count"], (arrays["dan_pre"], arrays["dan_post"])), shape=(n, n)
        )
    return MushroomBody(
        neurons=neurons,
        signed_counts=w,
        populations=populations,
        glomeruli=tuple(sorted({str(g) for g in pn_glom})),
        pn_glomerulus=pn_glom,
        sha256=digest,
        dan_counts=dan,
    )


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.array(a)  # own copy
    a.flags.writeable = False
    return a
