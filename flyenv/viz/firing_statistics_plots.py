"""Figures of a firing-statistics training run (the set of the original firing-statistics
fitting, docs/research_systems.md), one PNG each (Agg).

``save_epoch_figures(folder, net, record, targets)`` writes: assembly graph and
connectivity matrix, input raster and feedforward connectivity, output raster, firing
rate distribution, membrane voltages, Fano factors, CV and ISI histograms.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def _raster(ax, spikes: np.ndarray, dt_ms: float, split: int | None = None) -> None:
    t, i = np.nonzero(spikes)
    ax.scatter(t * dt_ms, i, s=3.0, c=np.where(i < (split or 0), "tab:red", "tab:blue"), lw=0)
    ax.set_xlabel("time (ms)")
    ax.set_ylabel("neuron")


def _isis(spikes: np.ndarray, dt_ms: float) -> np.ndarray:
    out = []
    for col in spikes.T:
        idx = np.flatnonzero(col)
        if idx.size > 1:
            out.append(np.diff(idx) * dt_ms)
    return np.concatenate(out) if out else np.zeros(0)


def save_epoch_figures(folder: Path, net, record, targets) -> list[Path]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    is_exc = net.is_exc.numpy()
    n_e, dt = net.n_exc, net.dt_ms
    w, w_in = (x.numpy() for x in net.dense_weights())
    assembly = net.wiring.assembly
    paths = []

    # network structure: assembly-level weight graph and the (assembly-sorted) matrix
    order = np.lexsort((~is_exc, assembly))
    n_a = int(assembly.max()) + 1
    a_mat = np.zeros((n_a, n_a))
    np.add.at(a_mat, (assembly[:, None].repeat(net.n, 1), assembly[None, :].repeat(net.n, 0)), w)
    fig, ax = plt.subplots(figsize=(5, 5))
    ang = np.linspace(0, 2 * np.pi, n_a, endpoint=False)
    xy = np.stack([np.cos(ang), np.sin(ang)], 1)
    off = a_mat[~np.eye(n_a, dtype=bool)]
    for i in range(n_a):
        for j in range(n_a):
            if i != j and off.max() > 0:
                ax.plot(*xy[[i, j]].T, c="0.5", lw=2 * a_mat[i, j] / off.max(), alpha=0.4)
    ax.scatter(*xy.T, s=300 * np.diag(a_mat) / max(np.diag(a_mat).max(), 1e-9) + 20, c="tab:red")
    ax.set_title("assemblies (node: within, edge: between weight)")
    ax.axis("off")
    paths.append(_save(fig, folder / "assembly_graph.png"))
    fig, ax = plt.subplots(figsize=(5, 4.5))
    im = ax.imshow(w[np.ix_(order, order)], cmap="viridis", interpolation="nearest")
    fig.colorbar(im, ax=ax, label="weight (x g_bar)")
    ax.set_title("recurrent weights (pre x post, by assembly)")
    paths.append(_save(fig, folder / "connectivity_matrix.png"))

    # input
    fig, axs = plt.subplots(1, 2, figsize=(10, 4))
    _raster(axs[0], record.input_spikes, dt)
    axs[0].set_title("mitral-cell input spikes (trial 0, last chunk)")
    axs[1].imshow(w_in[:, order], aspect="auto", cmap="viridis", interpolation="nearest")
    axs[1].set_title("feedforward weights (input x neuron)")
    paths.append(_save(fig, folder / "input_analysis.png"))

    # output raster (teacher beside when there is one)
    cols = 2 if record.teacher_spikes is not None else 1
    fig, axs = plt.subplots(1, cols, figsize=(6 * cols, 4), squeeze=False)
    _raster(axs[0, 0], record.spikes, dt, n_e)
    axs[0, 0].set_title("network spikes (E red, I blue)")
    if cols == 2:
        _raster(axs[0, 1], record.teacher_spikes, dt, n_e)
        axs[0, 1].set_title("teacher spikes")
    paths.append(_save(fig, folder / "output_raster.png"))

    # rates
    fig, ax = plt.subplots(figsize=(6, 4))
    r = record.rates_hz
    bins = np.linspace(0, max(r.max(), 1e-3), 40)
    ax.hist(r[is_exc], bins, alpha=0.6, label="E", color="tab:red")
    ax.hist(r[~is_exc], bins, alpha=0.6, label="I", color="tab:blue")
    ax.axvline(targets.rate_e_hz, c="tab:red", ls="--")
    ax.axvline(targets.rate_i_hz, c="tab:blue", ls="--")
    ax.set_xlabel("rate (Hz)")
    ax.legend()
    paths.append(_save(fig, folder / "firing_rate_distribution.png"))

    # voltages
    fig, ax = plt.subplots(figsize=(8, 4))
    t = np.arange(record.v.shape[0]) * dt
    for i in [0, 1, 2, n_e, n_e + 1]:
        ax.plot(t, record.v[:, i], lw=0.8, label=f"{'E' if i < n_e else 'I'} {i}")
    ax.set_xlabel("time (ms)")
    ax.set_ylabel("V (mV)")
    ax.legend(fontsize=7)
    paths.append(_save(fig, folder / "membrane_voltages.png"))

    # Fano factor of epoch spike counts across trials
    c = record.counts
    mean = c.mean(1)
    fano = np.where(mean > 0, c.var(1) / np.maximum(mean, 1e-12), np.nan)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.hist(fano[np.isfinite(fano)], 40, color="0.4")
    ax.set_xlabel("Fano factor of epoch spike counts (across trials)")
    paths.append(_save(fig, folder / "fano_factor.png"))

    # CV and ISI
    fig, axs = plt.subplots(1, 2, figsize=(10, 4))
    ok = record.n_isi >= targets.min_isis
    axs[0].hist(record.cv[ok & is_exc], 30, alpha=0.6, color="tab:red", label="E")
    axs[0].hist(record.cv[ok & ~is_exc], 30, alpha=0.6, color="tab:blue", label="I")
    axs[0].axvline(targets.cv, c="k", ls="--")
    axs[0].set_xlabel("CV of ISIs")
    axs[0].legend()
    isi = _isis(record.spikes, dt)
    axs[1].hist(isi, 40, color="0.4")
    axs[1].set_xlabel("ISI (ms), trial 0, last chunk")
    paths.append(_save(fig, folder / "cv_isi_histograms.png"))
    return paths
