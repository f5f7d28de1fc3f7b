"""The one table of every flyenv environment id.

Each row is registered with gymnasium when ``flyenv`` is imported, so both
``gym.make("flyenv/OdorTaxis-v0")`` (after ``import flyenv``) and
``gym.make("flyenv:flyenv/OdorTaxis-v0")`` (no import) work.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym


@dataclass(frozen=True)
class EnvEntry:
    """One registered environment.

    A walking row names a (task, body) pair and is built by the generic walking env
    classes; an offline row (no body) names its own ``entry_point``.
    """

    id: str
    description: str
    task: str | None = None
    """Walking task class as "module:Class" (a ``flyenv.tasks.base.WalkingTask``)."""
    body: str | None = None
    """"mujoco" (NeuroMechFly), "twin" (the kinematic twin) or None (offline, no body)."""
    twin_of: str | None = None
    """For a twin row: the id of the MuJoCo env it stands in for."""
    entry_point: str | None = None
    """Offline envs only; walking rows use ``WalkingEnv``."""
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def is_walking(self) -> bool:
        return self.task is not None

    @property
    def is_twin(self) -> bool:
        return self.body == "twin"

    @property
    def env_entry_point(self) -> str:
        return "flyenv.envs.walking_env:WalkingEnv" if self.is_walking else str(self.entry_point)

    @property
    def vector_entry_point(self) -> str | None:
        return "flyenv.envs.walking_vector_env:WalkingVectorEnv" if self.is_twin else None

    @property
    def make_kwargs(self) -> dict[str, Any]:
        base = {"task": self.task, "body": self.body} if self.is_walking else {}
        return {**base, **self.kwargs}

    def task_class(self):
        """The walking task class (None for offline rows)."""
        if not self.is_walking:
            return None
        from flyenv.envs.walking_env import resolve_task

        return resolve_task(self.task)

    @property
    def observations(self) -> tuple[str, ...]:
        """Values of the ``observation`` keyword the env supports."""
        task = self.task_class()
        return task.observations if task is not None else ()

    @property
    def doc(self) -> str:
        """The documentation of the row: the task module's docstring for a walking row
        (tables of spaces, reward, start state, episode end), else the env module's."""
        import importlib
        import inspect

        if self.is_walking:
            return inspect.getdoc(importlib.import_module(self.task_class().__module__)) or ""
        module, name = str(self.entry_point).split(":")
        mod = importlib.import_module(module)
        return inspect.getdoc(mod) or inspect.getdoc(getattr(mod, name)) or ""


ENVS: tuple[EnvEntry, ...] = (
    EnvEntry(
        id="flyenv/OdorTaxis-v0",
        task="flyenv.tasks.odor_taxis:OdorTaxisTask",
        body="mujoco",
        description="NeuroMechFly (MuJoCo, hybrid turning controller) walks to an attractive odor source.",
    ),
    EnvEntry(
        id="flyenv/OdorTaxis-kinematic-v0",
        task="flyenv.tasks.odor_taxis:OdorTaxisTask",
        body="twin",
        twin_of="flyenv/OdorTaxis-v0",
        description="OdorTaxis on the calibrated, differentiable torch twin of the fly (batched).",
    ),
    EnvEntry(
        id="flyenv/PlumeTracking-v0",
        task="flyenv.tasks.plume_tracking:PlumeTrackingTask",
        body="mujoco",
        description="NeuroMechFly (MuJoCo) tracks a wind-borne odor plume upwind to its source; senses odor and wind.",
    ),
    EnvEntry(
        id="flyenv/PlumeTracking-kinematic-v0",
        task="flyenv.tasks.plume_tracking:PlumeTrackingTask",
        body="twin",
        twin_of="flyenv/PlumeTracking-v0",
        description="PlumeTracking on the calibrated, differentiable torch twin of the fly (batched).",
    ),
    EnvEntry(
        id="flyenv/OdorChoice-v0",
        task="flyenv.tasks.odor_choice:OdorChoiceTask",
        body="mujoco",
        description="NeuroMechFly (MuJoCo) chooses between two DoOR odors, one rewarded (which is never observed).",
    ),
    EnvEntry(
        id="flyenv/OdorChoice-kinematic-v0",
        task="flyenv.tasks.odor_choice:OdorChoiceTask",
        body="twin",
        twin_of="flyenv/OdorChoice-v0",
        description="OdorChoice on the calibrated, differentiable torch twin of the fly (batched).",
    ),
    EnvEntry(
        id="flyenv/OdorConditioning-v0",
        task="flyenv.tasks.odor_conditioning:OdorConditioningTask",
        body="mujoco",
        description="NeuroMechFly (MuJoCo): an odor paired with sugar or shock, another without, then the two-odor choice.",
    ),
    EnvEntry(
        id="flyenv/OdorConditioning-kinematic-v0",
        task="flyenv.tasks.odor_conditioning:OdorConditioningTask",
        body="twin",
        twin_of="flyenv/OdorConditioning-v0",
        description="OdorConditioning on the calibrated, differentiable torch twin of the fly (batched).",
    ),
    EnvEntry(
        id="flyenv/LateralLine-v0",
        entry_point="flyenv.envs.offline.lateral_line:LateralLineEnv",
        description="Offline fish lateral line: decode a dipole sphere's position from afferent spike counts.",
    ),
    EnvEntry(
        id="flyenv/FiringStatistics-v0",
        entry_point="flyenv.envs.offline.firing_statistics:FiringStatisticsEnv",
        description="Offline: tune an E/I conductance-LIF network's pathway scales to target firing statistics or a teacher.",
    ),
    EnvEntry(
        id="flyenv/WholeBrainActivity-v0",
        entry_point="flyenv.envs.offline.whole_brain_activity:WholeBrainActivityEnv",
        description="Offline whole-brain calcium recording: predict every neuropil's rate at the next frame (teacher-forced or closed loop).",
    ),
)


def entry(env_id: str) -> EnvEntry:
    """The row of ``env_id`` (with or without the "flyenv:" module prefix)."""
    env_id = env_id.split(":", 1)[-1] if env_id.startswith("flyenv:") else env_id
    for e in ENVS:
        if e.id == env_id:
            return e
    raise KeyError(f"unknown env id {env_id!r}; flyenv's ids: {[e.id for e in ENVS]}")


def mujoco_id(env_id: str) -> str:
    """The MuJoCo env a twin id stands in for (a MuJoCo id maps to itself)."""
    row = entry(env_id)
    if row.twin_of is not None:
        return row.twin_of
    if row.body != "mujoco":
        raise ValueError(f"{env_id} has no MuJoCo body")
    return row.id


def register_all() -> None:
    """Register every row of ``ENVS`` with gymnasium (idempotent)."""
    for row in ENVS:
        if row.id in gym.registry:
            continue
        gym.register(
            id=row.id,
            entry_point=row.env_entry_point,
            vector_entry_point=row.vector_entry_point,
            kwargs=row.make_kwargs,
            # Episode length is set by each env's config in seconds (``time_limit_s``),
            # so no TimeLimit wrapper is added here.
            max_episode_steps=None,
            disable_env_checker=True,
        )
