"""Figures of a lateral-line STDP run (file names follow the original Brian2 script).

Every function takes the result dict of ``agents/lateral_line_stdp.run_seed`` and a
path; files are written atomically (``flyenv.io.atomic_write``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from flyenv.io import atomic_write  # noqa: E402

N_X_BINS = 50


def _save(fig: plt.Figure, path: Path) -> Path:
    try:
        return atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    finally:
        plt.close(fig)


def _smooth(counts: np.ndarray, dt_s: float, width_s: float = 0.02) -> np.ndarray:
    """Population rate (Hz per cell summed) with a centered box of ``width_s``."""
    w = max(1, int(round(width_s / dt_s)))
    return np.convolve(counts / dt_s, np.ones(w) / w, mode="same")


def _tail_and_test(r: dict[str, Any]) -> dict[str, Any]:
    """Concatenate the kept training tail with the test (time in s, test starts at 0)."""
    p = r["params"]
    dt = p.dt_s
    parts = [rec for rec, _ in r["tail"]] + [r["test_rec"]]
    xs = [ch["x_cm"] for _, ch in r["tail"]] + [r["test"]["x_cm"]]
    n_tail = sum(rec.n_steps for rec, _ in r["tail"])
    out: dict[str, Any] = {"t0_s": -n_tail * dt, "x_cm": np.concatenate(xs)}
    off = 0
    for layer in ("ll", "mon", "ts"):
        out[layer + "_t"], out[layer + "_i"] = [], []
    out["mon_count"], out["ts_count"] = [], []
    for rec in parts:
        for layer in ("ll", "mon", "ts"):
            out[layer + "_t"].append((getattr(rec, layer + "_t") + off) * dt + out["t0_s"])
            out[layer + "_i"].append(getattr(rec, layer + "_i"))
        out["mon_count"].append(rec.mon_count)
        out["ts_count"].append(rec.ts_count)
        off += rec.n_steps
    for k in list(out):
        if isinstance(out[k], list):
            out[k] = np.concatenate(out[k]) if out[k] else np.zeros(0)
    out["t_s"] = out["t0_s"] + np.arange(out["x_cm"].size) * dt
    return out


def _raster(ax, t, i, n, label, color="k", max_points=60_000):
    if t.size > max_points:  # thin huge rasters for a readable, small PNG
        sel = np.random.default_rng(0).choice(t.size, max_points, replace=False)
        t, i = t[sel], i[sel]
    ax.plot(t, i, ",", color=color, ms=1, rasterized=True)
    ax.set_ylim(-0.5, n - 0.5)
    ax.set_ylabel(label)


def _test_rates_vs_x(r: dict[str, Any], layer: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Firing rate (Hz) of each cell in x bins during the test sweep."""
    p = r["params"]
    x = r["test"]["x_cm"]
    edges = np.linspace(x.min(), x.max() + 1e-9, N_X_BINS + 1)
    b = np.clip(np.digitize(x, edges) - 1, 0, N_X_BINS - 1)
    occ = np.bincount(b, minlength=N_X_BINS) * p.dt_s
    rec = r["test_rec"]
    t, i = getattr(rec, layer + "_t"), getattr(rec, layer + "_i")
    counts = np.zeros((n, N_X_BINS))
    np.add.at(counts, (i, b[t]), 1.0)
    return 0.5 * (edges[:-1] + edges[1:]), counts / np.maximum(occ, 1e-9)


def _training_pv(ax, r):
    ax.plot(
        np.asarray(r["pv_ckpt_t_s"]), r["pv_sigma_theta_series"], "o-", ms=3, label="sigma_theta"
    )
    ax.plot(
        np.asarray(r["pv_ckpt_t_s"]), r["pv_delta_trial_series"], "s-", ms=3, label="delta_trial"
    )
    ax.axhline(np.pi / 2, color="0.6", ls=":", label="chance ~ pi/2")
    ax.set_xlabel("training time (s)")
    ax.set_ylabel("rad")
    ax.legend(fontsize=7)


def save_summary_figure(r: dict[str, Any], path: Path) -> Path:
    p, d = r["params"], _tail_and_test(r)
    fig, ax = plt.subplots(4, 2, figsize=(13, 13))
    test = r["test"]
    tt = np.arange(test["x_cm"].size) * p.dt_s
    im = ax[0, 0].imshow(
        test["rates_hz"].T,
        aspect="auto",
        origin="lower",
        extent=[tt[0], tt[-1], 0, p.ll_body_length_cm],
        vmin=0,
        vmax=200,
    )
    ax[0, 0].plot(tt, test["x_cm"], "w-", lw=1.5, label="sphere x")
    ax[0, 0].set_title("test stimulus: LL rates (Hz) and sphere x")
    ax[0, 0].set_ylabel("neuromast x (cm)")
    fig.colorbar(im, ax=ax[0, 0])
    _raster(ax[0, 1], d["ll_t"], d["ll_i"], p.n_ll, "LL")
    ax[0, 1].set_title("LL spikes (last training trials | test from t=0)")
    _raster(ax[1, 0], d["mon_t"], d["mon_i"], p.n_mon, "MON")
    _raster(ax[1, 1], d["ts_t"], d["ts_i"], p.n_ts, "TS", color="tab:red")
    for a in (ax[0, 1], ax[1, 0], ax[1, 1]):
        a.axvline(0, color="tab:blue", lw=1)
        a.set_xlabel("time (s)")
        a.set_xlim(d["t_s"][0], d["t_s"][-1])  # also when a layer is silent
    ax[2, 0].plot(d["t_s"], _smooth(d["mon_count"], p.dt_s) / p.n_mon, label="MON")
    ax[2, 0].plot(d["t_s"], _smooth(d["ts_count"], p.dt_s) / p.n_ts, label="TS")
    ax[2, 0].axvline(0, color="tab:blue", lw=1)
    ax[2, 0].set_ylabel("population rate (Hz)")
    ax[2, 0].set_xlabel("time (s)")
    ax[2, 0].legend()
    bins = np.linspace(0, p.mon_ts_wmax * 1.05 + 1e-9, 40)
    ax[2, 1].hist(r["w_before"], bins, alpha=0.6, label="before")
    ax[2, 1].hist(r["w_after"], bins, alpha=0.6, label="after")
    ax[2, 1].set_xlabel("MON->TS weight")
    ax[2, 1].legend()
    t_ck = np.asarray(r["checkpoint_t_s"])
    ax[3, 0].plot(t_ck, r["w_mean_series"], "k-", label="mean")
    ax[3, 0].fill_between(
        t_ck,
        np.asarray(r["w_mean_series"]) - r["w_std_series"],
        np.asarray(r["w_mean_series"]) + r["w_std_series"],
        color="0.8",
        label="+-std",
    )
    ax[3, 0].plot(t_ck, np.asarray(r["tracked_weight_series"]), lw=0.5, alpha=0.6)
    stab = r.get("stabilization_time_s")
    if stab is not None:
        ax[3, 0].axvline(stab, color="tab:green", ls="--", label="stabilised")
    ax[3, 0].set_xlabel("training time (s)")
    ax[3, 0].set_ylabel("MON->TS weight")
    ax[3, 0].legend(fontsize=7)
    _training_pv(ax[3, 1], r)
    fig.suptitle(
        f"LL->MON->TS STDP, seed {p.seed}, {p.n_training_trials} trials: sigma_theta="
        f"{r['pv_sigma_theta']:.3f} rad, delta_trial={r['pv_delta_trial']:.3f} rad, "
        f"valid={r['pv_valid_fraction']:.3f}"
    )
    fig.tight_layout()
    return _save(fig, path)


def save_test_phase_only_figure(r: dict[str, Any], path: Path) -> Path:
    p, rec, test = r["params"], r["test_rec"], r["test"]
    tt = np.arange(test["x_cm"].size) * p.dt_s
    fig, ax = plt.subplots(5, 1, figsize=(9, 12), sharex=True)
    ax[0].plot(tt, test["x_cm"])
    ax[0].set_ylabel("sphere x (cm)")
    _raster(ax[1], rec.ll_t * p.dt_s, rec.ll_i, p.n_ll, "LL")
    _raster(ax[2], rec.mon_t * p.dt_s, rec.mon_i, p.n_mon, "MON")
    _raster(ax[3], rec.ts_t * p.dt_s, rec.ts_i, p.n_ts, "TS", color="tab:red")
    ax[4].plot(tt, _smooth(rec.mon_count, p.dt_s) / p.n_mon, label="MON")
    ax[4].plot(tt, _smooth(rec.ts_count, p.dt_s) / p.n_ts, label="TS")
    ax[4].set_ylabel("pop. rate (Hz, 20 ms)")
    ax[4].set_xlabel("test time (s)")
    ax[4].set_xlim(tt[0], tt[-1])
    ax[4].legend()
    fig.suptitle("test phase (STDP frozen)")
    fig.tight_layout()
    return _save(fig, path)


def save_learning_curves_figure(r: dict[str, Any], path: Path) -> Path:
    fig, ax = plt.subplots(1, 3, figsize=(14, 4))
    t = np.asarray(r["checkpoint_t_s"])
    ax[0].plot(t, r["w_mean_series"], label="mean w")
    ax[0].plot(t, r["w_std_series"], label="std w")
    ax[0].set_xlabel("training time (s)")
    ax[0].legend()
    ax[1].plot(t, r["w_mean_abs_delta_series"], label="mean |w - w0|")
    ax[1].plot(t, r["w_frac_delta_gt_1e3_series"], label="frac |dw| > 1e-3")
    ax[1].set_xlabel("training time (s)")
    ax[1].legend()
    _training_pv(ax[2], r)
    ax[2].set_title("PV on the training stream")
    fig.tight_layout()
    return _save(fig, path)


def save_ll_mon_weights_figure(r: dict[str, Any], path: Path, n_examples: int = 6) -> Path:
    p, net = r["params"], r["net"]
    mons = np.linspace(0, p.n_mon - 1, n_examples).astype(int)
    fig, ax = plt.subplots(n_examples, 1, figsize=(7, 1.6 * n_examples), sharex=True)
    for a, m in zip(np.atleast_1d(ax), mons, strict=True):
        sel = net.conn.ll_mon_j == m
        a.stem(net.conn.ll_mon_i[sel], r["ll_mon_w_mV"][sel])
        a.set_ylabel(f"MON {m}\n(mV)")
    np.atleast_1d(ax)[-1].set_xlabel("LL index")
    np.atleast_1d(ax)[-1].set_xlim(-1, p.n_ll)
    fig.suptitle("LL->MON weights of example MON cells")
    fig.tight_layout()
    return _save(fig, path)


def _tuning_figure(r: dict[str, Any], path: Path, layer: str, n_examples: int, title: str) -> Path:
    """Test-sweep rate vs sphere position of ``n_examples`` evenly spaced cells of a layer."""
    n = getattr(r["params"], f"n_{layer}")
    xc, rates = _test_rates_vs_x(r, layer, n)
    fig, ax = plt.subplots(figsize=(9, 5))
    for j in np.linspace(0, n - 1, n_examples).astype(int):
        ax.plot(xc, rates[j], label=f"{layer.upper()} {j}")
    ax.set_xlabel("sphere x (cm)")
    ax.set_ylabel("rate (Hz)")
    ax.legend(fontsize=6, ncol=2)
    ax.set_title(title)
    fig.tight_layout()
    return _save(fig, path)


def save_ts_tuning_figure(r: dict[str, Any], path: Path, n_examples: int = 12) -> Path:
    return _tuning_figure(r, path, "ts", n_examples, "TS tuning during the test sweep")


def save_mon_tuning_examples_figure(r: dict[str, Any], path: Path, n_examples: int = 12) -> Path:
    return _tuning_figure(r, path, "mon", n_examples, "MON tuning examples during the test sweep")


def _w_dense(r: dict[str, Any]) -> np.ndarray:
    return r["net"].mon_ts_dense()


def save_mon_to_ts_weight_profile(r: dict[str, Any], path: Path) -> Path:
    p, net = r["params"], r["net"]
    j, w = net.conn.mon_ts_j, r["w_after"]
    cnt = np.maximum(np.bincount(j, minlength=p.n_ts), 1)
    mean_w = np.bincount(j, weights=w, minlength=p.n_ts) / cnt
    at_max = np.bincount(j, weights=np.isclose(w, p.mon_ts_wmax), minlength=p.n_ts) / cnt
    fig, ax = plt.subplots(figsize=(9, 4))
    ax.plot(mean_w, "k-", label="mean incoming w")
    ax.set_xlabel("TS index")
    ax.set_ylabel("mean MON->TS weight")
    ax2 = ax.twinx()
    ax2.plot(at_max, color="tab:red", alpha=0.7)
    ax2.set_ylabel("fraction at w_max", color="tab:red")
    fig.tight_layout()
    return _save(fig, path)


def save_topography_figure(r: dict[str, Any], path: Path) -> Path:
    """MON->TS map before and after training: each TS cell's input centre (the place on
    the line its inputs come from, as a fraction of the line) against its index, and the
    weight-vs-ring-distance profile (flyenv.metrics.topography)."""
    from flyenv.metrics.topography import topography_index

    p, net = r["params"], r["net"]
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for w_syn, label, color in ((r["w_before"], "before", "0.6"), (r["w_after"], "after", "k")):
        dense = np.zeros((p.n_mon, p.n_ts))
        np.add.at(dense, (net.conn.mon_ts_i, net.conn.mon_ts_j), np.asarray(w_syn).ravel())
        t = topography_index(dense)
        ax.plot(
            t["centre_rad"] / (2 * np.pi),
            ".",
            color=color,
            ms=3,
            label=f"{label}: index {t['index']:.2f}, local order {t['local_order']:.2f}",
        )
        ax2.plot(
            t["profile_distance_cells"], t["profile_mean_weight"], "-", color=color, label=label
        )
    ax.plot([0, p.n_ts], [0, 1], "b:", lw=1, label="map the decoder reads")
    ax.set_xlabel("TS index (ring position of the decoder)")
    ax.set_ylabel("input centre (fraction of MON line)")
    ax.legend(fontsize=7, loc="upper left")
    ax2.axhline(1.0, color="b", ls=":", lw=1)
    ax2.set_xlabel("ring distance target - source's place (TS cells)")
    ax2.set_ylabel("mean weight / overall mean")
    ax2.legend(fontsize=8)
    fig.suptitle("MON->TS topography")
    fig.tight_layout()
    return _save(fig, path)


def save_mon_to_ts_receptive_fields_figure(
    r: dict[str, Any], path: Path, n_examples: int = 6
) -> Path:
    p = r["params"]
    w = _w_dense(r)
    fig, ax = plt.subplots(n_examples, 1, figsize=(9, 1.6 * n_examples), sharex=True)
    for a, j in zip(
        np.atleast_1d(ax), np.linspace(0, p.n_ts - 1, n_examples).astype(int), strict=True
    ):
        nz = np.flatnonzero(w[:, j])
        a.plot(nz, w[nz, j], ".", ms=3)
        a.set_ylabel(f"TS {j}")
    np.atleast_1d(ax)[-1].set_xlabel("MON index")
    fig.suptitle("incoming MON->TS weights (receptive fields)")
    fig.tight_layout()
    return _save(fig, path)


def _spikes_vs_x(r: dict[str, Any], layer: str, n: int, path: Path) -> Path:
    rec, x = r["test_rec"], r["test"]["x_cm"]
    t, i = getattr(rec, layer + "_t"), getattr(rec, layer + "_i")
    fig, ax = plt.subplots(figsize=(7, 6))
    ax.plot(x[t], i, ".", ms=1.5, alpha=0.6, rasterized=True)
    ax.set_xlabel("sphere x (cm)")
    ax.set_ylabel(f"{layer.upper()} index")
    ax.set_ylim(-0.5, n - 0.5)
    ax.set_title(f"{layer.upper()} spikes vs stimulus x (test)")
    fig.tight_layout()
    return _save(fig, path)


def save_mon_ts_feedforward_drive_figures(
    r: dict[str, Any], heatmap_path: Path, winner_path: Path
) -> None:
    p = r["params"]
    xc, mon_rates = _test_rates_vs_x(r, "mon", p.n_mon)
    drive = mon_rates.T @ _w_dense(r) * p.mon_ts_gain_mV  # (x bins, TS)
    fig, ax = plt.subplots(figsize=(8, 5))
    im = ax.imshow(drive.T, aspect="auto", origin="lower", extent=[xc[0], xc[-1], 0, p.n_ts])
    fig.colorbar(im, ax=ax, label="sum rate * w * gain (mV/s)")
    ax.set_xlabel("sphere x (cm)")
    ax.set_ylabel("TS index")
    ax.set_title("MON->TS feed-forward drive (test)")
    fig.tight_layout()
    _save(fig, heatmap_path)
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(xc, drive.argmax(axis=1), "o-", ms=3)
    ax.set_xlabel("sphere x (cm)")
    ax.set_ylabel("argmax TS drive")
    ax.set_ylim(0, p.n_ts)
    ax.set_title("winner-take-all TS index vs x")
    fig.tight_layout()
    _save(fig, winner_path)


def save_ts_pop_rate_train_test_transition_figure(r: dict[str, Any], path: Path) -> Path:
    p, d = r["params"], _tail_and_test(r)
    fig, ax = plt.subplots(figsize=(9, 3.5))
    ax.plot(d["t_s"], _smooth(d["ts_count"], p.dt_s) / p.n_ts, color="tab:red")
    ax.axvline(0, color="k", ls="--", label="train -> test")
    ax.set_xlabel("time (s), test starts at 0")
    ax.set_ylabel("TS pop. rate (Hz, 20 ms)")
    ax.legend()
    fig.tight_layout()
    return _save(fig, path)


def save_all_run_figures(r: dict[str, Any], figures_dir: Path, suffix: str) -> dict[str, Path]:
    """Every per-run figure, named ``brian2_<kind>_<suffix>.png`` as the original."""
    f = Path(figures_dir)
    paths = {
        "summary": f / f"brian2_spatial_two_stage_{suffix}.png",
        "test_only": f / f"brian2_test_phase_only_{suffix}.png",
        "learning_curves": f / f"brian2_learning_curves_{suffix}.png",
        "llmon": f / f"brian2_llmon_weights_{suffix}.png",
        "ts_tuning": f / f"brian2_ts_tuning_{suffix}.png",
        "profile": f / f"brian2_mon_ts_weight_profile_{suffix}.png",
        "rf": f / f"brian2_mon_to_ts_receptive_fields_{suffix}.png",
        "topography": f / f"mon_ts_topography_{suffix}.png",
        "ts_vs_x": f / f"brian2_ts_spikes_vs_x_test_{suffix}.png",
        "mon_vs_x": f / f"brian2_mon_spikes_vs_x_test_{suffix}.png",
        "ll_vs_x": f / f"brian2_ll_spikes_vs_x_test_{suffix}.png",
        "mon_tuning": f / f"brian2_mon_tuning_examples_{suffix}.png",
        "drive_heatmap": f / f"brian2_mon_ts_drive_heatmap_{suffix}.png",
        "drive_winner": f / f"brian2_mon_ts_drive_winner_{suffix}.png",
        "transition": f / f"brian2_ts_pop_rate_train_test_transition_{suffix}.png",
    }
    p = r["params"]
    save_summary_figure(r, paths["summary"])
    save_test_phase_only_figure(r, paths["test_only"])
    save_learning_curves_figure(r, paths["learning_curves"])
    save_ll_mon_weights_figure(r, paths["llmon"])
    save_ts_tuning_figure(r, paths["ts_tuning"])
    save_mon_to_ts_weight_profile(r, paths["profile"])
    save_mon_to_ts_receptive_fields_figure(r, paths["rf"])
    save_topography_figure(r, paths["topography"])
    _spikes_vs_x(r, "ts", p.n_ts, paths["ts_vs_x"])
    _spikes_vs_x(r, "mon", p.n_mon, paths["mon_vs_x"])
    _spikes_vs_x(r, "ll", p.n_ll, paths["ll_vs_x"])
    save_mon_tuning_examples_figure(r, paths["mon_tuning"])
    save_mon_ts_feedforward_drive_figures(r, paths["drive_heatmap"], paths["drive_winner"])
    save_ts_pop_rate_train_test_transition_figure(r, paths["transition"])
    return paths


def save_multiseed_summary(results: list[dict[str, Any]], path: Path) -> Path:
    seeds = [r["params"].seed for r in results]
    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    ax[0].plot(seeds, [r["pv_sigma_theta"] for r in results], "o-", label="sigma_theta")
    ax[0].plot(seeds, [r["pv_delta_trial"] for r in results], "s-", label="delta_trial")
    ax[0].axhline(np.pi / 2, color="0.6", ls=":", label="chance")
    ax[0].set_xlabel("seed")
    ax[0].set_ylabel("rad")
    ax[0].legend()
    ax[1].bar([str(s) for s in seeds], [r["pv_valid_fraction"] for r in results])
    ax[1].set_ylim(0, 1)
    ax[1].set_ylabel("valid fraction")
    fig.suptitle(f"PV map quality over {len(results)} seeds")
    fig.tight_layout()
    return _save(fig, path)


def save_learned_vs_control(
    learned: list[dict[str, Any]],
    control: list[dict[str, Any]] | dict[str, list[dict[str, Any]]],
    path: Path,
) -> Path:
    """Bars per seed for STDP and one or more controls (a list, or {label: list})."""
    controls = {"no STDP (control)": control} if isinstance(control, list) else dict(control)
    keys = [
        ("pv_sigma_theta", "sigma_theta (rad)"),
        ("pv_delta_trial", "delta_trial (rad)"),
        ("pv_valid_fraction", "valid fraction"),
    ]
    fig, ax = plt.subplots(1, 4, figsize=(17, 4))
    x = np.arange(len(learned))
    groups = {"STDP": learned, **controls}
    width = 0.8 / len(groups)
    for a, (k, label) in zip(ax[:3], keys, strict=True):
        for g, (lab, runs) in enumerate(groups.items()):
            a.bar(x - 0.4 + width * (g + 0.5), [r[k] for r in runs], width, label=lab)
        a.set_xticks(x, [str(r["params"].seed) for r in learned])
        a.set_xlabel("seed")
        a.set_ylabel(label)
    ax[0].axhline(0.6, color="tab:green", ls="--", label="target 0.6")
    ax[0].axhline(np.pi / 2, color="0.6", ls=":", label="chance")
    ax[0].legend(fontsize=7)
    for (lab, runs), c in zip(
        groups.items(), ("tab:blue", "tab:orange", "tab:green"), strict=False
    ):
        q = runs[0]["pv"]
        ok = np.isfinite(q.theta_hat)
        ax[3].plot(q.theta_true[ok], q.theta_hat[ok], ",", color=c, label=lab)
    ax[3].plot([0, 2 * np.pi], [0, 2 * np.pi], "k--", lw=0.8)
    ax[3].set_xlabel("true angle (rad)")
    ax[3].set_ylabel("decoded angle (rad)")
    ax[3].legend()
    ax[3].set_title(f"seed {learned[0]['params'].seed}")
    fig.suptitle(f"learned map vs controls, {learned[0]['params'].n_training_trials} trials")
    fig.tight_layout()
    return _save(fig, path)
