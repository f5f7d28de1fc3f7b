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


def test_twin_cell_evaluates_a_saved_model_on_other_starts(tmp_path):
    import gymnasium as gym
    from stable_baselines3 import PPO

    from flyenv.evaluation.transfer_cell import twin_cell

    env = gym.make("flyenv/PlumeTracking-kinematic-v0")
    PPO("MlpPolicy", env, n_steps=8, device="cpu").save(tmp_path / "seed_3" / "model.zip")
    config = {
        "agent": str(tmp_path / "seed_{seed}" / "model.zip"),
        "env_kwargs": {"start_crosswind_mm": [-30.0, 30.0]},
        "starts": 4,
        "time_limit_s": 0.1,
    }
    out = twin_cell(config, 3, tmp_path)
    assert out["env_kwargs"]["start_crosswind_mm"] == [-30.0, 30.0]
    assert out["twin_50"]["starts"] == 4 and out["twin_50"]["success_rate"] == 0.0  # 0.1 s
    with pytest.raises(ValueError, match="not a twin id"):
        twin_cell({**config, "env": "flyenv/PlumeTracking-v0"}, 3, tmp_path)
    with pytest.raises(ValueError, match="existing SB3 zip"):
        twin_cell(config, 4, tmp_path)


def test_mujoco_cell_runs_a_spiking_zip_with_a_brain_ablation(tmp_path):
    """``ablation`` lesions the loaded brain as the agents' twin ablation rows do: the
    MBON->DN output is zero in the policy that runs, and the row says which ablation."""
    import gymnasium as gym
    import torch
    from sb3_contrib import RecurrentPPO

    from flyenv.evaluation.transfer_cell import ablated_policy
    from flyenv.rl.recurrent_spiking_policy import RecurrentSpikingPolicy
    from flyenv.rl.sb3_training import policy_brain

    env_kwargs = {"observation": "orn", "odor_names": ["ethyl acetate"]}
    env = gym.make("flyenv/OdorTaxis-kinematic-v0", **env_kwargs)
    model = RecurrentPPO(RecurrentSpikingPolicy, env, n_steps=8, batch_size=8, device="cpu")
    model.flyenv_env_kwargs = env_kwargs
    agent = tmp_path / "seed_5" / "best_model.zip"
    model.save(agent)
    assert policy_brain(model).w_mbon_dn_ipsi.abs().sum() > 0  # the intact brain has an MB output

    policy = ablated_policy(str(agent), "mbon_dn_zeroed")
    brain = policy_brain(policy.model)
    assert torch.count_nonzero(brain.w_mbon_dn_ipsi) == 0
    assert torch.count_nonzero(brain.w_mbon_dn_contra) == 0
    config = {
        "agent": str(tmp_path / "seed_{seed}" / "best_model.zip"),
        "env": "flyenv/OdorTaxis-v0",
        "starts": 1,
        "time_limit_s": 0.05,
        "ablation": "mbon_dn_zeroed",
    }
    out = mujoco_cell(config, 5, tmp_path)
    assert out["ablation"] == "mbon_dn_zeroed" and out["mujoco"]["starts"] == 1
    assert out["env_kwargs"]["observation"] == "orn"
    with pytest.raises(ValueError, match="unknown ablation"):
        mujoco_cell({**config, "ablation": "no_brain"}, 5, tmp_path)
    # the twin cell takes the same key, on the same zip
    from flyenv.evaluation.transfer_cell import twin_cell

    twin = {**config, "env": "flyenv/OdorTaxis-kinematic-v0", "starts": 2, "time_limit_s": 0.1}
    out = twin_cell(twin, 5, tmp_path)
    assert out["ablation"] == "mbon_dn_zeroed" and out["twin_50"]["starts"] == 2
    with pytest.raises(ValueError, match="no mushroom-body gains"):
        twin_cell({**twin, "ablation": "mb_gains_reset"}, 5, tmp_path)
    with pytest.raises(ValueError, match="needs a spiking SB3 zip"):
        mujoco_cell({"agent": "cast_and_surge", "ablation": "mbon_dn_zeroed"}, 5, tmp_path)
