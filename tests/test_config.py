"""flyenv.config: scenario TOML -> Args dataclass, flags over it; every shipped scenario and
every agent-cell sweep config parses into its agent's Args."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from agent_scripts import AGENTS, load_agent

from flyenv.config import (
    JsonDict,
    ScenarioError,
    cli,
    load_scenario,
    normalize_flags,
    scenario_agent,
)
from flyenv.sweep.runner import _agent_flags
from flyenv.sweep.spec import load_sweep_spec

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Inner:
    rate_hz: float = 1.0
    """A rate."""
    sizes: tuple[int, int] = (1, 2)
    """Two sizes."""


@dataclass
class Toy:
    scenario: str | None = None
    """TOML of these fields."""
    steps: int = 10
    """Steps."""
    name: str = "a"
    """A name."""
    verbose: bool = False
    """Talk."""
    inner: Inner = field(default_factory=Inner)
    """A nested table."""
    extra: JsonDict = field(default_factory=dict)
    """Free-form keywords."""


def _toml(tmp_path: Path, text: str, name: str = "s.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_unknown_key_names_it_and_lists_the_valid_ones(tmp_path):
    path = _toml(tmp_path, "steps = 3\nstepz = 4\n")
    with pytest.raises(ScenarioError, match=r"unknown key\(s\) \['stepz'\]") as err:
        load_scenario(path, Toy)
    for valid in ("steps", "name", "verbose", "inner", "extra"):
        assert valid in str(err.value)
    assert str(path) in str(err.value)
    nested = _toml(tmp_path, "[inner]\nrate_hz = 2.0\nrate = 3.0\n", "n.toml")
    with pytest.raises(ScenarioError, match=r"\['rate'\] in \[inner\].*rate_hz.*sizes"):
        load_scenario(nested, Toy)


def test_nested_tables_fill_nested_dataclasses_and_types_are_checked(tmp_path):
    path = _toml(
        tmp_path,
        'name = "b"\n[inner]\nrate_hz = 2\nsizes = [3, 4]\n[extra]\nnet_arch = [64, 64]\n',
    )
    toy = load_scenario(path, Toy)
    assert toy.inner == Inner(rate_hz=2.0, sizes=(3, 4))  # int -> float, array -> tuple
    assert isinstance(toy.inner.rate_hz, float) and toy.steps == 10 and toy.name == "b"
    assert toy.extra == {"net_arch": [64, 64]}
    with pytest.raises(ScenarioError, match="steps"):
        load_scenario(_toml(tmp_path, 'steps = "ten"\n', "t.toml"), Toy)
    with pytest.raises(ScenarioError, match="inner must be a table"):
        load_scenario(_toml(tmp_path, "inner = 3\n", "u.toml"), Toy)
    with pytest.raises(ScenarioError, match="malformed"):
        load_scenario(_toml(tmp_path, "[inner\n", "m.toml"), Toy)
    with pytest.raises(FileNotFoundError, match="not found"):
        load_scenario(tmp_path / "missing.toml", Toy)


def test_precedence_defaults_then_scenario_then_flags(tmp_path):
    path = _toml(tmp_path, 'steps = 20\nname = "scn"\nverbose = true\n[inner]\nrate_hz = 5.0\n')
    assert cli(Toy, []) == Toy()  # defaults
    from_toml = cli(Toy, ["--scenario", str(path)])
    assert (from_toml.steps, from_toml.name, from_toml.verbose) == (20, "scn", True)
    assert from_toml.inner.rate_hz == 5.0 and from_toml.inner.sizes == (1, 2)
    flags = cli(
        Toy,
        ["--steps", "30", "--scenario", str(path), "--no-verbose", "--inner.rate-hz", "7"],
    )
    assert (flags.steps, flags.name, flags.verbose, flags.inner.rate_hz) == (30, "scn", False, 7.0)
    # underscored / other-case spellings of a flag are the same flag
    assert cli(Toy, ["--inner.rate_HZ", "8", "--steps=4"]).inner.rate_hz == 8.0
    assert normalize_flags(["--Steps", "1", "--nope"], Toy) == ["--steps", "1", "--nope"]
    assert cli(Toy, ["--extra", '{"a": 1}']).extra == {"a": 1}


def test_a_scenario_for_another_agent_is_refused(tmp_path):
    path = _toml(tmp_path, 'agent = "ppo_odor_taxis"\nsteps = 2\n')
    assert load_scenario(path, Toy).steps == 2
    assert load_scenario(path, Toy, agent="ppo_odor_taxis").steps == 2
    with pytest.raises(ScenarioError, match="agents/ppo_odor_taxis.py"):
        load_scenario(path, Toy, agent="sac_odor_taxis")
    with pytest.raises(SystemExit, match="agents/ppo_odor_taxis.py"):
        cli(Toy, ["--scenario", str(path)], agent="sac_odor_taxis")


SCENARIOS = sorted((ROOT / "scenarios").glob("*.toml"))


def test_there_are_scenarios_and_no_dashed_file_names():
    assert len(SCENARIOS) >= 13
    assert not [p.name for p in SCENARIOS if "-" in p.name]


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.name)
def test_every_scenario_loads_into_its_agents_args(path: Path):
    agent = scenario_agent(path)
    assert agent, f"{path.name} has no `agent = ...` key"
    assert (AGENTS / f"{agent}.py").is_file(), f"{path.name}: no agents/{agent}.py"
    module = load_agent(agent)
    args = load_scenario(path, module.Args, agent=agent)
    assert dataclasses.is_dataclass(args)
    parsed = module.parse_args(["--scenario", str(path)])  # the agent's own parse
    assert parsed.scenario == str(path)


AGENT_NAMES = sorted(p.stem for p in AGENTS.glob("*.py"))


@pytest.mark.parametrize("name", AGENT_NAMES)
def test_every_agent_has_one_args_dataclass_with_a_scenario_and_no_sys_path(name):
    text = (AGENTS / f"{name}.py").read_text()
    assert "sys.path.insert" not in text and "import argparse" not in text
    module = load_agent(name)
    assert dataclasses.is_dataclass(module.Args)
    assert "scenario" in {f.name for f in dataclasses.fields(module.Args)}
    module.parse_args([])  # the defaults parse


def _agent_sweeps():
    for path in sorted((ROOT / "scenarios" / "sweeps").glob("*.toml")):
        spec = load_sweep_spec(path)
        if spec.is_agent:
            yield spec


@pytest.mark.parametrize("spec", list(_agent_sweeps()), ids=lambda s: s.name)
def test_agent_sweep_cells_parse_into_the_agents_args(spec, tmp_path):
    """What `flyenv sweep` passes an agent cell (config flags, seed, run dir) parses."""
    module = load_agent(Path(spec.cell).stem)
    for cell in spec.cells()[:1] + spec.cells()[-1:]:
        argv = _agent_flags(cell.config)
        argv += [spec.seed_flag, str(cell.seed), spec.run_dir_flag, str(tmp_path)]
        args = module.parse_args(argv)
        for key, value in cell.config.items():
            if key in ("name", "scenario") or isinstance(value, dict):
                continue
            got = getattr(args, key)
            if isinstance(value, str) and isinstance(got, dict):
                value = json.loads(value)  # a JSON table flag (JsonDict) written as a string
            assert got == value or (isinstance(got, tuple) and list(got) == value), key


def test_agent_flags_of_the_sweep_runner():
    flags = _agent_flags(
        {"name": "x", "steps": 3, "verbose": False, "inner": {"rate_hz": 2.0}, "sizes": [1, 2]}
    )
    assert flags == ["--steps", "3", "--no-verbose", "--inner.rate-hz", "2.0", "--sizes", "1", "2"]
    assert cli(Toy, _agent_flags({"verbose": True, "inner": {"sizes": [5, 6]}})).inner.sizes == (
        5,
        6,
    )
