"""Run a sweep's cells as Ray tasks: one run directory per cell, resumable, retried once.

Layout of ``<out>`` (``runs/sweeps/<name>/`` by default)::

    sweep.json                 the spec as run (rows, seeds, metrics)
    cells/<row>/seed_<s>/      a cell's run directory: its artifacts, cell.log, cell.json
    summary.{json,csv,md,png}  mean and 95 % CI over seeds per row and metric
    cells.csv                  one line per cell (status, attempts, metrics)

A cell whose ``cell.json`` says ``ok`` is never run again. A cell that raises or whose
worker process dies (killed, out of memory, segfault) is retried once by Ray
(``max_retries=1``, ``retry_exceptions=True``); if the retry fails too it is written as
``failed`` with the error and stays in the table as a failed seed, never dropped. A
rerun of the sweep retries failed and unfinished cells.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from flyenv.io import atomic_write_json
from flyenv.sweep.aggregate import load_records, write_reports
from flyenv.sweep.spec import Cell, SweepSpec, SweepSpecError, load_sweep_spec

DEFAULT_OUT_ROOT = Path("runs/sweeps")
CELL_RESULT = "cell.json"
ATTEMPTS_FILE = ".attempts"


def _agent_flags(config: dict[str, Any], prefix: str = "") -> list[str]:
    """A cell's config as the flags of an agent's ``Args`` (``flyenv.config.cli``, tyro):
    ``{"total_timesteps": 10, "no_video": True, "algo": {"learning_rate": 0.1}}`` ->
    ``["--total-timesteps", "10", "--no-video", "--algo.learning-rate", "0.1"]``; a false
    boolean is ``--no-<flag>`` (it overrides a scenario's true), a list gives its items,
    ``scenario = "scenarios/x.toml"`` gives ``--scenario`` (the agent's defaults < that
    scenario < the other keys)."""
    flags: list[str] = []
    for key, value in config.items():
        if key == "name" and not prefix:
            continue
        dashed = key.replace("_", "-")
        flag = f"--{prefix}{dashed}"
        if isinstance(value, bool):
            flags.append(flag if value else f"--{prefix}no-{dashed}")
        elif isinstance(value, dict):
            flags += _agent_flags(value, f"{prefix}{dashed}.")
        elif isinstance(value, list):
            flags += [flag, *map(str, value)]
        else:
            flags += [flag, str(value)]
    return flags


@contextlib.contextmanager
def _output_to(log_path: Path):
    """Send this process's stdout/stderr (Python and C level) to ``log_path``."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with log_path.open("a") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield log
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def execute_cell(
    cell_target: str,
    row: str,
    seed: int,
    config: dict[str, Any],
    run_dir: str,
    cwd: str,
    sys_path: list[str],
    agent_options: dict[str, Any],
) -> dict[str, Any]:
    """Run one cell in this process and write its ``cell.json``; raise on failure.

    This is the body of the Ray task (and of ``--serial`` runs).
    """
    os.chdir(cwd)
    for p in reversed(sys_path):  # the driver's import path: cells may live in tests/ etc.
        if p not in sys.path:
            sys.path.insert(0, p)
    rd = Path(run_dir)
    rd.mkdir(parents=True, exist_ok=True)
    attempts_path = rd / ATTEMPTS_FILE
    attempts = int(attempts_path.read_text() or 0) + 1 if attempts_path.exists() else 1
    attempts_path.write_text(str(attempts))
    t0 = time.perf_counter()
    if cell_target.endswith(".py"):
        metrics = _run_agent(cell_target, seed, config, rd, cwd, agent_options)
    else:
        module_name, _, fn_name = cell_target.partition(":")
        fn = getattr(importlib.import_module(module_name), fn_name)
        with _output_to(rd / "cell.log"):
            metrics = fn(dict(config), int(seed), rd)
        if not isinstance(metrics, dict):
            raise TypeError(
                f"cell {cell_target} returned {type(metrics).__name__}; it must return a dict of metrics"
            )
    record = {
        "row": row,
        "seed": int(seed),
        "status": "ok",
        "attempts": attempts,
        "wall_s": round(time.perf_counter() - t0, 3),
        "config": config,
        "metrics": metrics,
    }
    atomic_write_json(rd / CELL_RESULT, record)
    return record


def _run_agent(
    script: str, seed: int, config: dict[str, Any], rd: Path, cwd: str, opts: dict[str, Any]
) -> dict[str, Any]:
    cmd = [
        sys.executable,
        script,
        *_agent_flags(config),
        opts["seed_flag"],
        str(seed),
        opts["run_dir_flag"],
        str(rd),
    ]
    with (rd / "cell.log").open("a") as log:
        log.write("$ " + " ".join(cmd) + "\n")
        log.flush()
        proc = subprocess.run(
            cmd,
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=opts["timeout_s"] or None,
            check=False,
        )
    if proc.returncode != 0:
        tail = (rd / "cell.log").read_text().splitlines()[-15:]
        raise RuntimeError(
            f"{script} exited with {proc.returncode}; last lines of cell.log:\n" + "\n".join(tail)
        )
    results = rd / opts["results_file"]
    if not results.exists():
        raise FileNotFoundError(f"{script} finished but wrote no {results}")
    return json.loads(results.read_text())


def _record_path(out_dir: Path, cell: Cell) -> Path:
    return out_dir / "cells" / cell.key / CELL_RESULT


def _is_done(out_dir: Path, cell: Cell) -> bool:
    p = _record_path(out_dir, cell)
    if not p.exists():
        return False
    try:
        return json.loads(p.read_text()).get("status") == "ok"
    except json.JSONDecodeError:
        return False


def _failed_record(out_dir: Path, cell: Cell, error: str) -> dict[str, Any]:
    rd = out_dir / "cells" / cell.key
    attempts_path = rd / ATTEMPTS_FILE
    attempts = int(attempts_path.read_text() or 0) if attempts_path.exists() else 0
    record = {
        "row": cell.row,
        "seed": cell.seed,
        "status": "failed",
        "attempts": attempts,
        "wall_s": None,
        "config": cell.config,
        "metrics": {},
        "error": error,
    }
    atomic_write_json(rd / CELL_RESULT, record)
    return record


def _select(spec: SweepSpec, configs: list[str] | None, seeds: list[int] | None) -> list[Cell]:
    cells = spec.cells()
    if configs:
        known = {c.row for c in cells} | {c.config.get("name", "").split("/")[0] for c in cells}
        bad = [c for c in configs if c not in known]
        if bad:
            raise SweepSpecError(
                f"--configs {bad} not in the sweep; rows: {sorted({c.row for c in cells})}"
            )
        cells = [c for c in cells if c.row in configs or c.row.split("/")[0] in configs]
    if seeds:
        cells = [c for c in cells if c.seed in seeds]
    return cells


def run_sweep(
    spec: SweepSpec | str | Path,
    out: str | Path | None = None,
    num_cpus: float | None = None,
    address: str | None = None,
    configs: list[str] | None = None,
    seeds: list[int] | None = None,
    report_only: bool = False,
    serial: bool = False,
    progress: bool = True,
    command: str | None = None,
) -> list[dict[str, Any]]:
    """Run every unfinished cell of a sweep, then write its tables; return the summary rows.

    ``num_cpus`` bounds a local Ray (default: all cores); ``address`` joins an existing
    cluster instead (``"auto"`` or ``"host:port"``). ``serial=True`` runs the cells one by
    one in this process without Ray (for debugging; no retry of killed processes).
    """
    if not isinstance(spec, SweepSpec):
        spec = load_sweep_spec(spec)
    if seeds:
        extra = [s for s in seeds if s not in spec.seeds]
        spec.seeds = list(spec.seeds) + extra
    out_dir = Path(out) if out is not None else DEFAULT_OUT_ROOT / spec.name
    out_dir.mkdir(parents=True, exist_ok=True)
    cells = _select(spec, configs, seeds)
    # the tables cover the run's cells and every finished cell of the sweep's other rows,
    # so a run of some rows (--configs) does not drop the rest from summary.* and cells.csv
    chosen = {(c.row, c.seed) for c in cells}
    report = [
        c for c in _select(spec, None, seeds) if (c.row, c.seed) in chosen or _is_done(out_dir, c)
    ]
    rows = list(dict.fromkeys(c.row for c in report))
    atomic_write_json(
        out_dir / "sweep.json",
        {
            "name": spec.name,
            "source": str(spec.source) if spec.source else None,
            "cell": spec.cell,
            "seeds": spec.seeds,
            "metrics": spec.metrics,
            "rows": rows,
        },
    )
    pending = [c for c in cells if not _is_done(out_dir, c)]
    if pending and not report_only:
        if serial:
            _run_serial(spec, out_dir, pending, progress)
        else:
            _run_ray(spec, out_dir, pending, num_cpus, address, progress)
    wanted = {(c.row, c.seed) for c in report}
    by_key = {(r["row"], r["seed"]): r for r in load_records(out_dir)}
    records = []
    for c in report:
        rec = by_key.get((c.row, c.seed))
        records.append(
            rec if rec else {"row": c.row, "seed": c.seed, "status": "not run", "metrics": {}}
        )
    assert all((r["row"], r["seed"]) in wanted for r in records)
    cmd = command or f"flyenv sweep {spec.source or spec.name}"
    used_seeds = sorted({c.seed for c in report})
    return write_reports(
        out_dir, spec.name, records, rows, spec.metrics, spec.curves, used_seeds, cmd
    )


def _agent_options(spec: SweepSpec) -> dict[str, Any]:
    return {
        "seed_flag": spec.seed_flag,
        "run_dir_flag": spec.run_dir_flag,
        "results_file": spec.results_file,
        "timeout_s": spec.timeout_s,
    }


def _cell_args(spec: SweepSpec, out_dir: Path, cell: Cell) -> tuple:
    rd = (out_dir / "cells" / cell.key).resolve()
    rd.mkdir(parents=True, exist_ok=True)
    (rd / ATTEMPTS_FILE).unlink(missing_ok=True)  # attempts count from this submission
    return (
        spec.cell,
        cell.row,
        cell.seed,
        cell.config,
        str(rd),
        os.getcwd(),
        [p for p in sys.path if p],
        _agent_options(spec),
    )


def _progress_bar(total: int, name: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=f"sweep {name}", unit="cell", disable=not enabled)


def _run_serial(spec: SweepSpec, out_dir: Path, pending: list[Cell], progress: bool) -> None:
    with _progress_bar(len(pending), spec.name, progress) as bar:
        for cell in pending:
            try:
                execute_cell(*_cell_args(spec, out_dir, cell))
            except Exception:
                _failed_record(out_dir, cell, traceback.format_exc())
            bar.update(1)


def _run_ray(
    spec: SweepSpec,
    out_dir: Path,
    pending: list[Cell],
    num_cpus: float | None,
    address: str | None,
    progress: bool,
) -> None:
    try:
        import ray
    except ImportError:
        raise SystemExit(
            "flyenv sweep needs Ray: pip install -e '.[sweep]' (or pass --serial to run without it)"
        ) from None
    started_here = not ray.is_initialized()
    if started_here:
        kwargs: dict[str, Any] = {
            "include_dashboard": False,
            "log_to_driver": False,
            "logging_level": "ERROR",
        }
        if address:
            kwargs["address"] = address
        else:
            if num_cpus is not None:
                kwargs["num_cpus"] = num_cpus
            # the object store only carries small results; keep it from reserving /dev/shm
            kwargs["object_store_memory"] = 128 * 1024 * 1024
        os.environ.setdefault("RAY_DEDUP_LOGS", "0")
        try:
            ray.init(**kwargs)
        except Exception as exc:  # e.g. the local GCS start times out on an overloaded machine
            where = f"the Ray cluster at {address}" if address else "a local Ray"
            raise SystemExit(
                f"flyenv sweep could not start {where} ({type(exc).__name__}: {exc}); "
                "retry when the machine is less loaded, or pass --serial to run the cells "
                "one by one without Ray (finished cells are kept either way)"
            ) from None
    try:
        task = ray.remote(execute_cell).options(
            num_cpus=spec.cpus_per_cell, max_retries=1, retry_exceptions=True
        )
        refs = {task.remote(*_cell_args(spec, out_dir, c)): c for c in pending}
        with _progress_bar(len(refs), spec.name, progress) as bar:
            waiting = list(refs)
            while waiting:
                done, waiting = ray.wait(waiting, num_returns=1)
                for ref in done:
                    cell = refs[ref]
                    try:
                        ray.get(ref)
                    except Exception as exc:  # RayTaskError, WorkerCrashedError, ...
                        _failed_record(out_dir, cell, f"{type(exc).__name__}: {exc}")
                    bar.update(1)
    finally:
        if started_here:
            ray.shutdown()
