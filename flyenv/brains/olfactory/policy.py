"""The OlfactoryBrain as a policy for BPTT training and for running in envs.

Adapts ``OlfactoryBrain`` to the policy protocol of ``flyenv.training.bptt``
(``init_state``, ``step(obs, state) -> action, state, aux``) and adds the summaries
the loss terms need: the fraction of KCs spiking per brain step (sparsity term) and
per-neuron rates (activity term), both differentiable through surrogate gradients.
With ``record_spikes=True`` it also reports each population's spike counts per agent
step (for raster videos; detached) and, with plasticity on, the DAN rates as
``spikes/DAN`` (DANs are rate units: a raster shows where a rate is above zero).
"""

from __future__ import annotations

from typing import Any

import torch

from flyenv.brains.olfactory.brain import POPULATIONS, OlfactoryBrain, OlfactoryBrainConfig

SELF_MOTION_SIZE = 3

BPTT_BRAIN_DEFAULTS: dict[str, Any] = {
    # 2 ms brain steps, 5 per 10 ms agent step: half the cost of 1 ms x 10, same behaviour
    "dt_ms": 2.0,
    "substeps": 5,
    # antennal-lobe bilateral contrast enhancement + divisive normalisation (model
    # choices, see flyenv.brains.olfactory.brain): the ~1 % left/right ORN difference
    # reaches the PNs amplified ~33x, so the lateral-horn comparator can steer from the start
    "bilateral_contrast": 0.97,
    "divisive_normalisation": True,
    "pn_dn_init_mv": 1.0,
    # locomotor handedness: a slight turn bias, so a fly facing straight away from the
    # source (equal odor on both antennas) still comes round
    "action_bias_asymmetry": 0.2,
}
"""The brain settings of the BPTT agents (and of the RL policies built on the same brain):
overrides of ``OlfactoryBrainConfig`` defaults, each a documented model choice."""


def brain_config(**overrides: Any) -> OlfactoryBrainConfig:
    """Default config with top-level overrides (e.g. ``n_dn_per_side=6``); nested LIF
    fields as ``kc__tau_m_ms=12`` (population__field)."""
    cfg = OlfactoryBrainConfig()
    for key, value in overrides.items():
        if "__" in key:
            pop, field = key.split("__", 1)
            setattr(getattr(cfg, pop), field, value)
        elif hasattr(cfg, key):
            setattr(cfg, key, value)
        else:
            raise ValueError(f"OlfactoryBrainConfig has no field {key!r}")
    return cfg


class OlfactoryBrainPolicy(torch.nn.Module):
    def __init__(self, record_spikes: bool = False, **config_overrides: Any) -> None:
        super().__init__()
        self.config_overrides = dict(config_overrides)
        self.brain = OlfactoryBrain(brain_config(**config_overrides))
        self.observation_size = 2 * self.brain.n_glom + SELF_MOTION_SIZE
        if self.brain.plasticity is not None:
            self.observation_size += 1  # the reinforcement column (OdorConditioning)
        self.record_spikes = record_spikes

    def init_state(self, batch_size: int):
        return self.brain.init_state(batch_size)

    def step(self, obs: torch.Tensor, state) -> tuple[torch.Tensor, Any, dict[str, torch.Tensor]]:
        want_summary = self.training and torch.is_grad_enabled()
        action, state, out = self.brain.step(
            obs, state, record=self.record_spikes, summary=want_summary
        )
        aux: dict[str, torch.Tensor] = {}
        if out is None:
            return action, state, aux
        if want_summary:
            kc = out["rate_hz/KC"]  # (B, 2, n_kc)
            per_step = 1000.0 / self.brain.config.dt_ms
            aux["kc_activity"] = (kc / per_step).mean(dim=(1, 2))  # fraction spiking per brain step
            aux["spike_rate_hz"] = torch.cat(
                [out[f"rate_hz/{p}"].flatten(1) for p in POPULATIONS], dim=1
            )
        if self.record_spikes:
            for p in POPULATIONS:
                aux[f"spikes/{p}"] = out[p].sum(dim=0)  # (B, 2, n) spikes this agent step
            if self.brain.plasticity is not None:  # DANs are rate units: their rates
                dan = state.dan.detach()  # (n_dan, 2B), left-side flies first
                aux["spikes/DAN"] = dan.reshape(dan.shape[0], 2, -1).permute(2, 1, 0)
        return action, state, aux
