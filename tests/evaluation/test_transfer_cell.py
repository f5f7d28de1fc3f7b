"""The MuJoCo transfer cell (flyenv.evaluation.transfer_cell)."""

from __future__ import annotations

import pytest

from flyenv.evaluation.transfer_cell import mujoco_cell


def test_mujoco_cell_runs_an_agent_on_the_mujoco_body(tmp_path):
    config = {"agent": "cast_and_surge", "starts": 1, "time_limit_s": 0.05, "mujoco_seed": 3}
    out = mujoco_cell(config, 10, tmp_path)
    row = out["mujoco"]
    assert row["env_id"] == "flyenv/PlumeTracking-v0" and row["starts"] == 1 and row["seed"] == 3
    assert row["success_rate"] in (0.0, 1.0) and out["env_kwargs"] == {"time_limit_s": 0.05}


def test_mujoco_cell_names_bad_input(tmp_path):
    with pytest.raises(ValueError, match="neither a built-in agent nor an existing file"):
        mujoco_cell({"agent": str(tmp_path / "seed_{seed}/best_model.zip")}, 10, tmp_path)
    with pytest.raises(ValueError, match="twin id"):
        mujoco_cell({"agent": "random", "env": "flyenv/PlumeTracking-kinematic-v0"}, 0, tmp_path)
    with pytest.raises(ValueError, match="unknown mujoco_cell keys"):
        mujoco_cell({"agent": "random", "n_starts": 3}, 0, tmp_path)
