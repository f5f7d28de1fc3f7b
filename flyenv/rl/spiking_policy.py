"""The spiking olfactory brain as a stable-baselines3 policy (PPO and SAC).

The actor is the bilateral FlyWire mushroom-body brain (``flyenv.brains.olfactory.brain``):
each agent step it runs on the current observation (ORN rates of the two antennas;
the self-motion part of the observation never enters it) and its descending-neuron
(DN) rates, through the brain's own readout, give the action mean. A small MLP critic
sits beside it. Only SB3 extension points are used: ``SpikingActorCriticPolicy``
subclasses ``ActorCriticPolicy`` (PPO, A2C), ``SpikingSACPolicy`` subclasses
``SACPolicy`` and swaps in ``SpikingSACActor``; both save and load with SB3's own
``model.save`` / ``PPO.load`` (the brain's weights and connectome index buffers are in
the policy's state dict, its settings in ``policy_kwargs``).

Recurrent state: a stateless per-step run. SB3's PPO recomputes the log-probability
of stored actions from stored observations alone, and SAC samples transitions at
random from its replay buffer, so the action distribution must be a function of the
observation. Carrying membrane state between agent steps would break that (it needs a
recurrent algorithm and a state stored with every transition). So every call starts
the brain from rest and runs it for ``settle_steps`` control periods on the current
observation (transients of the synaptic currents and the readout low-pass, not read)
plus one control period whose DN rate is read: ``(settle_steps + 1) x substeps`` brain
steps per action, all spiking, gradients by surrogate through every one of them.
The readout low-pass is shortened (``readout_tau_ms`` 20 ms by default) so the DN rate
settles inside that window; the rest of the brain keeps the BPTT agent's defaults.

Which weights learn (``trainable``):

* ``"mb_output"`` (default): KC->MBON magnitudes, MBON->DN weights and the DN readout:
  the mushroom-body output side, where dopamine-gated plasticity acts in the fly.
* ``"descending"``: the above plus the lateral-horn PN->DN weights and the DN tonic drive.
* ``"all"``: every learnable tensor of the brain (time constants, thresholds, ORN gains...).
* a comma-separated list of parameter-name prefixes, e.g. ``"kc_mbon,readout"``.

Bilateral symmetry (``mirror_readout=True``): the two hemispheres share every synaptic
weight of the brain, but its DN readout (DN rates -> left/right drive) is a free 2 x 8
matrix and bias, so learning can give the fly a turning bias: in PPO runs the readout's
common mode drifted one way and the held-out success fell to 0 % as the fly circled.
With ``mirror_readout`` the readout is held equal to its left/right mirror image (a
``torch.nn.utils.parametrize`` parametrization, ``MirrorReadoutWeight``: per DN one
same-side and one opposite-side weight, learned as their mean and half-difference; the
bias keeps its initial left/right difference, the handedness, and only its mean
learns), so everything that learns is bilaterally symmetric, as in the fly.
"""

from __future__ import annotations

from typing import Any

import torch
from gymnasium import spaces
from stable_baselines3.common.distributions import (
    DiagGaussianDistribution,
    SquashedDiagGaussianDistribution,
    StateDependentNoiseDistribution,
)
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.sac.policies import LOG_STD_MAX, LOG_STD_MIN, Actor, SACPolicy
from torch import nn
from torch.nn.utils import parametrize

from flyenv.brains.olfactory.brain import OlfactoryBrain
from flyenv.brains.olfactory.policy import BPTT_BRAIN_DEFAULTS, brain_config
from flyenv.rl.features import orn_contrast_features

SPIKING_BRAIN_DEFAULTS: dict[str, Any] = {
    **BPTT_BRAIN_DEFAULTS,  # the BPTT agent's brain (model choices documented there)
    # stateless run: the readout low-pass must settle within the short window
    "readout_tau_ms": 20.0,
}

TRAINABLE_PRESETS: dict[str, tuple[str, ...]] = {
    "mb_output": ("kc_mbon.", "w_mbon_dn_", "readout."),
    "descending": ("kc_mbon.", "w_mbon_dn_", "readout.", "w_pn_dn_", "dn_tonic"),
    "all": ("",),
}


def trainable_prefixes(trainable: str) -> tuple[str, ...]:
    if trainable in TRAINABLE_PRESETS:
        return TRAINABLE_PRESETS[trainable]
    prefixes = tuple(p.strip() for p in trainable.split(",") if p.strip())
    if not prefixes:
        raise ValueError(
            f"trainable={trainable!r}: use one of {sorted(TRAINABLE_PRESETS)} or a comma-"
            "separated list of brain parameter-name prefixes (e.g. 'kc_mbon,readout')"
        )
    return prefixes


class MirrorReadoutWeight(nn.Module):
    """Parametrization: the (2, 2 n_dn) readout weight is its own mirror image (rows =
    left/right drive swapped, columns = left/right hemisphere DNs swapped), stored as
    (2, n_dn) sum/difference coordinates: per DN the mean ``c`` and the half-difference
    ``d`` of its same-side weight ``a = c + d`` and its opposite-side weight ``b = c - d``.

    Why these coordinates: the left and right DN rates are nearly equal, so a policy
    gradient on ``a`` and on ``b`` is nearly the same (the forward drive) and their
    difference, the steering gain, is a small remainder; Adam scales each stored entry
    by its own gradient size, so with ``d`` stored on its own the steering gain learns
    at the same pace as the forward drive.
    """

    def __init__(self, n_dn: int) -> None:
        super().__init__()
        self.n_dn = n_dn

    def forward(self, cd: torch.Tensor) -> torch.Tensor:
        same, opposite = cd[0] + cd[1], cd[0] - cd[1]
        left = torch.cat([same, opposite])  # left drive <- (left DNs, right DNs)
        right = torch.cat([opposite, same])
        return torch.stack([left, right])

    def right_inverse(self, w: torch.Tensor) -> torch.Tensor:
        n = self.n_dn
        # each weight and its mirror entry averaged (equal in the brain's initial readout)
        same = 0.5 * (w[0, :n] + w[1, n:])
        opposite = 0.5 * (w[0, n:] + w[1, :n])
        return torch.stack([0.5 * (same + opposite), 0.5 * (same - opposite)])


class MirrorReadoutBias(nn.Module):
    """Parametrization: the readout bias's mean learns; its left/right difference (the
    handedness, ``OlfactoryBrainConfig.action_bias_asymmetry``) stays at its initial value."""

    def __init__(self, bias: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("handedness", (bias - bias.flip(0)).detach() / 2)

    def forward(self, b: torch.Tensor) -> torch.Tensor:
        return b.mean().expand(2) + self.handedness


class SpikingActor(nn.Module):
    """Observation -> pre-tanh action (B, 2) from one stateless brain run.

    Args:
        observation_size: size of the flat observation (its first 2 x n_glom entries
            must be the left/right ORN rates: OdorTaxis ``observation="orn"``).
        brain_config: ``OlfactoryBrainConfig`` field overrides on top of
            ``SPIKING_BRAIN_DEFAULTS`` (nested LIF fields as ``kc__tau_m_ms``).
        settle_steps: control periods run before the one whose DN rate is read.
        trainable: which brain weights learn (module docstring).
        mirror_readout: hold the DN readout bilaterally symmetric (module docstring).
    """

    def __init__(
        self,
        observation_size: int,
        brain_config_overrides: dict[str, Any] | None = None,
        settle_steps: int = 2,
        trainable: str = "mb_output",
        mirror_readout: bool = False,
    ) -> None:
        super().__init__()
        if settle_steps < 0:
            raise ValueError(f"settle_steps must be >= 0, got {settle_steps}")
        overrides = {**SPIKING_BRAIN_DEFAULTS, **(brain_config_overrides or {})}
        self.brain = OlfactoryBrain(brain_config(**overrides))
        need = 2 * self.brain.n_glom
        if observation_size < need:
            raise ValueError(
                f"the spiking policy reads ORN rates: it needs observations with >= {need} "
                f"entries (left/right ORN rates of {self.brain.n_glom} glomeruli) but the env "
                f'gives {observation_size}; make the env with observation="orn" and '
                'odor_names=("ethyl acetate",), or use --policy mlp'
            )
        self.settle_steps = settle_steps
        if mirror_readout:
            readout = self.brain.readout
            parametrize.register_parametrization(
                readout, "weight", MirrorReadoutWeight(self.brain.n_dn), unsafe=True
            )
            parametrize.register_parametrization(readout, "bias", MirrorReadoutBias(readout.bias))
        prefixes = trainable_prefixes(trainable)
        names = [n for n, _ in self.brain.named_parameters()]
        if not any(n.startswith(prefixes) for n in names):
            raise ValueError(f"trainable={trainable!r} matches no brain parameter; names: {names}")
        for name, p in self.brain.named_parameters():
            p.requires_grad_(name.startswith(prefixes))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        brain = self.brain
        batch = obs.shape[0]
        state = brain.init_state(batch, obs.device)
        params = brain._params()
        for _ in range(self.settle_steps + 1):
            _, state, _ = brain.step(obs, state, params=params)
        r = state.rate  # (n_dn, 2B) low-pass DN rate, 100 Hz units
        feats = torch.cat([r[:, :batch], r[:, batch:]], dim=0)  # (2 n_dn, B)
        return (brain.readout.weight @ feats + brain.readout.bias[:, None]).t()


def _critic_init(module: nn.Module, gain: float) -> None:
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.orthogonal_(m.weight, gain=gain)
            nn.init.zeros_(m.bias)


def build_brain_heads(
    policy: ActorCriticPolicy, lr_schedule, sde_latent_dim: int | None = None
) -> None:
    """The parts an on-policy spiking policy shares once its brain is built: a 2-D Gaussian
    whose mean is the brain's own action (no action net), the critic's value head
    (orthogonal init on the critic only: the brain keeps its connectome init) and the
    optimiser over every trainable tensor. Call after ``_build_mlp_extractor``.

    ``sde_latent_dim``: with ``policy.use_sde``, SB3's generalized state-dependent
    exploration (``StateDependentNoiseDistribution``) over a latent of this size, whose
    log-std is a (latent, 2) matrix (``full_std``) or (latent, 1)."""
    if policy.use_sde:
        if sde_latent_dim is None:
            raise ValueError(
                "the stateless spiking policy does not support use_sde; leave it False (the "
                "recurrent spiking policy, RecurrentPPO, does)"
            )
        policy.action_dist = StateDependentNoiseDistribution(2, **policy.dist_kwargs)
        policy.action_dist.latent_sde_dim = sde_latent_dim
        cols = 2 if policy.action_dist.full_std else 1
        policy.log_std = nn.Parameter(
            torch.full((sde_latent_dim, cols), float(policy.log_std_init))
        )
        with torch.no_grad():  # as ``reset_noise`` of the recurrent spiking policy
            policy.action_dist.sample_weights(policy.log_std)
    else:
        policy.action_dist = DiagGaussianDistribution(2)
        policy.log_std = nn.Parameter(torch.full((2,), float(policy.log_std_init)))
    policy.action_net = nn.Identity()  # the brain is the action head
    policy.value_net = nn.Linear(policy.mlp_extractor.latent_dim_vf, 1)
    if policy.ortho_init:
        _critic_init(policy.mlp_extractor, 2**0.5)
        _critic_init(policy.value_net, 1.0)
    params = [p for p in policy.parameters() if p.requires_grad]
    policy.optimizer = policy.optimizer_class(params, lr=lr_schedule(1), **policy.optimizer_kwargs)


def check_spiking_policy_options(action_space, critic_contrast_gain) -> None:
    """The options every spiking SB3 policy refuses, each with its fix (``use_sde``:
    ``build_brain_heads``, which knows whether the policy has a gSDE latent)."""
    if critic_contrast_gain is not None and not critic_contrast_gain > 0:
        raise ValueError(
            f"critic_contrast_gain must be > 0 or None (raw observation), got "
            f"{critic_contrast_gain}"
        )
    if not isinstance(action_space, spaces.Box) or action_space.shape != (2,):
        raise ValueError(f"the spiking policy drives a 2-D Box action, got {action_space}")


class SpikingActorCriticPolicy(ActorCriticPolicy):
    """PPO/A2C policy: Gaussian around the spiking brain's action, MLP value function.

    ``policy_kwargs``: ``brain_config`` (dict), ``settle_steps``, ``trainable``,
    ``mirror_readout``, ``log_std_init`` (default -1: std 0.37, exploration that leaves
    the innate taxis visible), ``net_arch`` (the critic's, default [64, 64]),
    ``critic_contrast_gain`` (default None: the critic reads the raw observation).

    The critic and the fly's heading: the value of a state depends on where the source
    is, which the ORN observation holds only as left-right differences of ~0.1-1 % of
    the rates. With ``critic_contrast_gain`` g the critic reads, per glomerulus, the
    mean of the two sides and g x (left - right) (then the self-motion) instead, the
    representation the brain's antennal lobe builds (``BilateralOdorFeatures`` does the
    same for MLP policies on the intensity observation).
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        lr_schedule,
        brain_config: dict[str, Any] | None = None,
        settle_steps: int = 2,
        trainable: str = "mb_output",
        mirror_readout: bool = False,
        net_arch: list[int] | dict[str, list[int]] | None = None,
        log_std_init: float = -1.0,
        critic_contrast_gain: float | None = None,
        **kwargs: Any,
    ) -> None:
        check_spiking_policy_options(action_space, critic_contrast_gain)
        self.brain_config = dict(brain_config or {})
        self.settle_steps = settle_steps
        self.trainable = trainable
        self.mirror_readout = mirror_readout
        self.critic_contrast_gain = critic_contrast_gain
        vf = net_arch if isinstance(net_arch, list) else (net_arch or {}).get("vf", [64, 64])
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            net_arch=dict(pi=[], vf=list(vf)),
            log_std_init=log_std_init,
            **kwargs,
        )

    def _build(self, lr_schedule) -> None:
        self._build_mlp_extractor()  # the critic's MLP (pi branch is empty)
        obs_size = int(spaces.flatdim(self.observation_space))
        self.actor = SpikingActor(
            obs_size, self.brain_config, self.settle_steps, self.trainable, self.mirror_readout
        )
        build_brain_heads(self, lr_schedule)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            brain_config=self.brain_config,
            settle_steps=self.settle_steps,
            trainable=self.trainable,
            mirror_readout=self.mirror_readout,
            critic_contrast_gain=self.critic_contrast_gain,
            net_arch=self.net_arch["vf"],
        )
        return data

    def _distribution(self, features: torch.Tensor) -> DiagGaussianDistribution:
        mean = torch.tanh(self.actor(features))  # the brain's own action, in (-1, 1)
        return self.action_dist.proba_distribution(mean, self.log_std)

    def _values(self, features: torch.Tensor) -> torch.Tensor:
        if self.critic_contrast_gain is not None:
            n_glom = self.actor.brain.n_glom
            features = orn_contrast_features(features, n_glom, self.critic_contrast_gain)
        return self.value_net(self.mlp_extractor.forward_critic(features))

    def _features(self, obs: torch.Tensor) -> torch.Tensor:
        features = self.extract_features(obs)
        return features[0] if isinstance(features, tuple) else features

    def forward(self, obs: torch.Tensor, deterministic: bool = False):
        features = self._features(obs)
        dist = self._distribution(features)
        actions = dist.get_actions(deterministic=deterministic)
        log_prob = dist.log_prob(actions)
        return actions.reshape((-1, *self.action_space.shape)), self._values(features), log_prob

    def evaluate_actions(self, obs: torch.Tensor, actions: torch.Tensor):
        features = self._features(obs)
        dist = self._distribution(features)
        return self._values(features), dist.log_prob(actions), dist.entropy()

    def get_distribution(self, obs: torch.Tensor):
        return self._distribution(self._features(obs))

    def predict_values(self, obs: torch.Tensor) -> torch.Tensor:
        return self._values(self._features(obs))


class SpikingSACActor(Actor):
    """SAC actor: squashed Gaussian whose pre-tanh mean is the spiking brain's readout
    (so the deterministic action is exactly the brain's action) and whose log-std is a
    learned, state-independent vector."""

    def __init__(
        self,
        *args: Any,
        brain_config: dict[str, Any] | None = None,
        settle_steps: int = 2,
        trainable: str = "mb_output",
        mirror_readout: bool = False,
        **kwargs: Any,
    ) -> None:
        kwargs["net_arch"] = []
        super().__init__(*args, **kwargs)
        if self.use_sde:
            raise ValueError("the spiking SAC actor does not support use_sde; leave it False")
        del self.mu, self.log_std  # replaced by the brain and a log-std vector
        self.brain_actor = SpikingActor(
            self.features_dim, brain_config, settle_steps, trainable, mirror_readout
        )
        self.log_std_vector = nn.Parameter(torch.full((2,), float(self.log_std_init)))
        self.action_dist = SquashedDiagGaussianDistribution(2)

    def get_action_dist_params(self, obs):
        features = self.extract_features(obs, self.features_extractor)
        mean = self.brain_actor(features)
        log_std = torch.clamp(self.log_std_vector, LOG_STD_MIN, LOG_STD_MAX)
        return mean, log_std.expand_as(mean), {}


class SpikingSACPolicy(SACPolicy):
    """SAC policy with ``SpikingSACActor``; the twin Q critics stay SB3's MLPs.

    ``policy_kwargs``: ``brain_config``, ``settle_steps``, ``trainable``, ``mirror_readout``, ``log_std_init``
    (default -1), ``net_arch`` (the critics').
    """

    def __init__(
        self,
        *args: Any,
        brain_config: dict[str, Any] | None = None,
        settle_steps: int = 2,
        trainable: str = "mb_output",
        mirror_readout: bool = False,
        log_std_init: float = -1.0,
        **kwargs: Any,
    ) -> None:
        self.spiking_kwargs = dict(
            brain_config=dict(brain_config or {}),
            settle_steps=settle_steps,
            trainable=trainable,
            mirror_readout=mirror_readout,
        )
        super().__init__(*args, log_std_init=log_std_init, **kwargs)

    def make_actor(self, features_extractor=None) -> SpikingSACActor:
        actor_kwargs = self._update_features_extractor(self.actor_kwargs, features_extractor)
        return SpikingSACActor(**actor_kwargs, **self.spiking_kwargs).to(self.device)

    def _build(self, lr_schedule) -> None:
        super()._build(lr_schedule)
        # only the learnable brain weights go to the actor's optimizer
        params = [p for p in self.actor.parameters() if p.requires_grad]
        self.actor.optimizer = self.optimizer_class(
            params, lr=lr_schedule(1), **self.optimizer_kwargs
        )

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(self.spiking_kwargs)
        return data


__all__ = [
    "SPIKING_BRAIN_DEFAULTS",
    "SpikingActor",
    "SpikingActorCriticPolicy",
    "SpikingSACActor",
    "SpikingSACPolicy",
    "TRAINABLE_PRESETS",
]
