"""Twin vs MuJoCo fidelity: the same random drive sequences on both bodies.

10 sequences of 1 s, a new drive every 100 ms drawn uniformly over the whole action
range (backward stepping included), both bodies at rest at the origin facing +x.
Prints per-sequence path length, final-position error and heading error, the
medians, and the wall time of each body. This is a fidelity benchmark, not a speed
race: both bodies run the same drives and the number is how far the kinematic twin's
end point lands from the MuJoCo fly's. Each repeat is a new set of sequences (seeds
``--seed``, ``--seed``+1, ...; seed 100, the calibration's lag identification, is
skipped, so every repeat is held out). Last line:
``median_relative_error=<median over repeats of each repeat's median> min=.. max=..``.

    python benchmarks/bench_twin_transfer.py [--sequences 10] [--seed 0] [--repeats 1]
"""

from __future__ import annotations

import argparse
import time

from _repeat import check_repeats, load_average, report

from flyenv.bodies.transfer import compare_twin_to_mujoco

CALIBRATION_SEED = 100  # used to identify the twin's lag: never a reporting seed


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--sequences", type=int, default=10)
    p.add_argument("--duration-s", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--repeats", type=int, default=1, help="independent sequence sets (MuJoCo is slow)"
    )
    args = p.parse_args()
    check_repeats(args.repeats)
    print(f"load average at start: {load_average()}")
    seeds = [s for s in range(args.seed, args.seed + args.repeats + 1) if s != CALIBRATION_SEED]
    medians = []
    for seed in seeds[: args.repeats]:
        t0 = time.perf_counter()
        r = compare_twin_to_mujoco(args.sequences, args.duration_s, seed=seed, progress=True)
        wall = time.perf_counter() - t0
        print(f"seed {seed}")
        print(f"{'seq':>4}{'path mm':>10}{'error mm':>10}{'error %':>9}{'heading err deg':>17}")
        for i in range(args.sequences):
            print(
                f"{i:>4}{r.path_length_mm[i]:>10.2f}{r.final_error_mm[i]:>10.2f}"
                f"{100 * r.relative_error[i]:>9.1f}{r.heading_error_deg[i]:>17.1f}"
            )
        s = r.summary()
        print(
            f"median: error {s['median_final_error_mm']:.2f} mm = "
            f"{100 * s['median_relative_error']:.1f} % of path (target < 15 %), heading "
            f"{s['median_heading_error_deg']:.1f} deg (target < 20 deg); wall {wall:.0f} s "
            "(MuJoCo dominates)"
        )
        medians.append(float(s["median_relative_error"]))
    report(
        medians,
        "twin end-point error / path length (fidelity, not speed)",
        key="median_relative_error",
        fmt=".3f",
    )


if __name__ == "__main__":
    main()
