"""The flyenv command as a user runs it."""

import json
import subprocess
import sys

import gymnasium as gym
import imageio.v2 as imageio
import numpy as np
import pytest

import flyenv  # noqa: F401
from flyenv.cli import main
from flyenv.policies.loading import load_policy

SMALL = json.dumps({"time_limit_s": 0.08, "render_width": 160, "render_height": 128})


def test_list_shows_every_env_with_shapes(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for entry in flyenv.ENVS:
        assert entry.id in out
    assert "obs (7,) act (2,)" in out


def test_console_script_is_installed():
    out = subprocess.run(
        [sys.executable, "-m", "flyenv.cli", "list", "--no-shapes"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "flyenv/OdorTaxis-v0" in out.stdout


def test_record_random_agent_writes_mp4(tmp_path, capsys):
    out = tmp_path / "random.mp4"
    code = main(
        [
            "record",
            "--env",
            "flyenv/OdorTaxis-v0",
            "--agent",
            "random",
            "--episodes",
            "2",
            "--fps",
            "50",
            "--out",
            str(out),
            "--env-kwargs",
            SMALL,
        ]
    )
    assert code == 0
    frames = [f for f in imageio.get_reader(out, format="FFMPEG")]
    # 2 episodes x (reset + 8 steps) at every 2nd step -> 2 x 5 frames
    assert len(frames) == 10
    assert frames[0].shape == (128, 160, 3)
    assert not list(tmp_path.glob(".*partial*")), "temporary video left behind"
    assert "video:" in capsys.readouterr().out


def test_record_rejects_unknown_agent_and_env(tmp_path):
    with pytest.raises(SystemExit, match="neither a built-in agent"):
        main(
            [
                "record",
                "--agent",
                "nonexistent_agent",
                "--out",
                str(tmp_path / "x.mp4"),
                "--env-kwargs",
                SMALL,
            ]
        )
    with pytest.raises(SystemExit, match="unknown environment"):
        main(["record", "--env", "flyenv/Nope-v0", "--out", str(tmp_path / "x.mp4")])
    with pytest.raises(SystemExit, match="JSON"):
        main(["record", "--env-kwargs", "{bad", "--out", str(tmp_path / "x.mp4")])


def test_sb3_checkpoint_loads_as_agent(tmp_path):
    from stable_baselines3 import PPO

    env = gym.make("flyenv/OdorTaxis-v0", time_limit_s=0.05)
    model = PPO("MlpPolicy", env, n_steps=8, batch_size=8, seed=0, device="cpu")
    model.save(tmp_path / "ppo.zip")
    policy = load_policy(str(tmp_path / "ppo.zip"), env)
    obs, _ = env.reset(seed=0)
    action = policy(obs)
    assert action.shape == (2,)
    np.testing.assert_array_equal(action, model.predict(obs, deterministic=True)[0])
