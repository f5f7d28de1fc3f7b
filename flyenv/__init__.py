"""flyenv: Gymnasium environments for a NeuroMechFly body and spiking connectome brains."""

from __future__ import annotations

import os

# MuJoCo picks its GL backend at import time; headless machines need EGL.
os.environ.setdefault("MUJOCO_GL", "egl")

from flyenv.registration import ENVS, register_all  # noqa: E402

__version__ = "0.1.0"
__all__ = ["ENVS", "register_all", "__version__"]

register_all()
