"""The RecurrentPPO agent runs end to end on the plume twin with the recurrent spiking
policy (tiny config), and `flyenv record` / `load_policy` run its zip with the state
carried from step to step and reset at each episode."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest
import torch
from agent_scripts import load_agent

import flyenv  # noqa: F401
from flyenv.cli import main as cli_main
from flyenv.policies.loading import checkpoint_env_kwargs, load_policy
from flyenv.policies.sb3_recurrent import RecurrentSB3Policy

PLUME = "flyenv/PlumeTracking-kinematic-v0"


def test_recurrent_ppo_agent_end_to_end_then_record_and_load(tmp_path):
    torch.set_num_threads(1)
    scenario = tmp_path / "tiny.toml"
    scenario.write_text(
        'agent = "recurrent_ppo"\n[algo]\nn_steps = 16\nbatch_size = 32\nn_epochs = 1\n'
        "[env_kwargs]\ntime_limit_s = 0.1\n"
    )
    run = tmp_path / "run"
    argv = ["--scenario", str(scenario), "--n-envs", "4", "--eval-every", "64"]
    argv += ["--eval-starts", "4", "--mujoco-eval-starts", "0", "--no-video"]
    argv += ["--final-starts", "4", "--final-time-limit-s", "0.1", "--run-dir", str(run)]
    # the brain with its wind pathway (PlumeTracking's wind columns), ablated after training
    wind = '{"brain_config": {"wind_obs_columns": [110, 111]}, "trainable": "readout.,w_wind_dn"}'
    argv += ["--policy-kwargs", wind, "--ablations", "no_wind", "no_odor_to_dn"]
    result = load_agent("recurrent_ppo").main([*argv, "--total-timesteps", "128"])
    saved = json.loads((run / "results.json").read_text())
    assert set(saved["ablations"]) == {"no_wind", "no_odor_to_dn"}
    for row in saved["ablations"].values():  # the same test starts as the intact row
        assert row["seed"] == saved["twin_50"]["seed"] and row["starts"] == 4
    assert saved["algo"] == "RecurrentPPO" and saved["policy"] == "recurrent_spiking"
    assert [r["timesteps"] for r in saved["curve"]] == [0, 64, 128]
    assert 0.0 <= result["twin_50"]["success_rate"] <= 1.0
    zip_path = run / "best_model.zip"
    kwargs = checkpoint_env_kwargs(zip_path)
    assert kwargs == {"observation": "orn", "odor_name": "ethyl acetate"}

    # load_policy: a stateful policy whose actions are the brain's own step-by-step rollout
    env = gym.make(PLUME, **kwargs)
    policy = load_policy(str(zip_path), env)
    assert isinstance(policy, RecurrentSB3Policy)
    brain = policy.model.policy.brain
    assert brain.w_wind_dn.abs().sum() > 0  # the ablations ran on copies
    # results.json says where the mushroom-body output ended (here: not trainable)
    contra = saved["brain"]["mbon_dn_contra_mean_mv"]
    assert contra == pytest.approx(float(brain.w_mbon_dn_contra.mean())) and contra < 0
    for _episode in range(2):  # reset() returns the brain to rest
        policy.reset()
        obs, _ = env.reset(seed=3)
        state = brain.init_state(1)
        for _ in range(5):
            with torch.no_grad():
                expected, state, _ = brain.step(torch.as_tensor(obs)[None], state)
            action = policy(obs)
            np.testing.assert_allclose(action, expected[0].numpy(), rtol=0, atol=1e-6)
            obs, *_ = env.step(action)

    out = tmp_path / "rec.mp4"
    extra = '{"time_limit_s": 0.05, "render_width": 160, "render_height": 128}'
    args = ["record", "--env", PLUME, "--agent", str(zip_path), "--out", str(out)]
    assert cli_main([*args, "--env-kwargs", extra]) == 0 and out.exists()


def test_ablations_need_a_spiking_policy_and_known_names():
    import pytest

    parse = load_agent("recurrent_ppo").parse_args
    with pytest.raises(SystemExit, match="spiking policy"):
        parse(["--policy", "mlp_lstm", "--ablations", "no_wind"])
    with pytest.raises(SystemExit, match="unknown --ablations"):
        parse(["--ablations", "no_wings"])


def test_mb_output_summary_reports_effective_weights_and_gains():
    from flyenv.brains.olfactory.brain import OlfactoryBrain, OlfactoryBrainConfig
    from flyenv.rl.sb3_training import mb_output_summary

    brain = OlfactoryBrain(OlfactoryBrainConfig(mb_output_gains=True))
    with torch.no_grad():
        brain.mbon_dn_log_gain.copy_(torch.tensor([2.0, 0.5]).log())
        brain.kc_mbon_log_gain.fill_(np.log(1.5))
        brain.kc_mbon_log_gain[0] = 0.0
    out = mb_output_summary(brain)
    assert out["mbon_dn_gain_ipsi"] == pytest.approx(2.0)
    assert out["mbon_dn_gain_contra"] == pytest.approx(0.5)
    assert out["mbon_dn_ipsi_mean_mv"] == pytest.approx(2.0 * float(brain.w_mbon_dn_ipsi.mean()))
    assert out["mbon_dn_contra_mean_mv"] == pytest.approx(
        0.5 * float(brain.w_mbon_dn_contra.mean())
    )
    assert out["kc_mbon_gain_min"] == pytest.approx(1.0)
    assert out["kc_mbon_gain_max"] == pytest.approx(1.5)
    plain = mb_output_summary(OlfactoryBrain(OlfactoryBrainConfig()))
    assert set(plain) == {"mbon_dn_ipsi_mean_mv", "mbon_dn_contra_mean_mv"}
