"""Per-odor breakdown of an OdorConditioning sweep: the choice by CS+ odor, beside how
much of that odor's KC code lies in the alpha/beta KCs.

Why this exists: reward teaches the PAM compartments, and in the shipped FlyWire data
(KC->MBON edges of >= 5 synapses) the reward-taught synapses onto avoidance MBONs come
mostly from alpha/beta KCs (α1, β2: about 1.9 such edges per αβ KC against 0.8 per γ KC;
:func:`reward_avoidance_edges_per_kc`). An odor whose KC code lies mostly in γ KCs then
has less to learn with. The FlyWire PN->KC wiring sends some panel odors mostly to γ KCs
(αβ share 0.15-0.64 by odor) where random wiring evens the share out (0.22-0.42); see
docs/results/mushroom_body_learning.md. This module joins a sweep's per-episode records
(``conditioning_cell.json``, key ``episodes``) with the KC codes of the brain each row
used:

    python -m flyenv.evaluation.odor_breakdown runs/sweeps/odor_conditioning_type_shuffle

Per row and CS+ odor: episodes, PI CS+ over them, the odor's αβ share; per row and pooled
over rows: the Pearson r between the two (exploratory: per-odor PIs rest on 20-90
episodes each).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np


def cs_plus_performance(cell_files: Iterable[Path]) -> dict[str, tuple[float, int]]:
    """Per CS+ odor: (PI CS+ over its episodes, number of episodes), from the
    ``episodes`` records of ``conditioning_cell.json`` files."""
    scores: dict[str, list[int]] = {}
    for path in cell_files:
        record = json.loads(Path(path).read_text())
        if "episodes" not in record:
            raise ValueError(
                f"{path} has no per-episode records; rerun its sweep with this version of "
                "flyenv.evaluation.conditioning_cell"
            )
        ep = record["episodes"]
        for odor, chose in zip(ep["cs_plus_odor"], ep["chose_cs_plus"], strict=True):
            scores.setdefault(odor, []).append(0 if chose is None else (1 if chose else -1))
    return {odor: (float(np.mean(v)), len(v)) for odor, v in sorted(scores.items())}


def reward_avoidance_edges_per_kc(
    brain_config: dict[str, Any] | None = None, plasticity: dict[str, Any] | None = None
) -> dict[str, float]:
    """Per KC class: KC->MBON edges that sugar teaches (a PAM compartment) onto
    avoidance MBONs, per KC of the class."""
    import torch

    from flyenv.brains.olfactory.policy import BPTT_BRAIN_DEFAULTS, OlfactoryBrainPolicy
    from flyenv.evaluation.kc_codes import kc_classes

    config = {**BPTT_BRAIN_DEFAULTS, **(brain_config or {}), "plasticity": dict(plasticity or {})}
    plastic = OlfactoryBrainPolicy(**config).brain.plasticity
    with torch.no_grad():
        dopamine = plastic.dopamine(plastic.dan_rates(torch.ones(1)))[:, 0]  # sugar
        taught = (plastic.syn_comp @ dopamine).numpy() > 0
    avoid = plastic.valence_sign[0].numpy()[plastic.syn_post.numpy()] < 0
    classes = kc_classes()
    pre_class = classes[plastic.syn_pre.numpy()]
    return {
        c: float((taught & avoid & (pre_class == c)).sum() / (classes == c).sum())
        for c in ("γ", "α'β'", "αβ")
    }


def sweep_breakdown(sweep_dir: Path) -> list[dict[str, Any]]:
    """One dict per (row, CS+ odor) of a conditioning sweep: row, odor, episodes, PI CS+
    and the odor's αβ share under the row's brain (twin rows with episode records)."""
    from flyenv.evaluation.kc_codes import class_share_per_odor, kc_codes

    out = []
    for row_dir in sorted(p for p in (Path(sweep_dir) / "cells").iterdir() if p.is_dir()):
        files = sorted(row_dir.glob("seed_*/conditioning_cell.json"))
        if not files:
            continue
        brain_config = json.loads(files[0].read_text())["config"].get("brain_config", {})
        performance = cs_plus_performance(files)
        odors = list(performance)
        share = class_share_per_odor(kc_codes(odors, 0.01, brain_config))
        for odor, s in zip(odors, share, strict=True):
            pi, n = performance[odor]
            out.append({"row": row_dir.name, "odor": odor, "episodes": n, "pi_cs_plus": pi,
                        "alpha_beta_share": float(s)})  # fmt: skip
    return out


def _r(rows: list[dict[str, Any]]) -> float:
    x = np.array([[r["pi_cs_plus"], r["alpha_beta_share"]] for r in rows])
    return float(np.corrcoef(x.T)[0, 1]) if len(x) > 2 else float("nan")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep_dir", type=Path, help="runs/sweeps/<name> of a conditioning sweep")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    rows = sweep_breakdown(args.sweep_dir)
    if not rows:
        raise SystemExit(f"error: no conditioning_cell.json under {args.sweep_dir}/cells")
    print("| row | CS+ odor | episodes | PI CS+ | αβ share of the odor's KC spikes |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['row']} | {r['odor']} | {r['episodes']} | {r['pi_cs_plus']:+.2f} | "
              f"{r['alpha_beta_share']:.2f} |")  # fmt: skip
    print()
    for name in dict.fromkeys(r["row"] for r in rows):
        print(f"{name}: r(PI CS+, αβ share) = {_r([r for r in rows if r['row'] == name]):+.2f}")
    print(f"pooled over {len(rows)} (row, odor) points: r = {_r(rows):+.2f}")


if __name__ == "__main__":
    main()

__all__ = ["cs_plus_performance", "reward_avoidance_edges_per_kc", "sweep_breakdown"]
