"""Load an ``agents/*.py`` program as a module (agents are scripts, not a package)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

AGENTS = Path(__file__).resolve().parents[1] / "agents"


def load_agent(name: str) -> ModuleType:
    """``load_agent("ppo_odor_taxis")`` -> the module of ``agents/ppo_odor_taxis.py``."""
    spec = importlib.util.spec_from_file_location(name, AGENTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and tyro resolve the Args annotations there
    spec.loader.exec_module(module)
    return module
