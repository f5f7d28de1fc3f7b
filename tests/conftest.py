import os

os.environ.setdefault("MUJOCO_GL", "egl")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def odor_env():
    """One shared OdorTaxis env (building the MuJoCo model takes ~2 s)."""
    import gymnasium as gym

    import flyenv  # noqa: F401

    env = gym.make("flyenv/OdorTaxis-v0")
    yield env
    env.close()
