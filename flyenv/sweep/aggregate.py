"""Gather a sweep's cells into one table per sweep: mean and 95 % CI over seeds per row.

The confidence interval is a percentile bootstrap of the mean over seeds (10,000
resamples, fixed generator, so a table is reproducible from its cells). Seeds whose
metric is missing or NaN (e.g. time to source when no start succeeded) are left out of
that metric's mean, and the count used is reported beside it.
"""

from __future__ import annotations

import csv
import io
import json
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from flyenv.io import atomic_write, atomic_write_json

N_BOOTSTRAP = 10_000
CI_LEVEL = 0.95
CI_METHOD = (
    f"percentile bootstrap of the mean over seeds ({N_BOOTSTRAP:,} resamples), "
    f"{int(CI_LEVEL * 100)} % interval"
)


def bootstrap_ci(
    values: np.ndarray | list[float], level: float = CI_LEVEL, n_resamples: int = N_BOOTSTRAP
) -> tuple[float, float, float]:
    """(mean, low, high) of a sample: percentile bootstrap of the mean.

    One value gives (x, x, x); no finite value gives NaNs.
    """
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if x.size == 1:
        return mean, mean, mean
    rng = np.random.default_rng(0)
    idx = rng.integers(0, x.size, size=(n_resamples, x.size))
    means = x[idx].mean(axis=1)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
    return mean, float(lo), float(hi)


def get_dotted(d: dict[str, Any], key: str) -> Any:
    """``d["a"]["b"]`` for ``key = "a.b"``; a literal key with dots wins; None if absent."""
    if key in d:
        return d[key]
    cur: Any = d
    for part in key.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


def _as_float(v: Any) -> float:
    if v is None:
        return math.nan
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def summarize(
    records: list[dict[str, Any]], rows: list[str], metrics: list[str]
) -> list[dict[str, Any]]:
    """One summary dict per row: n_ok, n_failed, and mean/ci_low/ci_high/n per metric."""
    out = []
    for row in rows:
        recs = [r for r in records if r["row"] == row]
        ok = [r for r in recs if r["status"] == "ok"]
        entry: dict[str, Any] = {
            "row": row,
            "n_seeds": len(recs),
            "n_ok": len(ok),
            "n_failed": sum(r["status"] == "failed" for r in recs),
            "n_pending": sum(r["status"] not in ("ok", "failed") for r in recs),
            "metrics": {},
        }
        for m in metrics:
            vals = [_as_float(get_dotted(r.get("metrics") or {}, m)) for r in ok]
            mean, lo, hi = bootstrap_ci(vals)
            entry["metrics"][m] = {
                "mean": mean,
                "ci_low": lo,
                "ci_high": hi,
                "n": int(np.isfinite(np.asarray(vals, dtype=float)).sum()) if vals else 0,
                "values": vals,
            }
        out.append(entry)
    return out


def _fmt(x: float) -> str:
    if not math.isfinite(x):
        return "-"
    a = abs(x)
    if a != 0 and (a < 1e-3 or a >= 1e5):
        return f"{x:.3g}"
    if a >= 100:
        return f"{x:.1f}"
    return f"{x:.3f}"


def markdown_table(summary: list[dict[str, Any]], metrics: list[str]) -> str:
    head = "| config | seeds ok | failed | " + " | ".join(f"{m} (95 % CI)" for m in metrics) + " |"
    sep = "|" + "---|" * (3 + len(metrics))
    lines = [head, sep]
    for e in summary:
        cells = []
        for m in metrics:
            s = e["metrics"][m]
            if s["n"] == 0:
                cells.append("-")
                continue
            n_note = "" if s["n"] == e["n_ok"] else f" (n={s['n']})"
            cells.append(f"{_fmt(s['mean'])} [{_fmt(s['ci_low'])}, {_fmt(s['ci_high'])}]{n_note}")
        failed = str(e["n_failed"]) + (f" (+{e['n_pending']} not run)" if e["n_pending"] else "")
        lines.append(
            f"| {e['row']} | {e['n_ok']}/{e['n_seeds']} | {failed} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines)


def write_reports(
    out_dir: Path,
    spec_name: str,
    records: list[dict[str, Any]],
    rows: list[str],
    metrics: list[str],
    curves: list[str],
    seeds: list[int],
    command: str,
) -> list[dict[str, Any]]:
    """Write summary.{json,csv,md,png}, cells.csv and curves_<key>.png; return the summary."""
    summary = summarize(records, rows, metrics)
    atomic_write_json(
        out_dir / "summary.json",
        {
            "sweep": spec_name,
            "command": command,
            "seeds": seeds,
            "ci_method": CI_METHOD,
            "rows": summary,
        },
    )
    _write_summary_csv(out_dir / "summary.csv", summary, metrics)
    _write_cells_csv(out_dir / "cells.csv", records, metrics)
    md = (
        f"# Sweep `{spec_name}`\n\n"
        f"Command: `{command}`\n\n"
        f"Seeds: {', '.join(map(str, seeds))}. Each cell: mean [95 % CI] over seeds; "
        f"CI: {CI_METHOD}.\n\n" + markdown_table(summary, metrics) + "\n"
    )
    failed = [r for r in records if r["status"] == "failed"]
    if failed:
        md += "\nFailed cells (after one retry):\n\n"
        for r in failed:
            md += f"- {r['row']} seed {r['seed']}: {str(r.get('error', '')).splitlines()[-1:]}\n"
    atomic_write(out_dir / "summary.md", lambda p: p.write_text(md))
    _plot_summary(out_dir / "summary.png", spec_name, summary, metrics)
    for key in curves:
        fname = key.replace(".", "_").replace(":", "_")
        _plot_curves(out_dir / f"curves_{fname}.png", key, records, rows)
    return summary


def _write_summary_csv(path: Path, summary: list[dict[str, Any]], metrics: list[str]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf)
    header = ["config", "n_seeds", "n_ok", "n_failed"]
    for m in metrics:
        header += [f"{m}_mean", f"{m}_ci_low", f"{m}_ci_high", f"{m}_n"]
    w.writerow(header)
    for e in summary:
        line = [e["row"], e["n_seeds"], e["n_ok"], e["n_failed"]]
        for m in metrics:
            s = e["metrics"][m]
            line += [s["mean"], s["ci_low"], s["ci_high"], s["n"]]
        w.writerow(line)
    atomic_write(path, lambda p: p.write_text(buf.getvalue()))


def _write_cells_csv(path: Path, records: list[dict[str, Any]], metrics: list[str]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["config", "seed", "status", "attempts", "wall_s", *metrics, "error"])
    for r in records:
        vals = [get_dotted(r.get("metrics") or {}, m) for m in metrics]
        err = str(r.get("error") or "").strip().splitlines()
        w.writerow(
            [r["row"], r["seed"], r["status"], r.get("attempts"), r.get("wall_s"), *vals]
            + [err[-1] if err else ""]
        )
    atomic_write(path, lambda p: p.write_text(buf.getvalue()))


def _plot_summary(
    path: Path, title: str, summary: list[dict[str, Any]], metrics: list[str]
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(metrics)
    fig, axes = plt.subplots(
        1, n, figsize=(max(4.0, 1.0 + 0.6 * len(summary)) * n, 4.0), squeeze=False
    )
    labels = [e["row"] for e in summary]
    xs = np.arange(len(labels))
    for ax, m in zip(axes[0], metrics, strict=True):
        mean = np.array([e["metrics"][m]["mean"] for e in summary], dtype=float)
        lo = np.array([e["metrics"][m]["ci_low"] for e in summary], dtype=float)
        hi = np.array([e["metrics"][m]["ci_high"] for e in summary], dtype=float)
        err = np.vstack([np.nan_to_num(mean - lo), np.nan_to_num(hi - mean)])
        with warnings.catch_warnings():  # matplotlib 3.11 warns on a (2, 1) yerr (one row)
            warnings.simplefilter("ignore", DeprecationWarning)
            ax.bar(xs, np.nan_to_num(mean), yerr=err, capsize=3, color="#4c72b0")
        for i, e in enumerate(summary):  # individual seeds, so the spread is visible
            v = np.asarray(e["metrics"][m]["values"], dtype=float)
            ax.plot(np.full(v.shape, xs[i]), v, "k.", ms=3, alpha=0.6)
        ax.set_xticks(xs, labels, rotation=45, ha="right", fontsize=8)
        ax.set_title(m, fontsize=9)
    fig.suptitle(f"{title}: mean and 95 % CI over seeds", fontsize=10)
    fig.tight_layout()

    def _save(p: Path) -> None:
        fig.savefig(p, dpi=110, format="png")

    atomic_write(path, _save)
    plt.close(fig)


def _curve_xy(metrics: dict[str, Any], key: str) -> tuple[np.ndarray, np.ndarray] | None:
    """A curve from a result: ``key`` -> ``{"x": [...], "y": [...]}``, or
    ``key:xfield:yfield`` -> a list of row dicts (e.g. ``curve:timesteps:success_rate``)."""
    name, _, fields = key.partition(":")
    c = get_dotted(metrics, name)
    if fields:
        xf, _, yf = fields.partition(":")
        if not isinstance(c, list) or not c:
            return None
        pts = sorted((float(p[xf]), _as_float(p.get(yf))) for p in c if xf in p)
        x, y = np.array([p[0] for p in pts]), np.array([p[1] for p in pts])
    elif isinstance(c, dict) and c.get("x") and c.get("y"):
        x, y = np.asarray(c["x"], float), np.asarray(c["y"], float)
    else:
        return None
    keep = np.isfinite(y)
    return (x[keep], y[keep]) if keep.any() else None


def _plot_curves(path: Path, key: str, records: list[dict[str, Any]], rows: list[str]) -> None:
    """Mean and 95 % CI band over seeds of a curve {"x": [...], "y": [...]} per row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    for row in rows:
        curves = []
        for r in records:
            if r["row"] != row or r["status"] != "ok":
                continue
            xy = _curve_xy(r.get("metrics") or {}, key)
            if xy is not None:
                curves.append(xy)
        if not curves:
            continue
        # common grid: the x range every seed covers, so no band is an extrapolation
        x_hi = min(x[-1] for x, _ in curves)
        grid = np.unique(np.concatenate([x[x <= x_hi] for x, _ in curves]))
        ys = np.stack([np.interp(grid, x, y) for x, y in curves])
        stats = np.array([bootstrap_ci(ys[:, j], n_resamples=2000) for j in range(grid.size)])
        (line,) = ax.plot(grid, stats[:, 0], label=f"{row} (n={len(curves)})")
        ax.fill_between(grid, stats[:, 1], stats[:, 2], color=line.get_color(), alpha=0.2)
    name, _, fields = key.partition(":")
    xf, _, yf = fields.partition(":")
    ax.set_xlabel(xf or f"{name}.x")
    ax.set_ylabel(yf or f"{name}.y")
    ax.legend(fontsize=7)
    ax.set_title(f"{key}: mean and 95 % CI band over seeds", fontsize=9)
    fig.tight_layout()
    atomic_write(path, lambda p: fig.savefig(p, dpi=110, format="png"))
    plt.close(fig)


def load_records(out_dir: Path) -> list[dict[str, Any]]:
    """Every ``cell.json`` under ``<out_dir>/cells``."""
    return [
        json.loads(p.read_text()) for p in sorted((out_dir / "cells").glob("*/seed_*/cell.json"))
    ]


# --------------------------------------------------------------------------- paired table
def paired_differences(
    cells_csv: str | Path, reference: str, others: list[str], metrics: list[str]
) -> list[dict]:
    """Per-seed differences ``reference - other`` of a sweep's ``cells.csv`` (only seeds
    where both rows are ok), mean and 95 % percentile-bootstrap CI over seeds
    (:func:`bootstrap_ci`). One dict per (other, metric)."""
    rows: dict[str, dict[int, dict]] = {}
    with open(cells_csv) as fh:
        for rec in csv.DictReader(fh):
            if rec["status"] == "ok":
                rows.setdefault(rec["config"], {})[int(rec["seed"])] = rec
    if reference not in rows:
        raise ValueError(f"no ok cell of row {reference!r} in {cells_csv}")
    out = []
    for other in others:
        seeds = sorted(set(rows[reference]) & set(rows.get(other, {})))
        for m in metrics:
            d = [float(rows[reference][s][m]) - float(rows[other][s][m]) for s in seeds]
            mean, lo, hi = bootstrap_ci(d)
            out.append({"other": other, "metric": m, "n": len(d), "mean": mean, "low": lo,
                        "high": hi, "per_seed": d})  # fmt: skip
    return out


def paired_markdown(diffs: list[dict], reference: str) -> str:
    """Markdown table of :func:`paired_differences` (one line per other row)."""
    metrics = list(dict.fromkeys(d["metric"] for d in diffs))
    head = f"| {reference} minus | seeds | " + " | ".join(metrics) + " |"
    lines = [head, "|" + "---|" * (len(metrics) + 2)]
    for other in dict.fromkeys(d["other"] for d in diffs):
        ds = {d["metric"]: d for d in diffs if d["other"] == other}
        cells = [
            f"{ds[m]['mean']:+.3f} [{ds[m]['low']:+.3f}, {ds[m]['high']:+.3f}]" for m in metrics
        ]
        lines.append(f"| {other} | {ds[metrics[0]]['n']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
