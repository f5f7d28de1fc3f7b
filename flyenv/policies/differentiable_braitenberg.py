"""A Braitenberg vehicle with learnable gains, trainable by BPTT through the twin.

The scripted ``BraitenbergPolicy`` with its constants turned into parameters: each
side's odor reading is a learnable mix of palp and antenna; the turn command is
``tanh(gain * (left - right))`` and sets the two drives around a learnable forward
drive. A small, interpretable baseline for the spiking brain: it shows what BPTT
through the twin learns when the circuit is handed the right structure.
Follows the BPTT policy protocol (``init_state``, ``step``).
"""

from __future__ import annotations

import torch


class DifferentiableBraitenberg(torch.nn.Module):
    def __init__(
        self, odor_channels: int = 1, init_gain: float = 1.0, init_forward: float = 0.0
    ) -> None:
        super().__init__()
        if odor_channels < 1:
            raise ValueError(f"odor_channels must be >= 1, got {odor_channels}")
        self.odor_channels = odor_channels
        self.observation_size = 4 * odor_channels + 3
        # Log-parametrised so the gain stays positive and can grow by orders of magnitude.
        self.log_gain = torch.nn.Parameter(
            torch.full((odor_channels,), float(torch.log(torch.tensor(init_gain))))
        )
        self.antenna_logit = torch.nn.Parameter(torch.zeros(odor_channels))
        self.forward_drive = torch.nn.Parameter(torch.tensor(float(init_forward)))
        self.turn_scale = torch.nn.Parameter(torch.tensor(1.0))

    def init_state(self, batch_size: int) -> None:
        return None

    def step(self, obs: torch.Tensor, state: None) -> tuple[torch.Tensor, None, dict]:
        odor = obs[:, : 4 * self.odor_channels].reshape(-1, self.odor_channels, 4)
        w = torch.sigmoid(self.antenna_logit)[None, :]
        left = (1 - w) * odor[..., 0] + w * odor[..., 2]
        right = (1 - w) * odor[..., 1] + w * odor[..., 3]
        sign = torch.ones(self.odor_channels, device=obs.device)
        if self.odor_channels > 1:
            sign[1:] = -1.0  # aversive channels push the other way (learnable gains)
        drive = (sign * self.log_gain.exp() * (left - right)).sum(dim=1)
        turn = self.turn_scale * torch.tanh(drive)
        action = torch.stack([self.forward_drive - turn, self.forward_drive + turn], dim=1)
        return action.clamp(-1.0, 1.0), None, {}
