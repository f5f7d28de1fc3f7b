"""Load an ``agents/*.py`` program as a module (agents are single-file scripts, not a
package), for library code and tests that reuse an agent's ``Args`` or functions."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

AGENTS = Path(__file__).resolve().parents[1] / "agents"


def load_agent(name: str) -> ModuleType:
    """``load_agent("ppo_odor_taxis")`` -> the module of ``agents/ppo_odor_taxis.py``.

    Loaded once per process: a second copy would define its dataclasses again, and tyro
    then sees a default (an instance of the first copy's class) that is not of the
    annotated type (the second copy's), which turns nested configs into subcommands.
    """
    path = AGENTS / f"{name}.py"
    if not path.exists():
        known = sorted(p.stem for p in AGENTS.glob("*.py"))
        raise ValueError(f"no agent {name!r} at {path}; agents: {known}")
    loaded = sys.modules.get(name)
    if loaded is not None and Path(getattr(loaded, "__file__", "")) == path:
        return loaded
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and tyro resolve the Args annotations there
    spec.loader.exec_module(module)
    return module
