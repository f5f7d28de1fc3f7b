"""Shared repeat/report helpers for the benchmarks (not a benchmark itself).

Every benchmark alternates ours and the peer within one run of the script, so both
sides see the same machine load, and reports each repeat's ratio plus the median
(with min and max). On a shared machine a single run is not evidence; the median of
same-run ratios is what the benchmark claims.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import statistics
from collections.abc import Callable
from typing import Any


def load_average() -> str:
    """The 1/5/15-minute load averages, printed with every number."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f}/{five:.2f}/{fifteen:.2f}"


def check_repeats(n: int) -> int:
    if n < 1:
        raise SystemExit(f"--repeats must be >= 1 (got {n}); use e.g. --repeats 5")
    return n


def report(ratios: list[float], what: str, key: str = "ratio", fmt: str = ".2f") -> None:
    """Print every repeat's ratio, then the last line: median, min, max, repeats, load."""
    for i, r in enumerate(ratios):
        print(f"repeat {i}: {key} = {r:{fmt}}")
    med = statistics.median(ratios)
    print(f"{what}: median {med:{fmt}} over {len(ratios)} repeat(s)")
    print(
        f"{key}={med:{fmt}} min={min(ratios):{fmt}} max={max(ratios):{fmt}} "
        f"repeats={len(ratios)} load={load_average()}"
    )


def _serve(factory: Callable[[Any], Callable[[Any], Any]], args: Any, inq, outq) -> None:
    """Worker loop: build once, then answer one timed run per command until None."""
    run_once = factory(args)
    outq.put("ready")
    while (cmd := inq.get()) is not None:
        outq.put(run_once(cmd))


class Worker:
    """One implementation in its own spawned process (clean peak memory), kept alive
    across repeats so ours and the peer can be alternated without rebuilding."""

    def __init__(self, factory: Callable[[Any], Callable[[Any], Any]], args: Any) -> None:
        ctx = mp.get_context("spawn")
        self.inq, self.outq = ctx.Queue(), ctx.Queue()
        self.proc = ctx.Process(target=_serve, args=(factory, args, self.inq, self.outq))
        self.proc.start()
        if self.outq.get() != "ready":
            raise RuntimeError("benchmark worker failed to start")

    def __call__(self, cmd: Any) -> Any:
        self.inq.put(cmd)
        return self.outq.get()

    def close(self) -> None:
        self.inq.put(None)
        self.proc.join()
