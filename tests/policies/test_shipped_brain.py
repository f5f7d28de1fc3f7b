# moved from tests/test_shipped_brain.py
"""The shipped trained olfactory brain: small, loads, and walks the twin to a close source."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from flyenv.envs.walking_episodes import WalkingEpisodes
from flyenv.policies.loading import build_brain_from_checkpoint, checkpoint_env_kwargs
from flyenv.tasks.base import make_config
from flyenv.tasks.odor_taxis import OdorTaxisConfig, OdorTaxisTask

warnings.filterwarnings("ignore", message=".*Sparse.*")

SHIPPED = Path(__file__).parents[2] / "flyenv" / "data" / "checkpoints" / "olfactory_brain_bptt.pt"
pytestmark = pytest.mark.skipif(not SHIPPED.exists(), reason="no shipped brain checkpoint")


def test_shipped_brain_is_small_and_documents_its_command():
    assert SHIPPED.stat().st_size < 5 * 1024**2
    ck = torch.load(SHIPPED, map_location="cpu", weights_only=False)
    assert ck["command"].startswith("python agents/bptt_odor_taxis.py")
    assert "optimizer_state" not in ck
    readme = (SHIPPED.parent / "README.md").read_text()
    assert ck["command"] in readme


def test_shipped_brain_reaches_a_close_source_in_the_twin():
    torch.set_num_threads(1)
    brain = build_brain_from_checkpoint(SHIPPED)
    env_kwargs = checkpoint_env_kwargs(SHIPPED)
    assert env_kwargs["observation"] == "orn"
    task = make_config(
        OdorTaxisConfig,
        {
            **env_kwargs,
            "time_limit_s": 2.0,
            "source_distance_mm": (8.0, 10.0),
            "start_heading_range_deg": (-45.0, 45.0),
        },
        "test",
    )
    batch = WalkingEpisodes.twin(OdorTaxisTask, 8, task)
    obs, _ = batch.reset(np.random.default_rng(7))
    state = brain.init_state(batch.num_envs)
    reached = torch.zeros(batch.num_envs, dtype=torch.bool)
    with torch.no_grad():
        for _ in range(task.max_episode_steps):
            action, state, _ = brain.step(obs, state)
            obs, _, terminated, _, _ = batch.step(action)
            reached |= terminated
    assert reached.float().mean() >= 0.75, reached
