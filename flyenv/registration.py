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
    """One registered environment."""

    id: str
    entry_point: str
    description: str
    vector_entry_point: str | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)


ENVS: tuple[EnvEntry, ...] = (
    EnvEntry(
        id="flyenv/OdorTaxis-v0",
        entry_point="flyenv.envs.odor_taxis:OdorTaxisEnv",
        description="NeuroMechFly (MuJoCo, hybrid turning controller) walks to an attractive odor source.",
    ),
    EnvEntry(
        id="flyenv/OdorTaxis-kinematic-v0",
        entry_point="flyenv.envs.odor_taxis_kinematic:OdorTaxisKinematicEnv",
        vector_entry_point="flyenv.envs.odor_taxis_kinematic:OdorTaxisKinematicVectorEnv",
        description="OdorTaxis on the calibrated, differentiable torch twin of the fly (batched).",
    ),
    EnvEntry(
        id="flyenv/PlumeTracking-v0",
        entry_point="flyenv.envs.plume_tracking:PlumeTrackingEnv",
        description="NeuroMechFly (MuJoCo) tracks a wind-borne odor plume upwind to its source; senses odor and wind.",
    ),
    EnvEntry(
        id="flyenv/PlumeTracking-kinematic-v0",
        entry_point="flyenv.envs.plume_tracking_kinematic:PlumeTrackingKinematicEnv",
        vector_entry_point="flyenv.envs.plume_tracking_kinematic:PlumeTrackingKinematicVectorEnv",
        description="PlumeTracking on the calibrated, differentiable torch twin of the fly (batched).",
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


def register_all() -> None:
    """Register every row of ``ENVS`` with gymnasium (idempotent)."""
    for entry in ENVS:
        if entry.id in gym.registry:
            continue
        gym.register(
            id=entry.id,
            entry_point=entry.entry_point,
            vector_entry_point=entry.vector_entry_point,
            kwargs=dict(entry.kwargs),
            # Episode length is set by each env's config in seconds (``time_limit_s``),
            # so no TimeLimit wrapper is added here.
            max_episode_steps=None,
            disable_env_checker=True,
        )
