"""Readers (and writers) of the FlyWire whole-brain tables used by whole-brain activity fitting.

File formats (those of Shiu et al. 2024's brain model files and of the preprocessed
connection table of the original whole-brain activity fitting, docs/research_systems.md).
``{v}`` is the FlyWire version, 630 or 783:

| file                               | columns used                                              |
| ---------------------------------- | --------------------------------------------------------- |
| ``Completeness_{v}.csv``           | first column: neuron root id (row order = neuron index)    |
| ``Connectivity_{v}.parquet``       | ``Presynaptic_Index``, ``Postsynaptic_Index``,             |
|                                    | ``Excitatory x Connectivity`` (signed synapse count)       |
| ``{v}_connections_processed.csv``  | ``pre_index``, ``post_index``, ``neuropil``, ``syn_count`` |

Extra columns are ignored. The 630 files are also accepted under Shiu et al.'s names
``Completeness_630_final.csv`` / ``Connectivity_630_final.parquet``. CSVs are read with
pyarrow's multithreaded reader (the 783 connection table has ~16.8M rows).

The real tables cannot be downloaded here: a user points ``--data-dir`` at a folder
holding them; :mod:`flyenv.connectome.synthetic_whole_brain` writes a synthetic brain in
the same formats.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

FLYWIRE_VERSIONS = ("630", "783")
DATA_SOURCES = (
    "FlyWire tables: https://codex.flywire.ai/ (Completeness/Connectivity files of Shiu et al. "
    "2024, https://github.com/philshiu/Drosophila_brain_model); per-neuropil connection table "
    "and recordings: the original whole-brain fitting's data bundle (https://drive.google.com/file/d/"
    "1TPuHJ-IC1yQtL5TMngAjGJa_JAMdusnu) and https://doi.org/10.6084/m9.figshare.13349282 "
    "(Mann/Turner whole-brain calcium imaging). Or generate a synthetic brain in these "
    "formats: python -m flyenv.connectome.synthetic_whole_brain --out DIR"
)


class WholeBrainDataError(FileNotFoundError):
    """A whole-brain data file is missing or malformed (the message says how to fix it)."""


def check_version(version: str | int) -> str:
    v = str(version)
    if v not in FLYWIRE_VERSIONS:
        raise ValueError(f"flywire_version must be one of {FLYWIRE_VERSIONS}, got {version!r}")
    return v


def _find(data_dir: Path, names: list[str]) -> Path:
    for name in names:
        if (data_dir / name).exists():
            return data_dir / name
    raise WholeBrainDataError(
        f"{names[0]} not found in {data_dir} (the --data-dir folder). Put the file there. "
        f"Sources: {DATA_SOURCES}"
    )


def completeness_path(data_dir: str | Path, version: str | int) -> Path:
    v = check_version(version)
    names = [f"Completeness_{v}.csv"] + ([f"Completeness_{v}_final.csv"] if v == "630" else [])
    return _find(Path(data_dir), names)


def connectivity_path(data_dir: str | Path, version: str | int) -> Path:
    v = check_version(version)
    names = [f"Connectivity_{v}.parquet"] + (
        [f"Connectivity_{v}_final.parquet"] if v == "630" else []
    )
    return _find(Path(data_dir), names)


def connections_path(data_dir: str | Path, version: str | int) -> Path:
    v = check_version(version)
    return _find(Path(data_dir), [f"{v}_connections_processed.csv"])


def _read_csv(path: Path, columns: list[str]):
    """pyarrow Table with ``columns`` (checked), read with pyarrow's threaded reader."""
    import pyarrow.csv as pacsv

    try:
        table = pacsv.read_csv(path)
    except Exception as exc:  # pyarrow raises ArrowInvalid and friends
        raise WholeBrainDataError(f"{path} is not a readable CSV file ({exc})") from exc
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise WholeBrainDataError(
            f"{path} lacks column(s) {missing}; it has {table.column_names}. Expected the "
            f"FlyWire format ({', '.join(columns)})."
        )
    return table


def read_completeness(data_dir: str | Path, version: str | int = "630") -> np.ndarray:
    """Root ids of all neurons (int64); the row order defines the neuron index."""
    import pyarrow.csv as pacsv

    path = completeness_path(data_dir, version)
    try:
        table = pacsv.read_csv(path)
    except Exception as exc:
        raise WholeBrainDataError(f"{path} is not a readable CSV file ({exc})") from exc
    if table.num_columns < 1 or table.num_rows < 1:
        raise WholeBrainDataError(f"{path} has no neuron rows")
    return np.asarray(table.column(0).to_numpy(), dtype=np.int64)


def read_connectivity(
    data_dir: str | Path, version: str | int = "630", n_neurons: int | None = None
) -> sp.csr_matrix:
    """(n_pre, n_post) CSR matrix of signed synapse counts (``Excitatory x Connectivity``)."""
    import pyarrow.parquet as pq

    path = connectivity_path(data_dir, version)
    cols = ["Presynaptic_Index", "Postsynaptic_Index", "Excitatory x Connectivity"]
    try:
        table = pq.read_table(path, columns=cols)
    except Exception as exc:
        raise WholeBrainDataError(
            f"{path} is not a parquet file with columns {cols} ({exc})"
        ) from exc
    pre = table.column(cols[0]).to_numpy().astype(np.int64)
    post = table.column(cols[1]).to_numpy().astype(np.int64)
    w = table.column(cols[2]).to_numpy().astype(np.float32)
    n = int(max(pre.max(initial=-1), post.max(initial=-1)) + 1) if n_neurons is None else n_neurons
    if pre.size and (pre.min() < 0 or post.min() < 0 or pre.max() >= n or post.max() >= n):
        raise WholeBrainDataError(
            f"{path}: neuron indices outside 0..{n - 1} (the Completeness table has {n} rows)"
        )
    return sp.csr_matrix((w, (pre, post)), shape=(n, n))


@dataclass(frozen=True)
class NeuropilConnections:
    """Per-connection neuropil table (``{v}_connections_processed.csv``)."""

    pre_index: np.ndarray
    post_index: np.ndarray
    neuropil_id: np.ndarray  # index into ``neuropils``
    syn_count: np.ndarray
    neuropils: tuple[str, ...]

    def readout_counts(self, n_neurons: int, neuropils: list[str] | tuple[str, ...]) -> np.ndarray:
        """(P, n_neurons) matrix c_iP: synapses neuron i makes (as presynaptic) in
        neuropil P, for the requested neuropils in that order."""
        lookup = {name: k for k, name in enumerate(self.neuropils)}
        missing = [p for p in neuropils if p not in lookup]
        if missing:
            raise WholeBrainDataError(
                f"neuropil(s) {missing} of the recording do not occur in the connection table"
            )
        out = np.zeros((len(neuropils), n_neurons), dtype=np.float64)
        for row, name in enumerate(neuropils):
            sel = self.neuropil_id == lookup[name]
            out[row] = np.bincount(
                self.pre_index[sel], weights=self.syn_count[sel], minlength=n_neurons
            )[:n_neurons]
        return out


def read_neuropil_connections(
    data_dir: str | Path, version: str | int = "630"
) -> NeuropilConnections:
    path = connections_path(data_dir, version)
    table = _read_csv(path, ["pre_index", "post_index", "neuropil", "syn_count"])
    # dictionary-encode the 16.8M neuropil strings instead of sorting them
    enc = table.column("neuropil").cast("string").dictionary_encode().combine_chunks()
    names = np.asarray(enc.dictionary.to_pylist(), dtype=object)
    order = np.argsort(names.astype(str))  # neuropils in sorted order, ids to match
    remap = np.empty(len(order), np.int64)
    remap[order] = np.arange(len(order))
    return NeuropilConnections(
        pre_index=table.column("pre_index").to_numpy().astype(np.int64),
        post_index=table.column("post_index").to_numpy().astype(np.int64),
        neuropil_id=remap[enc.indices.to_numpy()],
        syn_count=table.column("syn_count").to_numpy().astype(np.float64),
        neuropils=tuple(str(n) for n in names[order]),
    )


# --------------------------------------------------------------------------- writers
def write_completeness(path: str | Path, root_ids: np.ndarray) -> None:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    table = pa.table({"": root_ids.astype(np.int64), "Completed": np.ones(len(root_ids), bool)})
    pacsv.write_csv(table, Path(path))


def write_connectivity(
    path: str | Path, root_ids: np.ndarray, pre: np.ndarray, post: np.ndarray, signed: np.ndarray
) -> None:
    """Parquet in Shiu et al.'s column layout (``Excitatory`` = +1 / -1)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    count = np.abs(signed).astype(np.int64)
    table = pa.table(
        {
            "Presynaptic_ID": root_ids[pre],
            "Postsynaptic_ID": root_ids[post],
            "Presynaptic_Index": pre.astype(np.int64),
            "Postsynaptic_Index": post.astype(np.int64),
            "Connectivity": count,
            "Excitatory": np.sign(signed).astype(np.int64),
            "Excitatory x Connectivity": signed.astype(np.int64),
        }
    )
    pq.write_table(table, Path(path))


def write_neuropil_connections(
    path: str | Path,
    pre: np.ndarray,
    post: np.ndarray,
    neuropil_names: np.ndarray,
    syn_count: np.ndarray,
) -> None:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    table = pa.table(
        {
            "pre_index": pre.astype(np.int64),
            "post_index": post.astype(np.int64),
            "neuropil": pa.array(neuropil_names).dictionary_encode().cast(pa.string()),
            "syn_count": syn_count.astype(np.int64),
        }
    )
    pacsv.write_csv(table, Path(path))
