"""SB3 features extractor for MLP policies on the odor-intensity observation.

The odor-taxis signal is a left/right difference of ~0.007 (antennae) and ~0.02 (maxillary
palps) in log10 intensity, riding on a level that varies by ~0.2-0.5 across positions
(``flyenv/OdorTaxis-v0`` observation table: per channel L palp, R palp, L antenna,
R antenna, then self-motion). An MLP fed the raw sensors must find a weight of ~100 on
a difference of two nearly equal inputs; SB3's PPO and SAC with the default MLP do not
(0-8 % success after 1M steps, README results table). Per-feature normalisation
(``VecNormalize``) does not help: it rescales each sensor, not their difference.

``BilateralOdorFeatures`` gives the MLP what the fly's antennal lobe computes from
the same sensors (and what the spiking brain gets through its bilateral contrast):
per odor channel the mean level of the four sensors and the left-minus-right difference
of the antennae and of the palps, amplified by ``contrast_gain``; the self-motion
entries pass through. It is a fixed (not learned) linear map, so the MLP still has to
learn the steering from these features.

    PPO("MlpPolicy", env, policy_kwargs=dict(features_extractor_class=BilateralOdorFeatures,
        features_extractor_kwargs=dict(contrast_gain=50.0)))
"""

from __future__ import annotations

import torch
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

SELF_MOTION = 3  # forward, lateral speed, yaw rate: the last entries of the observation


def orn_contrast_features(obs: torch.Tensor, n_glom: int, gain: float) -> torch.Tensor:
    """The ORN observation (``observation="orn"``: G left rates, G right rates, then
    self-motion) as per-glomerulus side mean and ``gain`` x (left - right), then the
    self-motion: same size. The heading is in left-right differences of ~0.1 % of the
    rates; the spiking PPO policy's critic reads this (``critic_contrast_gain``)."""
    left, right = obs[:, :n_glom], obs[:, n_glom : 2 * n_glom]
    return torch.cat([0.5 * (left + right), gain * (left - right), obs[:, 2 * n_glom :]], dim=1)


class BilateralOdorFeatures(BaseFeaturesExtractor):
    """(4C + 3) odor-intensity observation -> (3C + 3) features: per channel
    [mean level, gain x (L - R) antennae, gain x (L - R) palps], then self-motion.

    Args:
        observation_space: the OdorTaxis intensity observation, ``Box((4 C + 3,))``.
        contrast_gain: multiplies the left-right differences (log10-intensity units);
            50 puts a typical antennal difference near 0.3 and a palp one near 1.
    """

    def __init__(self, observation_space: spaces.Box, contrast_gain: float = 50.0) -> None:
        if not isinstance(observation_space, spaces.Box) or len(observation_space.shape) != 1:
            raise ValueError(f"BilateralOdorFeatures needs a flat Box, got {observation_space}")
        n_odor = observation_space.shape[0] - SELF_MOTION
        if n_odor <= 0 or n_odor % 4:
            raise ValueError(
                f"BilateralOdorFeatures reads the odor-intensity observation (4 sensors per "
                f"channel + {SELF_MOTION} self-motion entries); got size "
                f"{observation_space.shape[0]}. For observation='orn' use the spiking policy "
                "or the plain MlpPolicy"
            )
        if not contrast_gain > 0:
            raise ValueError(f"contrast_gain must be > 0, got {contrast_gain}")
        self.channels = n_odor // 4
        super().__init__(observation_space, features_dim=3 * self.channels + SELF_MOTION)
        self.contrast_gain = float(contrast_gain)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        odor = obs[:, : 4 * self.channels].reshape(-1, self.channels, 4)
        level = odor.mean(dim=-1)
        antennae = self.contrast_gain * (odor[..., 2] - odor[..., 3])
        palps = self.contrast_gain * (odor[..., 0] - odor[..., 1])
        odor_features = torch.stack([level, antennae, palps], dim=-1).flatten(1)
        return torch.cat([odor_features, obs[:, 4 * self.channels :]], dim=1)


__all__ = ["BilateralOdorFeatures", "orn_contrast_features"]
