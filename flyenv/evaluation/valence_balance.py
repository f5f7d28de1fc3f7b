"""Calibrate ``MBPlasticityConfig.avoid_weight``: the weight of the avoidance MBONs that
makes the summed naive valence of odor presentations zero (Aso et al. 2014b: naive odors
drive approach and avoidance MBONs about equally; learning tips the balance).

``balanced_avoid_weight(n_flies, seed)`` runs the training phase of ``OdorConditioning``
(training pairs, no reinforcement, so no plasticity acts) through the untrained plastic
brain of the BPTT agent and returns (approach MBON spikes) / (avoidance MBON spikes).
The calibration never sees held-out pairs. Value used in the docs: 1.589 (64 flies,
seed 99, ``brain_config={"lateral_horn": False, "mbon_dn_init_mv": 0.0}``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from flyenv.envs.walking_episodes import WalkingEpisodes
from flyenv.tasks.base import make_config
from flyenv.tasks.odor_conditioning import OdorConditioningConfig, OdorConditioningTask


@torch.no_grad()
def balanced_avoid_weight(
    n_flies: int = 64,
    seed: int = 99,
    brain_config: dict[str, Any] | None = None,
    plasticity: dict[str, Any] | None = None,
    protocol: dict[str, Any] | None = None,
) -> float:
    from flyenv.brains.olfactory.policy import (
        BPTT_BRAIN_DEFAULTS,
        OlfactoryBrain,
    )
    from flyenv.brains.olfactory.policy import (
        brain_config as cfg_of,
    )

    kwargs = {**BPTT_BRAIN_DEFAULTS, **(brain_config or {}), "plasticity": dict(plasticity or {})}
    brain = OlfactoryBrain(cfg_of(**kwargs))
    env = {"cs_duration_s": 0.5, "gap_s": 0.2, "test_s": 3.0, **(protocol or {})}
    env.update(reinforcement="none", pair_set="train")
    episodes = WalkingEpisodes.twin(
        OdorConditioningTask, n_flies, make_config(OdorConditioningConfig, env, "valence_balance")
    )
    obs, _ = episodes.reset(np.random.default_rng(seed))
    state = brain.init_state(n_flies)
    spikes = torch.zeros(brain.n_mbon)
    while True:
        action, state, rec = brain.step(obs.float(), state, record=True)
        spikes += rec["MBON"].sum((0, 1, 2))
        obs, _, _, _, info = episodes.step(action)
        if bool(info["phase"].all()):  # every fly in the test phase: training is over
            break
    sign = brain.plasticity.valence_sign[0]  # avoid_weight of the config is ignored here
    approach, avoid = float(spikes[sign > 0].sum()), float(spikes[sign < 0].sum())
    if avoid <= 0:
        raise ValueError("no avoidance-MBON spikes in the training phase: nothing to balance")
    return approach / (avoid / float(-sign[sign < 0][0]))
