"""Load an ``agents/*.py`` program as a module (``flyenv.agent_scripts``)."""

from flyenv.agent_scripts import AGENTS, load_agent

__all__ = ["AGENTS", "load_agent"]
