"""One configuration mechanism for the agents in ``agents/``: a dataclass, TOML, flags.

Every agent is a CleanRL-style program with one ``@dataclass Args`` (a docstring per
field). Its values resolve as

    Args defaults  <  --scenario TOML (the same fields)  <  explicit flags

``load_scenario(path, Args)`` reads a scenario: top-level keys are fields of ``Args``,
a ``[table]`` fills the nested dataclass of that name (``[algo]`` -> ``Args.algo``), and
an unknown key raises ``ScenarioError`` naming it and listing the valid ones (as
``flyenv.envs.odor_task.make_config`` does for env keywords). The key ``agent`` names the
program the scenario is for (``agent = "ppo_odor_taxis"`` -> ``agents/ppo_odor_taxis.py``).

``cli(Args, argv, description=__doc__, agent=...)`` parses flags with tyro (dashed
flags, ``--algo.learning-rate`` for nested fields, ``--flag/--no-flag`` for booleans)
over the scenario named by ``--scenario``. Underscored spellings of a flag
(``--epoch_round1`` for ``--epoch-round1``), flags differing only in case
(``--vth-mv`` for ``--vth-mV``) and the ``aliases`` an agent passes (the published flag
names of the original programs' CLIs, docs/research_systems.md)
are rewritten to tyro's spelling before parsing.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import tomllib
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, Union

import tyro

T = TypeVar("T")

RESERVED_KEYS = ("agent",)
"""Top-level scenario keys that are not fields of ``Args``: ``agent`` names the program."""


class ScenarioError(ValueError):
    """A scenario that does not fit the agent's ``Args``; the message names the key."""


class ScenarioNotFoundError(ScenarioError, FileNotFoundError):
    """A scenario path that is no file (both a ``ScenarioError`` and a ``FileNotFoundError``)."""


JsonDict = Annotated[
    dict[str, Any],
    tyro.constructors.PrimitiveConstructorSpec(
        nargs=1,
        metavar="JSON",
        instance_from_str=lambda args: json.loads(args[0]),
        is_instance=lambda x: isinstance(x, dict),
        str_from_instance=lambda x: [json.dumps(x)],
    ),
]
"""A free-form table: a TOML table in a scenario, one JSON object as a flag
(``--env-kwargs '{"time_limit_s": 5.0}'``)."""


# ------------------------------------------------------------------------ scenarios
def read_toml(path: str | Path) -> dict[str, Any]:
    """A scenario file as a dict; a missing or malformed file raises naming it."""
    path = Path(path)
    if not path.is_file():
        raise ScenarioNotFoundError(f"scenario {path} not found; see scenarios/*.toml")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"malformed scenario {path}: {exc}") from None


def scenario_agent(path: str | Path) -> str | None:
    """The ``agent`` a scenario file names (None if it names none)."""
    return read_toml(path).get("agent")


def load_scenario(
    path: str | Path, cls: type[T], base: T | None = None, *, agent: str | None = None
) -> T:
    """``cls`` (default values, or ``base``) with the scenario's keys set over it.

    Nested tables map to nested dataclass fields; TOML integers fill float fields and
    arrays fill tuple fields. ``agent``: the program loading it; a scenario whose
    ``agent`` key names another program raises."""
    data = read_toml(path)
    named = data.pop("agent", None)
    if agent is not None and named is not None and named != agent:
        raise ScenarioError(
            f"scenario {path} is for agents/{named}.py (agent = {named!r}), not agents/{agent}.py"
        )
    if "scenario" in data:
        raise ScenarioError(f"scenario {path}: a scenario cannot name another scenario")
    return apply_table(cls() if base is None else base, data, str(path))


def apply_table(obj: T, table: Mapping[str, Any], where: str = "scenario", name: str = "") -> T:
    """``dataclasses.replace(obj, **table)`` with nested tables into nested dataclasses,
    type checks, and an error naming unknown keys and listing the valid ones."""
    if not dataclasses.is_dataclass(obj):
        raise TypeError(f"{type(obj).__name__} is not a dataclass")
    fields = {f.name: f for f in dataclasses.fields(obj) if f.init and not f.name.startswith("_")}
    section = f" in [{name}]" if name else ""
    unknown = sorted(set(table) - set(fields))
    if unknown:
        valid = sorted(set(fields) | (set() if name else set(RESERVED_KEYS)) - {"scenario"})
        raise ScenarioError(
            f"{where}: unknown key(s) {unknown}{section}; valid keys{section}: {valid}"
        )
    hints = typing.get_type_hints(type(obj), include_extras=True)
    changes = {}
    for key, value in table.items():
        current = getattr(obj, key)
        dotted = f"{name}.{key}" if name else key
        if dataclasses.is_dataclass(current) and not isinstance(current, type):
            if not isinstance(value, Mapping):
                raise ScenarioError(
                    f"{where}: {dotted} must be a table of {type(current).__name__} fields"
                )
            changes[key] = apply_table(current, value, where, dotted)
        else:
            changes[key] = _coerce(value, hints.get(key, Any), f"{where}: {dotted}")
    return dataclasses.replace(obj, **changes)


def _strip(hint: Any) -> Any:
    while typing.get_origin(hint) is Annotated:
        hint = typing.get_args(hint)[0]
    return hint


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """The TOML value as the field's type (int -> float, array -> tuple); a value of the
    wrong type raises naming the key."""
    hint = _strip(hint)
    origin = typing.get_origin(hint)
    if hint is Any or isinstance(hint, TypeVar):
        return value
    if origin in (Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, where)
            except ScenarioError:
                pass
        raise ScenarioError(f"{where} = {value!r} fits none of {hint}")
    if origin is Literal:
        if value not in typing.get_args(hint):
            raise ScenarioError(f"{where} = {value!r}; choose one of {list(typing.get_args(hint))}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ScenarioError(f"{where} = {value!r} must be true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ScenarioError(f"{where} = {value!r} must be an integer")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ScenarioError(f"{where} = {value!r} must be a number")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ScenarioError(f"{where} = {value!r} must be a string")
        return value
    if hint is Path:
        if not isinstance(value, str):
            raise ScenarioError(f"{where} = {value!r} must be a path (string)")
        return Path(value)
    if origin in (tuple, list) or hint in (tuple, list):
        if not isinstance(value, Sequence) or isinstance(value, str):
            raise ScenarioError(f"{where} = {value!r} must be an array")
        args = typing.get_args(hint)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ScenarioError(f"{where} = {value!r} must have {len(args)} entries")
            items = [_coerce(v, a, where) for v, a in zip(value, args, strict=True)]
        else:
            item = args[0] if args else Any
            items = [_coerce(v, item, where) for v in value]
        return tuple(items) if (origin is tuple or hint is tuple) else list(items)
    if origin is dict or hint is dict:
        if not isinstance(value, Mapping):
            raise ScenarioError(f"{where} must be a table")
        return dict(value)
    return value


# ---------------------------------------------------------------------------- flags
def flag_names(cls: type, prefix: str = "") -> set[str]:
    """Every flag tyro gives ``cls`` (``--a-b``, ``--no-flag``, ``--nested.a-b``)."""
    hints = typing.get_type_hints(cls, include_extras=True)
    out: set[str] = set()
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        hint = hints.get(f.name, Any)
        meta = typing.get_args(hint)[1:] if typing.get_origin(hint) is Annotated else ()
        bare = _strip(hint)
        dashed = f.name.replace("_", "-")
        if isinstance(bare, type) and dataclasses.is_dataclass(bare):
            omit = any(m is tyro.conf.OmitArgPrefixes for m in meta)
            out |= flag_names(bare, prefix if omit else f"{prefix}{dashed}.")
        elif bare is bool:
            out |= {f"--{prefix}{dashed}", f"--{prefix}no-{dashed}"}
        else:
            out.add(f"--{prefix}{dashed}")
    return out


def _key(flag: str) -> str:
    return flag.lower().replace("_", "-")


def normalize_flags(
    argv: Sequence[str], cls: type, aliases: Mapping[str, str] | None = None
) -> list[str]:
    """Rewrite underscored / other-case spellings and ``aliases`` to tyro's flags."""
    valid = flag_names(cls)
    by_key = {_key(f): f for f in valid}
    alias_by_key = {_key(k): v for k, v in (aliases or {}).items()}
    out = []
    for tok in argv:
        if tok.startswith("--") and len(tok) > 2:
            name, eq, rest = tok.partition("=")
            if name not in valid:
                name = alias_by_key.get(_key(name), by_key.get(_key(name), name))
            tok = name + eq + rest
        out.append(tok)
    return out


def _scenario_path(argv: Sequence[str]) -> str | None:
    path = None
    for i, tok in enumerate(argv):
        if tok == "--scenario":
            if i + 1 >= len(argv) or argv[i + 1].startswith("--"):
                raise SystemExit("error: --scenario needs a path (scenarios/*.toml)")
            path = argv[i + 1]
        elif tok.startswith("--scenario="):
            path = tok.split("=", 1)[1]
    return path


def cli(
    cls: type[T],
    argv: Sequence[str] | None = None,
    *,
    description: str | None = None,
    agent: str | None = None,
    aliases: Mapping[str, str] | None = None,
    default: T | None = None,
) -> T:
    """Parse ``argv`` (default ``sys.argv[1:]``) into ``cls``: its defaults (or
    ``default``), then the ``--scenario`` TOML, then the flags. ``cls`` must have a
    ``scenario`` field. Scenario errors exit with the message (no traceback)."""
    if "scenario" not in {f.name for f in dataclasses.fields(cls)}:
        raise TypeError(f"{cls.__name__} needs a `scenario: str | None = None` field")
    argv = normalize_flags(list(sys.argv[1:] if argv is None else argv), cls, aliases)
    base = cls() if default is None else default
    path = _scenario_path(argv)
    if path is not None:
        try:
            base = load_scenario(path, cls, base, agent=agent)
        except ScenarioError as exc:
            raise SystemExit(f"error: {exc}") from None
    if aliases:
        lines = [f"  {old} = {new}" for old, new in aliases.items()]
        description = (description or "") + "\n\nAlso accepted (published flag names):\n"
        description += "\n".join(lines)
    return tyro.cli(cls, args=argv, default=base, description=description)


def explicit_fields(
    argv: Sequence[str], cls: type, aliases: Mapping[str, str] | None = None
) -> set[str]:
    """Top-level fields of ``cls`` that ``argv`` sets by a flag or through its scenario."""
    argv = normalize_flags(argv, cls, aliases)
    given = {tok.split("=", 1)[0] for tok in argv if tok.startswith("--")}
    names = {f.name for f in dataclasses.fields(cls)}
    out = {n for n in names if {f"--{n.replace('_', '-')}", f"--no-{n.replace('_', '-')}"} & given}
    path = _scenario_path(argv)
    if path is not None:
        out |= set(read_toml(path)) & names
    return out
