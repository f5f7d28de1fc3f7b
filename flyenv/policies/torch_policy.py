"""Run a stateful torch policy (e.g. a spiking brain) in a numpy gymnasium env.

Wraps a module following the BPTT policy protocol (``init_state``, ``step``) into
``policy(obs) -> action`` that carries the brain state from step to step;
``reset()`` starts a new episode (``flyenv.recording.run_episode`` calls it).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


class StatefulTorchPolicy:
    def __init__(
        self, module: torch.nn.Module, device: str = "cpu", keep_records: bool = False
    ) -> None:
        self.module = module.to(device).eval()
        self.device = torch.device(device)
        self.keep_records = keep_records
        self.records: list[dict[str, Any]] = []
        self.reset()

    def reset(self) -> None:
        self.state = self.module.init_state(1)
        self.records = []

    @torch.no_grad()
    def __call__(self, obs: np.ndarray) -> np.ndarray:
        x = torch.as_tensor(np.asarray(obs, dtype=np.float32), device=self.device)[None]
        action, self.state, aux = self.module.step(x, self.state)
        if self.keep_records:
            self.records.append(
                {k: v[0].cpu().numpy() for k, v in aux.items() if torch.is_tensor(v)}
            )
        return action[0].cpu().numpy().astype(np.float32)
