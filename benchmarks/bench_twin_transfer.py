"""Twin vs MuJoCo fidelity: the same random drive sequences on both bodies.

10 sequences of 1 s, a new drive every 100 ms drawn uniformly over the whole action
range (backward stepping included), both bodies at rest at the origin facing +x.
Prints per-sequence path length, final-position error and heading error, the
medians, and the wall time of each body. Seed 0 is held out from the calibration's
lag identification (seed 100). Last line: ``median_relative_error=<value>``.

    python benchmarks/bench_twin_transfer.py [--sequences 10] [--seed 0]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from flyenv.bodies.transfer import compare_twin_to_mujoco


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--sequences", type=int, default=10)
    p.add_argument("--duration-s", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    t0 = time.perf_counter()
    r = compare_twin_to_mujoco(args.sequences, args.duration_s, seed=args.seed, progress=True)
    wall = time.perf_counter() - t0
    print(f"{'seq':>4}{'path mm':>10}{'error mm':>10}{'error %':>9}{'heading err deg':>17}")
    for i in range(args.sequences):
        print(
            f"{i:>4}{r.path_length_mm[i]:>10.2f}{r.final_error_mm[i]:>10.2f}"
            f"{100 * r.relative_error[i]:>9.1f}{r.heading_error_deg[i]:>17.1f}"
        )
    s = r.summary()
    print(
        f"median: error {s['median_final_error_mm']:.2f} mm = {100 * s['median_relative_error']:.1f} % "
        f"of path (target < 15 %), heading {s['median_heading_error_deg']:.1f} deg (target < 20 deg); "
        f"wall {wall:.0f} s (MuJoCo dominates)"
    )
    print(f"median_relative_error={s['median_relative_error']:.3f}")


if __name__ == "__main__":
    main()
