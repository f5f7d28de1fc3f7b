"""Figures of whole-brain activity fitting (the five evaluation plots of the original
whole-brain activity fitting, docs/research_systems.md; 150 dpi)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

DPI = 150


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return path


def training_barplot(
    path: Path, simulated: np.ndarray, target: np.ndarray, neuropils, n_rows: int = 4
) -> Path:
    """Simulated vs true neuropil rates for the first frames of a batch."""
    n_rows = min(n_rows, len(simulated))
    fig, axes = plt.subplots(n_rows, 2, figsize=(12, 1.8 * n_rows + 0.6), squeeze=False)
    x = np.arange(len(neuropils))
    for i in range(n_rows):
        for j, (arr, title) in enumerate(((simulated, "Simulated FR"), (target, "True FR"))):
            ax = axes[i, j]
            ax.bar(x, arr[i], color="tab:blue" if j == 0 else "tab:orange")
            ax.set_title(title, fontsize=8)
            ax.set_ylabel("Hz", fontsize=7)
            ax.set_xticks(x if i == n_rows - 1 else [])
            if i == n_rows - 1:
                ax.set_xticklabels(neuropils, rotation=90, fontsize=5)
    fig.tight_layout()
    return _save(fig, path)


def evaluation_plots(
    out_dir: Path, pred: np.ndarray, true: np.ndarray, neuropils, frames: np.ndarray
) -> list[Path]:
    """The original's evaluation figures for aligned (frames, P) predictions and truth."""
    out_dir = Path(out_dir)
    names = list(neuropils)
    paths = []
    vmax = float(max(pred.max(), true.max(), 1e-6))
    # 1. heatmaps
    fig, axes = plt.subplots(1, 2, figsize=(14, 5), sharey=True)
    for ax, arr, title in ((axes[0], true, "Ground truth"), (axes[1], pred, "Simulated")):
        im = ax.imshow(
            arr.T,
            aspect="auto",
            vmin=0,
            vmax=vmax,
            cmap="viridis",
            extent=(frames[0], frames[-1] + 1, len(names), 0),
        )
        ax.set_title(title)
        ax.set_xlabel("frame")
    axes[0].set_yticks(np.arange(len(names)) + 0.5)
    axes[0].set_yticklabels(names, fontsize=5)
    fig.colorbar(im, ax=axes, label="firing rate (Hz)")
    paths.append(_save(fig, out_dir / "heatmap_comparison.png"))
    # 2. time series of the 6 highest-variance neuropils
    top = np.argsort(true.var(0))[::-1][:6]
    fig, axes = plt.subplots(len(top), 1, figsize=(10, 1.8 * len(top)), sharex=True, squeeze=False)
    for ax, k in zip(axes[:, 0], top, strict=True):
        ax.plot(frames, true[:, k], label="ground truth", color="k")
        ax.plot(frames, pred[:, k], label="predicted", color="tab:red")
        ax.set_ylabel(f"{names[k]}\n(Hz)", fontsize=8)
    axes[0, 0].legend(fontsize=8, loc="upper right")
    axes[-1, 0].set_xlabel("frame")
    paths.append(_save(fig, out_dir / "time_series_comparison.png"))
    # 3. correlation scatter
    r = (
        np.corrcoef(pred.ravel(), true.ravel())[0, 1]
        if pred.std() > 0 and true.std() > 0
        else np.nan
    )
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(true.ravel(), pred.ravel(), s=3, alpha=0.3)
    ax.plot([0, vmax], [0, vmax], "k--", lw=1)
    ax.set_xlabel("true rate (Hz)")
    ax.set_ylabel("predicted rate (Hz)")
    ax.set_title(f"Pearson r = {r:.3f}")
    paths.append(_save(fig, out_dir / "correlation_scatter.png"))
    # 4. bar plots at 25, 50, 75 % of the test period
    x = np.arange(len(names))
    for frac in (25, 50, 75):
        i = min(len(frames) - 1, int(frac / 100 * len(frames)))
        fig, ax = plt.subplots(figsize=(12, 3.5))
        ax.bar(x - 0.2, true[i], 0.4, label="ground truth")
        ax.bar(x + 0.2, pred[i], 0.4, label="predicted")
        ax.set_xticks(x)
        ax.set_xticklabels(names, rotation=90, fontsize=6)
        ax.set_ylabel("Hz")
        ax.set_title(f"frame {frames[i]} ({frac}% of the test period)")
        ax.legend(fontsize=8)
        paths.append(_save(fig, out_dir / f"barplot_comparison_t{frac}.png"))
    # 5. error analysis
    err = np.abs(pred - true)
    rel = (pred - true) / np.maximum(np.abs(true), 1e-3)
    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    im = axes[0, 0].imshow(
        err.T, aspect="auto", cmap="magma", extent=(frames[0], frames[-1] + 1, len(names), 0)
    )
    fig.colorbar(im, ax=axes[0, 0], label="|error| (Hz)")
    axes[0, 0].set_title("absolute error")
    axes[0, 0].set_xlabel("frame")
    axes[0, 1].hist(np.clip(rel.ravel(), -5, 5), bins=60)
    axes[0, 1].set_title("relative error distribution (clipped to +-5)")
    axes[1, 0].bar(x, err.mean(0))
    axes[1, 0].set_xticks(x)
    axes[1, 0].set_xticklabels(names, rotation=90, fontsize=5)
    axes[1, 0].set_title("mean |error| per neuropil (Hz)")
    axes[1, 1].plot(frames, err.mean(1))
    axes[1, 1].set_title("mean |error| over time (Hz)")
    axes[1, 1].set_xlabel("frame")
    fig.tight_layout()
    paths.append(_save(fig, out_dir / "error_analysis.png"))
    return paths
