"""A sweep scenario: which cell runs, on which configs and seeds, and what the table shows.

A sweep scenario is a TOML file with one ``[sweep]`` table::

    [sweep]
    name = "odor_taxis_controls"        # output folder runs/sweeps/<name>/ (or --out)
    cell = "flyenv.evaluation.olfactory_controls:taxis_cell"   # "module:function" or "agents/x.py"
    seeds = [1000, 1001, 1002, 1003, 1004]                       # or {start = 1000, count = 5}
    metrics = ["success_rate", "time_to_source_s"]               # dotted keys of a cell's result
    curves = []                          # keys whose values are {"x": [...], "y": [...]}
    cpus_per_cell = 1
    [sweep.base]                         # keywords every cell gets
    [[sweep.configs]]                    # one table row each, deep-merged over base
    name = "intact"
    [sweep.grid]                         # optional: lists whose product is crossed with configs
    "env_kwargs.time_limit_s" = [3.0, 5.0]

A function cell is ``fn(config: dict, seed: int, run_dir: Path) -> dict``; an agent cell
(``cell = "agents/ppo_odor_taxis.py"``) is run as a program with the config as the flags of
its ``Args`` (``flyenv.config``: ``key_name = v`` -> ``--key-name v``, ``flag = false`` ->
``--no-flag``, a table ``algo = {learning_rate = 0.1}`` -> ``--algo.learning-rate 0.1``,
``scenario = "scenarios/x.toml"`` -> ``--scenario``, which the other keys override),
``--seed`` and ``--run-dir``, and its metrics are read from ``results_file`` in the run
directory.
"""

from __future__ import annotations

import copy
import itertools
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_SPEC_KEYS = {
    "name",
    "cell",
    "seeds",
    "metrics",
    "curves",
    "cpus_per_cell",
    "base",
    "configs",
    "grid",
    "seed_flag",
    "run_dir_flag",
    "results_file",
    "timeout_s",
    "description",
}
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.=+-]+$")


class SweepSpecError(ValueError):
    """A sweep scenario that cannot run; the message names the key and the fix."""


@dataclass(frozen=True)
class Cell:
    """One (config row, seed) unit of work."""

    row: str
    """Table row name (a config name, plus ``/key=value`` for grid entries)."""
    seed: int
    config: dict[str, Any]
    """The merged keywords this cell gets (includes ``name``)."""

    @property
    def key(self) -> str:
        """Folder name of the cell under ``<out>/cells/``."""
        return f"{self.row.replace('/', '__')}/seed_{self.seed}"


@dataclass
class SweepSpec:
    name: str
    cell: str
    seeds: list[int]
    metrics: list[str]
    configs: list[dict[str, Any]]
    curves: list[str] = field(default_factory=list)
    cpus_per_cell: float = 1.0
    grid: dict[str, list[Any]] = field(default_factory=dict)
    seed_flag: str = "--seed"
    run_dir_flag: str = "--run-dir"
    results_file: str = "results.json"
    timeout_s: float = 0.0
    """Wall limit of one agent cell in seconds (0: none)."""
    description: str = ""
    source: Path | None = None
    """The TOML file this spec was read from."""

    @property
    def is_agent(self) -> bool:
        return self.cell.endswith(".py")

    def rows(self) -> list[tuple[str, dict[str, Any]]]:
        """(row name, merged config) for every config crossed with the grid."""
        keys = list(self.grid)
        combos = list(itertools.product(*(self.grid[k] for k in keys))) if keys else [()]
        out = []
        for config in self.configs:
            for combo in combos:
                merged = copy.deepcopy(config)
                suffix = ""
                for k, v in zip(keys, combo, strict=True):
                    _set_dotted(merged, k, v)
                    suffix += f"/{k}={v}"
                name = config["name"] + suffix
                merged["name"] = name
                out.append((name, merged))
        return out

    def cells(self) -> list[Cell]:
        return [Cell(row, seed, cfg) for row, cfg in self.rows() for seed in self.seeds]


def _set_dotted(d: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    for p in parts[:-1]:
        d = d.setdefault(p, {})
        if not isinstance(d, dict):
            raise SweepSpecError(f"[sweep.grid] key {dotted!r}: {p!r} is not a table in the config")
    d[parts[-1]] = value


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _seeds(value: Any) -> list[int]:
    if isinstance(value, dict):
        unknown = set(value) - {"start", "count"}
        if unknown or "count" not in value:
            raise SweepSpecError(
                "[sweep] seeds as a table needs exactly {start = N, count = K}, "
                f"got keys {sorted(value)}"
            )
        start = int(value.get("start", 0))
        return list(range(start, start + int(value["count"])))
    if isinstance(value, list) and value and all(isinstance(s, int) for s in value):
        if len(set(value)) != len(value):
            raise SweepSpecError(f"[sweep] seeds has duplicates: {value}")
        return list(value)
    raise SweepSpecError(
        f"[sweep] seeds must be a non-empty list of integers or {{start = N, count = K}}, got {value!r}"
    )


def parse_sweep_spec(data: dict[str, Any], source: Path | None = None) -> SweepSpec:
    """Validate the ``[sweep]`` table of a scenario and return the spec."""
    where = f" in {source}" if source else ""
    if "sweep" not in data:
        raise SweepSpecError(
            f"no [sweep] table{where}: a sweep scenario starts with [sweep] name/cell/seeds/metrics"
        )
    s = data["sweep"]
    unknown = set(s) - _SPEC_KEYS
    if unknown:
        raise SweepSpecError(
            f"unknown [sweep] key(s) {sorted(unknown)}{where}; known keys: {sorted(_SPEC_KEYS)}"
        )
    for key in ("name", "cell", "seeds", "metrics"):
        if key not in s:
            raise SweepSpecError(f"[sweep] needs {key!r}{where}")
    name = str(s["name"])
    if not _SAFE_NAME.match(name):
        raise SweepSpecError(f"[sweep] name {name!r} must be letters, digits, _ . = + - only")
    cell = str(s["cell"])
    if not cell.endswith(".py") and ":" not in cell:
        raise SweepSpecError(
            f"[sweep] cell {cell!r} must be 'package.module:function' or a script path 'agents/x.py'"
        )
    metrics = s["metrics"]
    if not isinstance(metrics, list) or not metrics or not all(isinstance(m, str) for m in metrics):
        raise SweepSpecError("[sweep] metrics must be a non-empty list of result keys")
    base = s.get("base", {})
    configs_in = s.get("configs", [{"name": "default"}])
    if not isinstance(configs_in, list) or not configs_in:
        raise SweepSpecError("[[sweep.configs]] must be a list of tables, each with a name")
    configs = []
    seen = set()
    for i, c in enumerate(configs_in):
        if "name" not in c:
            raise SweepSpecError(f"[[sweep.configs]] entry {i} has no name")
        if c["name"] in seen:
            raise SweepSpecError(f"[[sweep.configs]] name {c['name']!r} is used twice")
        if not _SAFE_NAME.match(str(c["name"])):
            raise SweepSpecError(
                f"[[sweep.configs]] name {c['name']!r} must be letters, digits, _ . = + - only"
            )
        seen.add(c["name"])
        configs.append(deep_merge(base, c))
    grid = s.get("grid", {})
    for k, v in grid.items():
        if not isinstance(v, list) or not v:
            raise SweepSpecError(f"[sweep.grid] {k!r} must be a non-empty list of values")
    cpus = float(s.get("cpus_per_cell", 1))
    if cpus <= 0:
        raise SweepSpecError("[sweep] cpus_per_cell must be > 0")
    return SweepSpec(
        name=name,
        cell=cell,
        seeds=_seeds(s["seeds"]),
        metrics=list(metrics),
        configs=configs,
        curves=list(s.get("curves", [])),
        cpus_per_cell=cpus,
        grid=dict(grid),
        seed_flag=str(s.get("seed_flag", "--seed")),
        run_dir_flag=str(s.get("run_dir_flag", "--run-dir")),
        results_file=str(s.get("results_file", "results.json")),
        timeout_s=float(s.get("timeout_s", 0.0)),
        description=str(s.get("description", "")),
        source=source,
    )


def load_sweep_spec(path: str | Path) -> SweepSpec:
    """Read and validate a sweep scenario TOML."""
    path = Path(path)
    if not path.exists():
        raise SweepSpecError(f"sweep scenario {path} does not exist; see scenarios/sweeps/*.toml")
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise SweepSpecError(f"{path} is not valid TOML: {exc}") from None
    return parse_sweep_spec(data, source=path)
