# moved from tests/test_sb3_agents.py
"""The PPO agent runs end to end on the twin with the spiking policy (tiny config):
checkpoints, best model, learning curve, results, resume; `flyenv record` reads the
env keywords from the saved zip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from agent_scripts import load_agent

from flyenv.policies.loading import checkpoint_env_kwargs
from flyenv.rl import sb3_training as rl


def _agent(name: str):
    return load_agent(name)


@pytest.fixture(scope="module")
def tiny_scenario(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("scn") / "tiny.toml"
    path.write_text(
        "\n".join(
            [
                "[algo]",
                "n_steps = 16",
                "batch_size = 64",
                "n_epochs = 1",
                "[env_kwargs]",
                "time_limit_s = 0.1",
                "[policy_kwargs]",
                "settle_steps = 0",
            ]
        )
    )
    return path


def test_ppo_agent_end_to_end_and_resume(tmp_path, tiny_scenario):
    ppo = _agent("ppo_odor_taxis")
    run = tmp_path / "run"
    argv = ["--scenario", str(tiny_scenario), "--n-envs", "4", "--eval-every", "64"]
    argv += ["--eval-starts", "4", "--mujoco-eval-starts", "0", "--no-video"]
    argv += ["--final-starts", "4", "--final-time-limit-s", "0.1"]
    result = ppo.main([*argv, "--total-timesteps", "128", "--run-dir", str(run)])
    for name in ("best_model.zip", "final_model.zip", "learning_curve.png", "curve.json"):
        assert (run / name).exists(), name
    assert (run / "checkpoints" / "ppo_128_steps.zip").exists()
    saved = json.loads((run / "results.json").read_text())
    assert saved["policy"] == "spiking" and saved["twin_50"]["starts"] == 4
    assert [r["timesteps"] for r in saved["curve"]] == [0, 64, 128]  # step 0 + 2 evaluations
    assert 0.0 <= result["twin_50"]["success_rate"] <= 1.0
    kwargs = checkpoint_env_kwargs(run / "best_model.zip")
    assert kwargs == {"observation": "orn", "odor_names": ("ethyl acetate",)}

    resumed = ppo.main([*argv, "--total-timesteps", "192", "--run-dir", str(run)])
    assert resumed["total_timesteps"] == 192
    assert [r["timesteps"] for r in resumed["curve"]] == [0, 64, 128, 192]


def test_spiking_policy_on_an_env_without_orn_is_refused(tmp_path):
    ppo = _agent("ppo_odor_taxis")
    with pytest.raises(SystemExit, match="MLP policy"):
        ppo.main(["--env", "flyenv/LateralLine-v0", "--run-dir", str(tmp_path)])
    # PlumeTracking gives ORN rates since issue 18: the spiking brain gets the plume's odor
    kwargs = rl.env_kwargs_for("flyenv/PlumeTracking-kinematic-v0", "spiking")
    assert kwargs == {"observation": "orn", "odor_name": "ethyl acetate"}


def test_ppo_agent_trains_in_mujoco_through_subprocesses(tmp_path):
    """The MuJoCo env goes through SubprocVecEnv (one worker per env), spiking policy."""
    ppo = _agent("ppo_odor_taxis")
    scenario = tmp_path / "mj.toml"
    scenario.write_text(
        "[algo]\nn_steps = 16\nbatch_size = 32\nn_epochs = 1\n[env_kwargs]\ntime_limit_s = 0.1\n"
    )
    result = ppo.main(
        ["--env", "flyenv/OdorTaxis-v0", "--scenario", str(scenario), "--n-envs", "2"]
        + ["--total-timesteps", "64", "--eval-every", "32", "--eval-starts", "2"]
        + ["--mujoco-eval-starts", "1", "--final-time-limit-s", "0.1", "--no-video"]
        + ["--run-dir", str(tmp_path / "run")]
    )
    assert result["total_timesteps"] == 64
    assert result["mujoco"]["starts"] == 1 and "twin_50" not in result
    assert (tmp_path / "run" / "best_model.zip").exists()
