"""DoOR 2.0 odorant-receptor responses and the olfactory receptor neuron (ORN) front end.

Data: ``flyenv/data/door`` (CC BY-SA 4.0, kept in its own folder; Muench & Galizia 2016,
see the README there): 692 odorants x 78 responding units (receptors or ORN types),
responses normalised to 0..1 per unit, NaN where unmeasured, plus each unit's
spontaneous firing rate (SFR) on the same scale.

Model, from odor identity and concentration to ORN firing rate per glomerulus:

1. Mapping. DoOR's mapping file names the glomerulus of each unit. A unit feeds
   glomerulus g when its ``glomerulus`` field is exactly g or its ``code`` field (DoOR's
   unit of record per glomerulus) is g; this gives ac3A to both DL2d and DL2v. Units
   whose field names several ORN types ("DM5+DM3", summed sensillum recordings such as
   "VL1+VM1+VL2p") or none ("?") are not used. Glomeruli with no unit (e.g. VA7m and
   the thermo/hygrosensory VP glomeruli) are listed in
   ``OrnFrontEnd.glomeruli_without_receptor`` and fire at the spontaneous rate only.
2. Response. ``delta = response - SFR`` of the unit (DoOR's ``resetSFR``; a unit
   without SFR counts 0), so ``delta`` lies in [-1, 1]: negative = inhibition below the
   spontaneous rate. Several units of one glomerulus measure the same ORN type in
   different preparations (receptor in the empty neuron vs. the native sensillum), so
   their measured ``delta`` are averaged, not summed.
3. Missing values. An (odor, glomerulus) pair none of whose units was measured is
   "missing": ``OrnConfig.missing="zero"`` treats it as no response (delta 0),
   ``"error"`` raises ``ValueError`` naming the pairs. Nothing NaN leaves this module.
4. Concentration. Same units as the odor intensity of OdorTaxis (source peak intensity
   x diffusion(distance); 0.01 = a unit source 10 mm away under inverse-square
   diffusion). DoOR responses were measured at one (mostly 10^-2) dilution; the model
   scales them linearly: drive ``u_g = sum_odor delta[odor, g] * c[odor]``.
5. Rate (Hz), a Michaelis-Menten saturation of the drive around the spontaneous rate s:
   ``rate = s + (max_rate - s) * u / (u + K)`` for u >= 0 and
   ``rate = s * K / (K - u)`` for u < 0 (the same ``s + s * u / (|u| + K)``),
   so rates stay in [0, max_rate), equal s at u = 0, and rise monotonically with u.
"""

from __future__ import annotations

import csv
import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from flyenv.connectome.mushroom_body import ConnectomeDataError, sha256_of

if TYPE_CHECKING:
    import torch

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "door"
RESPONSE_FILE = "door_response_matrix.csv"
MAPPING_FILE = "door_receptor_mappings.csv"
CHEMICAL_FILE = "door_chemical_meta.csv"
SHA256 = {
    RESPONSE_FILE: "192f2524190fb8951cbf88863a038c9b30e8fa1b2ef10c068437436ae79ce193",
    MAPPING_FILE: "c984e8749108cfe1b1b2edd6d098a1940ad4756a54682edbce8b31e72c6b71ff",
    CHEMICAL_FILE: "2594af01df12730102e82fcd78c3b562bc0ed1c9f96216c6b79b3164e1335485",
}
"""sha256 of the shipped DoOR files (as copied from connectome-interpreter 2.9.5)."""
_FIX = (
    "Reinstall flyenv (the files ship in flyenv/data/door/) or copy the original DoOR "
    "CSV files there, or pass path= to a folder holding good copies."
)
ANTENNA, PALP = "antenna", "maxillary palp"
MISSING_POLICIES = ("zero", "error")


@dataclass(frozen=True)
class DoorData:
    """DoOR responses, rows = odorants, columns = responding units ("receptors")."""

    odor_names: tuple[str, ...]
    cas: tuple[str, ...]  # "" where DoOR has none
    receptors: tuple[str, ...]
    responses: np.ndarray  # (n_odors, n_receptors) normalised 0..1, NaN where unmeasured
    receptor_glomerulus: dict[
        str, str
    ]  # DoOR's glomerulus field as written ("DL4", "DM5+DM3", "?")
    inchikey: tuple[str, ...] = ()
    spontaneous: np.ndarray = field(
        default_factory=lambda: np.zeros(0)
    )  # (n_receptors,) SFR, NaN if none
    glomerulus_receptors: dict[str, tuple[str, ...]] = field(
        default_factory=dict
    )  # units used per glomerulus
    receptor_organ: dict[str, str] = field(default_factory=dict)  # "antenna" / "maxillary palp"


def _read_csv(path: Path) -> list[list[str]]:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            return list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise ConnectomeDataError(f"{path} cannot be read as CSV ({err}). {_FIX}") from None


def _float(x: str) -> float:
    return np.nan if x in ("NA", "") else float(x)


def load_door(path: str | Path | None = None, verify: bool = True) -> DoorData:
    """Load DoOR from a folder (default: the copy shipped in ``flyenv/data/door``).

    ``verify`` checks each file's sha256 against ``SHA256``.

    Raises:
        ConnectomeDataError: a file is missing, corrupted or malformed.
    """
    folder = DATA_DIR if path is None else Path(path)
    files = [folder / name for name in (RESPONSE_FILE, MAPPING_FILE, CHEMICAL_FILE)]
    for p in files:
        if not p.is_file():
            raise ConnectomeDataError(f"DoOR file not found: expected {p}. {_FIX}")
    stamp = tuple(p.stat().st_mtime_ns for p in files)
    return _load_door_cached(str(folder.resolve()), verify, stamp)


@lru_cache(maxsize=4)
def _load_door_cached(folder_s: str, verify: bool, _stamp: tuple) -> DoorData:
    folder = Path(folder_s)
    if verify:
        for name, expected in SHA256.items():
            digest = sha256_of(folder / name)
            if digest != expected:
                raise ConnectomeDataError(
                    f"{folder / name} is corrupted or modified: sha256 {digest} does not match "
                    f"the shipped {expected}. {_FIX} (or load with verify=False at your own risk)"
                )
    resp_path, map_path, chem_path = (
        folder / n for n in (RESPONSE_FILE, MAPPING_FILE, CHEMICAL_FILE)
    )
    rows = _read_csv(resp_path)
    try:
        receptors = tuple(rows[0][1:])
        if rows[1][0] != "SFR":
            raise ValueError("the first data row is not 'SFR'")
        table = np.array([[_float(x) for x in r[1:]] for r in rows[1:]], dtype=np.float64)
        keys = [r[0] for r in rows[2:]]
    except (IndexError, ValueError) as err:
        raise ConnectomeDataError(f"{resp_path} is malformed ({err}). {_FIX}") from None
    if table.ndim != 2 or table.shape[1] != len(receptors):
        raise ConnectomeDataError(f"{resp_path} is malformed: rows differ in length. {_FIX}")
    chem = _read_csv(chem_path)
    try:
        h = chem[0]
        i_name, i_key, i_cas = h.index("Name"), h.index("InChIKey"), h.index("CAS")
        meta = {r[i_key]: (r[i_name], "" if r[i_cas] in ("NA", "") else r[i_cas]) for r in chem[1:]}
    except (IndexError, ValueError) as err:
        raise ConnectomeDataError(f"{chem_path} is malformed ({err}). {_FIX}") from None
    unknown = [k for k in keys if k not in meta]
    if unknown:
        raise ConnectomeDataError(
            f"{resp_path} has odorants {unknown[:5]} missing from {chem_path}. {_FIX}"
        )
    rec_glom, glom_units, organ = _read_mapping(map_path, set(receptors))
    responses = table[1:]
    spontaneous = table[0]
    for a in (responses, spontaneous):
        a.flags.writeable = False
    return DoorData(
        odor_names=tuple(meta[k][0] for k in keys),
        cas=tuple(meta[k][1] for k in keys),
        receptors=receptors,
        responses=responses,
        receptor_glomerulus=rec_glom,
        inchikey=tuple(keys),
        spontaneous=spontaneous,
        glomerulus_receptors=glom_units,
        receptor_organ=organ,
    )


def _read_mapping(
    path: Path, units: set[str]
) -> tuple[dict[str, str], dict[str, tuple[str, ...]], dict[str, str]]:
    rows = _read_csv(path)
    try:
        h = rows[0]
        i_unit, i_glom, i_code, i_type = (
            h.index(c) for c in ("receptor", "glomerulus", "code", "sensillum.type")
        )
    except (IndexError, ValueError) as err:
        raise ConnectomeDataError(f"{path} is malformed ({err}). {_FIX}") from None
    rec_glom: dict[str, str] = {}
    glom_units: dict[str, list[str]] = {}
    organ: dict[str, str] = {}
    for r in rows[1:]:
        unit, glom, code = r[i_unit], r[i_glom], r[i_code]
        if unit not in units:
            continue  # no data for this unit (e.g. Or98b: "see Or85b for data")
        rec_glom.setdefault(unit, glom)
        organ[unit] = PALP if r[i_type] == "maxillary palp" else ANTENNA
        single = glom if glom and not any(c in glom for c in "+/?") else ""
        for g in {single, "" if code in ("NA", "") else code} - {""}:
            glom_units.setdefault(g, [])
            if unit not in glom_units[g]:
                glom_units[g].append(unit)
    return rec_glom, {g: tuple(u) for g, u in sorted(glom_units.items())}, organ


@dataclass
class OrnConfig:
    """ORN rate model (see the module docstring for the formula)."""

    spontaneous_rate_hz: float = 8.0
    """Rate at zero drive (typical Drosophila ORN spontaneous rates are 1-30 Hz)."""
    max_rate_hz: float = 200.0
    """Asymptotic rate at saturating drive (strong ORN responses reach 200-300 Hz)."""
    half_saturation: float = 0.01
    """Drive (DoOR delta x concentration, concentration in OdorTaxis intensity units) at
    which the excited rate is half-way from spontaneous to max: 0.01 = a full DoOR
    response from a unit source 10 mm away (inverse-square diffusion)."""
    missing: str = "zero"
    """Unmeasured (odor, glomerulus) pairs: "zero" (no response) or "error" (raise)."""

    def validate(self) -> None:
        if not 0.0 <= self.spontaneous_rate_hz < self.max_rate_hz:
            raise ValueError(
                f"OrnConfig needs 0 <= spontaneous_rate_hz < max_rate_hz; got "
                f"{self.spontaneous_rate_hz} and {self.max_rate_hz}"
            )
        if not self.half_saturation > 0.0:
            raise ValueError(f"OrnConfig.half_saturation must be > 0, got {self.half_saturation}")
        if self.missing not in MISSING_POLICIES:
            raise ValueError(f"OrnConfig.missing={self.missing!r}; use one of {MISSING_POLICIES}")


class OrnFrontEnd:
    """ORN firing rates per glomerulus for named odors at given concentrations.

    Args:
        glomeruli: glomerulus names, e.g. ``load_mushroom_body().glomeruli``.
        door: DoOR data (default: the shipped copy).
        config: rate model (default ``OrnConfig()``).
    """

    def __init__(
        self,
        glomeruli: Sequence[str],
        door: DoorData | None = None,
        config: OrnConfig | None = None,
    ) -> None:
        self.glomeruli = tuple(str(g) for g in glomeruli)
        self.door = load_door() if door is None else door
        self.config = OrnConfig() if config is None else config
        self.config.validate()
        d = self.door
        self.glomerulus_receptors = {g: d.glomerulus_receptors.get(g, ()) for g in self.glomeruli}
        self.glomeruli_without_receptor = tuple(
            g for g, u in self.glomerulus_receptors.items() if not u
        )
        """Glomeruli with no DoOR unit: spontaneous rate only, whatever the odor."""
        self.glomerulus_organ = tuple(
            PALP if u and all(d.receptor_organ.get(x) == PALP for x in u) else ANTENNA
            for u in self.glomerulus_receptors.values()
        )
        """Sense organ of each glomerulus's ORNs (DoOR sensillum type)."""
        col = {r: i for i, r in enumerate(d.receptors)}
        sfr = np.nan_to_num(d.spontaneous, nan=0.0)
        delta = d.responses - sfr[None, :]
        self._delta = np.full((len(d.odor_names), len(self.glomeruli)), np.nan)
        for j, units in enumerate(self.glomerulus_receptors.values()):
            if units:
                cols = delta[:, [col[u] for u in units]]
                measured = np.isfinite(cols).any(axis=1)
                self._delta[measured, j] = np.nanmean(cols[measured], axis=1)
        self._index = _odor_index_table(d)

    # ------------------------------------------------------------------ lookup
    def odor_index(self, odor: str) -> int:
        """Row of ``odor`` (DoOR name, CAS number or InChIKey; case-insensitive)."""
        key = str(odor).strip().lower()
        rows = self._index.get(key)
        if rows is None:
            names = sorted({n.lower() for n in self.door.odor_names})
            close = difflib.get_close_matches(key, names, n=5, cutoff=0.6)
            hint = f"close matches: {close}" if close else "no close match"
            raise ValueError(
                f"unknown odor {odor!r} (not a DoOR name, CAS or InChIKey); {hint}. "
                "Names follow DoOR's chemical metadata, e.g. 'ethyl acetate' or '141-78-6'."
            )
        if len(rows) > 1:
            alts = [f"{self.door.cas[i] or self.door.inchikey[i]}" for i in rows]
            raise ValueError(
                f"odor name {odor!r} is ambiguous in DoOR ({len(rows)} stereoisomers); "
                f"name it by CAS or InChIKey: {alts}"
            )
        return rows[0]

    def response_matrix(self, odors: Sequence[str]) -> np.ndarray:
        """(n_odors, n_glom) DoOR response minus spontaneous, in [-1, 1], missing -> policy."""
        if isinstance(odors, str):
            raise TypeError(f"odors must be a sequence of names, got the string {odors!r}")
        rows = [self.odor_index(o) for o in odors]
        delta = self._delta[rows]
        missing = np.isnan(delta)
        missing[:, [g in self.glomeruli_without_receptor for g in self.glomeruli]] = False
        if missing.any() and self.config.missing == "error":
            pairs = [
                (odors[i], self.glomeruli[j]) for i, j in zip(*np.nonzero(missing), strict=True)
            ]
            raise ValueError(
                f"DoOR has no measurement for {len(pairs)} (odor, glomerulus) pairs, e.g. "
                f"{pairs[:6]}; use OrnConfig(missing='zero') to treat them as no response"
            )
        return np.nan_to_num(delta, nan=0.0)

    # ------------------------------------------------------------------ rates
    def activation(self, odors: Sequence[str], concentration: np.ndarray) -> np.ndarray:
        """Concentration (..., n_odors) -> ORN rates in Hz (..., n_glom)."""
        c = np.asarray(concentration, dtype=np.float64)
        if c.shape[-1:] != (len(odors),):
            raise ValueError(
                f"concentration has shape {c.shape}; its last axis must have one entry per odor "
                f"({len(odors)})"
            )
        if not np.all(np.isfinite(c)) or np.any(c < 0):
            raise ValueError("concentration must be finite and >= 0")
        return self.rates(c @ self.response_matrix(odors), self.config)

    @staticmethod
    def rates(drive: np.ndarray, config: OrnConfig) -> np.ndarray:
        """Drive (any shape) -> rates in Hz (module docstring, step 5)."""
        s, k = config.spontaneous_rate_hz, config.half_saturation
        gain = np.where(drive >= 0, config.max_rate_hz - s, s)
        return s + gain * drive / (np.abs(drive) + k)

    @staticmethod
    def rates_torch(drive: torch.Tensor, config: OrnConfig) -> torch.Tensor:
        """Differentiable ``rates``."""
        import torch

        s, k = config.spontaneous_rate_hz, config.half_saturation
        gain = torch.where(
            drive >= 0, torch.full_like(drive, config.max_rate_hz - s), torch.full_like(drive, s)
        )
        return s + gain * drive / (drive.abs() + k)

    @staticmethod
    def activation_torch(
        response: torch.Tensor, concentration: torch.Tensor, config: OrnConfig
    ) -> torch.Tensor:
        """``activation`` on tensors: response (n_odors, n_glom) from ``response_matrix``,
        concentration (..., n_odors) -> rates in Hz (..., n_glom); differentiable."""
        return OrnFrontEnd.rates_torch(concentration @ response, config)


def _odor_index_table(d: DoorData) -> dict[str, list[int]]:
    table: dict[str, list[int]] = {}
    for i, keys in enumerate(zip(d.odor_names, d.cas, d.inchikey, strict=True)):
        for k in {k.strip().lower() for k in keys if k}:
            table.setdefault(k, []).append(i)
    return table
