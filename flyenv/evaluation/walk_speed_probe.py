"""Does the spiking brain lose the plume when it walks as fast as cast and surge?

A diagnostic of why the spiking plume policies are slower than the scripted
cast-and-surge agent (docs/results/rl.md). The untrained brain's default walk is set by
its readout bias (``OlfactoryBrainConfig.action_bias_init``, a model choice: the drive
with silent DNs). The probe builds the untrained brain at several biases and runs each,
and cast and surge, on the same twin PlumeTracking starts, reporting success, the mean
walking speed and the start-by-start time difference to cast and surge
(``flyenv.evaluation.paired_time_cell.paired_times``) on the starts both solve.

    python -m flyenv.evaluation.walk_speed_probe --biases -0.3 0.0 0.3
    python -m flyenv.evaluation.walk_speed_probe --brain-config '{"wind_dn_init_mv_per_ms": 0.1, "wind_odor_gate": false}'
    python -m flyenv.evaluation.walk_speed_probe --biases -0.3 --brain-config '{"wind_dn_init_mv_per_ms": 2.0, "wind_surge_init_mv_per_ms": 0.75}'

(the last: the odor-gated upwind surge the plume's surge rows use, chosen with this probe).

Starts: ``--starts`` of the stream ``--start-seed`` (default 123, the stream the innate
plume brain's settings were chosen on; never a reporting stream).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

GATED_WIND = {"wind_obs_columns": (110, 111), "wind_dn_init_mv_per_ms": 1.0, "wind_odor_gate": True}
"""The odor-gated wind brain of the plume rows (model choices, docs/results/rl.md)."""
TWIN_ID = "flyenv/PlumeTracking-kinematic-v0"


def walk_speed_probe(
    brain_config: dict[str, Any] | None,
    biases: Sequence[float],
    starts: int = 100,
    start_seed: int = 123,
) -> list[dict[str, Any]]:
    """One row per readout bias: the untrained brain (``brain_config`` over the recurrent
    policy's brain defaults and ``GATED_WIND``) against cast and surge on the same starts."""
    import torch

    from flyenv.brains.olfactory.brain import OlfactoryBrain, OlfactoryBrainConfig
    from flyenv.evaluation.paired_time_cell import env_timing, paired_times
    from flyenv.evaluation.plume_baselines import make_scripted
    from flyenv.rl import evaluation as ev
    from flyenv.rl.recurrent_spiking_policy import RECURRENT_BRAIN_DEFAULTS
    from flyenv.rl.sb3_training import PLUME_SPIKING_ENV_KWARGS

    if starts < 1 or not biases:
        raise ValueError(f"need starts >= 1 and at least one bias (got {starts}, {biases})")
    period_s, time_limit_s = env_timing(TWIN_ID, {})
    scripted = ev.evaluate_twin(
        lambda _: make_scripted("cast_and_surge", None, 0, period_s),
        TWIN_ID,
        {},
        starts,
        start_seed,
    )
    rows = []
    for bias in biases:
        cfg = {**RECURRENT_BRAIN_DEFAULTS, **GATED_WIND, **(brain_config or {})}
        cfg["action_bias_init"] = float(bias)
        brain = OlfactoryBrain(OlfactoryBrainConfig(**cfg))
        with torch.no_grad():
            res = ev.evaluate_twin(
                ev.stateful_batch_policy(brain),
                TWIN_ID,
                PLUME_SPIKING_ENV_KWARGS,
                starts,
                start_seed,
            )
        paired = paired_times(res, scripted, time_limit_s)
        rows.append(
            {
                "action_bias_init": float(bias),
                "success_rate": res.success_rate,
                "scripted_success_rate": scripted.success_rate,
                "speed_mm_s": paired["agent_speed_both_mm_s"],
                "scripted_speed_mm_s": paired["scripted_speed_both_mm_s"],
                "median_time_difference_s": paired["median_time_difference_s"],
                "time_difference_s": paired["time_difference_s"],
                "both_success": paired["both_success"],
            }
        )
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--biases", type=float, nargs="+", default=[-0.3, 0.0, 0.3])
    parser.add_argument("--brain-config", default="{}", help="JSON OlfactoryBrainConfig keywords")
    parser.add_argument("--starts", type=int, default=100)
    parser.add_argument("--start-seed", type=int, default=123)
    args = parser.parse_args(argv)
    rows = walk_speed_probe(
        json.loads(args.brain_config), args.biases, args.starts, args.start_seed
    )
    print(
        "| readout bias | success | cast and surge | speed (mm/s) | cast and surge speed | "
        "median difference (s), both solve | mean difference (s) |\n|---|---|---|---|---|---|---|"
    )
    fmt = lambda v, d: "-" if v is None else f"{v:.{d}f}"  # noqa: E731
    for r in rows:
        print(
            f"| {r['action_bias_init']:+.2f} | {r['success_rate']:.2f} | "
            f"{r['scripted_success_rate']:.2f} | {fmt(r['speed_mm_s'], 1)} | "
            f"{fmt(r['scripted_speed_mm_s'], 1)} | {fmt(r['median_time_difference_s'], 2)} | "
            f"{fmt(r['time_difference_s'], 2)} |"
        )


if __name__ == "__main__":
    main()
