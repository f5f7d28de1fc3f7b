"""The spiking olfactory brain as the recurrent core of sb3-contrib's RecurrentPPO.

``flyenv.rl.spiking_policy.SpikingActorCriticPolicy`` reruns the brain from rest at
every action, a memoryless map from observation to action. Here the brain's state
(membrane potentials, synaptic currents, refractory counters, the delayed APL spike,
the DN readout low-pass; every tensor of ``BrainState``) is carried from one agent step
to the next and reset to rest where an episode starts, so the policy can integrate
odor over time (an intermittent plume). It is trained with ``sb3_contrib.RecurrentPPO``
unchanged: ``RecurrentSpikingPolicy`` subclasses its ``RecurrentActorCriticPolicy``
and puts the brain where the LSTM was (``policy.lstm_actor`` is a ``SpikingBrainCore``).

Per agent step and env: where ``episode_start`` is 1 the state is set to the brain's
rest state (``OlfactoryBrain.init_state``), then one ``OlfactoryBrain.step`` (``substeps``
brain steps of ``dt_ms``) runs on the observation and its action, ``tanh(readout(DN
rate))``, is the mean of the Gaussian action distribution (state-independent learned
log-std). ``evaluate_actions`` replays RecurrentPPO's padded sequence mini-batches the
way its LSTM path does (``RecurrentActorCriticPolicy._process_sequence``): from the
stored state at each sequence start, step by step, resetting where an episode starts,
with gradients (surrogate spikes) through the whole sequence.

The critic is an MLP over the observation (``net_arch``, default [64, 64]; optionally
on ORN contrast features, ``critic_contrast_gain``). By default it is not recurrent and
never reads the stored states. With ``critic_reads_state`` it also reads the DN readout
rates of the brain state before each step (detached: the value loss does not train the
brain), as sb3-contrib's own LSTM policies give the critic a recurrent state: the value
of a moment depends on what the brain has integrated, not only on the observation. The
rates are the last tensor of ``BrainState``, so they lie in ``vf.c``, which is all that
RecurrentPPO passes to ``predict_values`` (a plastic brain puts its mushroom-body state
after them and is refused).

Hidden-state layout. RecurrentPPO stores, per env and step, ``RNNStates(pi=(h, c),
vf=(h, c))``, four tensors of shape (n_layers, n_envs, hidden) with the same
``hidden`` for actor and critic (its buffer has one shape for all four). The brain
state of one env is packed into them as follows (``SpikingBrainCore.pack``):

1. every tensor of ``BrainState`` in field order (nested ``LIFState`` fields v, i, ref
   in order), each (..., 2B) in the brain's layout (left-side columns first), becomes per
   env (..., 2) flattened row-major (feature, then side): ``S`` floats per env in all;
2. minus the same vector of the rest state, so zeros mean "at rest" (zero today: the
   brain rests at 0; kept in case a state variable gets a non-zero rest value);
3. zero-padded to ``4 H`` with ``H = ceil(S / 4)`` and split into 4 consecutive chunks:
   ``pi.h = [0, H)``, ``pi.c = [H, 2H)``, ``vf.h = [2H, 3H)``, ``vf.c = [3H, 4H)``;
   ``n_layers = 1``.

With the default brain ``S = 16,654`` (the 2 x 2,597 KCs dominate) and ``H = 4,164``:
the rollout buffer holds ``n_steps x n_envs x 16,656`` float32 (273 MB for 128 x 32).
``RecurrentSpikingPolicy.predict`` therefore takes and returns the state as a 4-tuple
of numpy arrays ``(pi.h, pi.c, vf.h, vf.c)`` (sb3-contrib's LSTM policies use a 2-tuple);
``None`` is the rest state. ``evaluate_policy`` and ``RecurrentPPO.predict`` pass it
through unchanged.

Exploration. By default the action is Gaussian around the brain's action with a
state-independent learned log-std, fresh noise at every 10 ms step. With RecurrentPPO's
``use_sde=True`` it is SB3's generalized state-dependent exploration instead (gSDE,
Raffin et al. 2022): noise ``[r, 1] @ M``, where ``r`` are the DN readout rates of the
state before the step (detached, 100 Hz units; rest at an episode start) and ``M`` a
(2 n_dn + 1, 2) matrix drawn from N(0, exp(log_std)^2) once per rollout, or every
``sde_sample_freq`` steps. That is a perturbation of the readout weights and bias held
for a stretch of steps, so the exploration is as slow as the body (the kinematic twin
low-passes the drive; white noise at 10 ms mostly averages out there). The action SD
is ``sqrt(sum_i r_i^2 s_i^2 + s_0^2)``: with DN rates near 0.8 and 8 DNs a log-std of
-1.9 gives about the default's 0.37 at the start.

Which weights learn: ``trainable`` as in ``flyenv.rl.spiking_policy`` (``"mb_output"``
default: KC->MBON, MBON->DN, readout; ``"descending"``, ``"all"`` or name prefixes),
plus the log-std and the critic. ``mirror_readout`` as there.

Brain settings: the BPTT agent's brain (``RECURRENT_BRAIN_DEFAULTS``: 2 ms x 5 steps
per 10 ms action, antennal-lobe contrast and normalisation, handedness), with the
brain's own 50 ms readout low-pass (the stateless policy shortens it to 20 ms so its
30 ms window settles; a carried state needs no such window).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy
from sb3_contrib.common.recurrent.type_aliases import RNNStates
from stable_baselines3.common.distributions import Distribution
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.torch_layers import MlpExtractor
from torch import nn

from flyenv.brains.olfactory.brain import BrainState, OlfactoryBrain
from flyenv.rl.features import orn_contrast_features
from flyenv.rl.spiking_policy import (
    SPIKING_BRAIN_DEFAULTS,
    SpikingActor,
    build_brain_heads,
    check_spiking_policy_options,
)

RECURRENT_BRAIN_DEFAULTS: dict[str, Any] = {
    **SPIKING_BRAIN_DEFAULTS,
    "readout_tau_ms": 50.0,  # OlfactoryBrainConfig's default (module docstring)
}


def _leaves(state: Any) -> list[torch.Tensor]:
    """The tensors of a (nested) state tuple, in field order."""
    if isinstance(state, torch.Tensor):
        return [state]
    if isinstance(state, tuple):
        return [leaf for part in state for leaf in _leaves(part)]
    if state is None:
        return []
    raise TypeError(f"brain state holds a {type(state).__name__}; expected tensors and tuples")


def _rebuild(template: Any, leaves) -> Any:
    """``template``'s structure with its tensors taken in order from the iterator ``leaves``."""
    if isinstance(template, torch.Tensor):
        return next(leaves)
    if isinstance(template, tuple):
        parts = [_rebuild(part, leaves) for part in template]
        return type(template)(*parts) if hasattr(template, "_fields") else tuple(parts)
    return template


def _feature_shapes(state: BrainState) -> list[tuple[int, ...]]:
    """Per-side shape of each tensor of a brain state (its last axis is 2 B)."""
    shapes = []
    for leaf in _leaves(state):
        if leaf.dim() < 1 or leaf.shape[-1] % 2:
            raise ValueError(
                f"a brain state tensor has shape {tuple(leaf.shape)}; the packing needs "
                "(..., 2 B) tensors (left-side columns first)"
            )
        shapes.append(tuple(leaf.shape[:-1]))
    return shapes


class SpikingBrainCore(nn.Module):
    """The recurrent core: an ``OlfactoryBrain`` plus the packing of its state into
    RecurrentPPO's hidden-state tensors (module docstring). Has the attributes
    RecurrentPPO reads from an ``nn.LSTM`` (``num_layers``, ``hidden_size``,
    ``input_size``).

    Args:
        observation_size: flat observation size (its first 2 x n_glom entries are the
            left/right ORN rates).
        brain_config: ``OlfactoryBrainConfig`` overrides on top of ``RECURRENT_BRAIN_DEFAULTS``.
        trainable, mirror_readout: as ``flyenv.rl.spiking_policy.SpikingActor``.
        gradient_horizon_steps: truncated BPTT in ``replay``: the state is detached every
            this many agent steps of a sequence, so each action's gradient reaches back at
            most that far (None: through the whole sequence, as RecurrentPPO's LSTM).
            The forward pass, and so the actions and log-probabilities, are unchanged.
    """

    num_layers = 1

    def __init__(
        self,
        observation_size: int,
        brain_config: dict[str, Any] | None = None,
        trainable: str = "mb_output",
        mirror_readout: bool = False,
        gradient_horizon_steps: int | None = None,
    ) -> None:
        super().__init__()
        if gradient_horizon_steps is not None and gradient_horizon_steps < 1:
            raise ValueError(
                f"gradient_horizon_steps={gradient_horizon_steps}: give a number of agent "
                "steps >= 1, or None for gradients through the whole sequence"
            )
        self.gradient_horizon_steps = gradient_horizon_steps
        overrides = {**RECURRENT_BRAIN_DEFAULTS, **(brain_config or {})}
        # SpikingActor builds the brain, checks the observation and sets requires_grad
        builder = SpikingActor(observation_size, overrides, 0, trainable, mirror_readout)
        self.brain: OlfactoryBrain = builder.brain
        self.input_size = observation_size
        rest = self.rest_state(1)
        for leaf in _leaves(rest):
            if leaf.dim() < 1 or leaf.shape[-1] != 2:
                raise ValueError(
                    f"a brain state tensor of batch 1 has shape {tuple(leaf.shape)}; the "
                    "packing needs (..., 2 B) tensors (left-side columns first)"
                )
        self.state_size = sum(2 * math.prod(f) for f in _feature_shapes(rest))
        self.hidden_size = math.ceil(self.state_size / 4)

    # ------------------------------------------------------------------ state packing
    # The layout is read from a rest state each time, not stored: an ablation on a copy
    # (e.g. ``no_wind_gate``) may drop a state field, and the smaller state still fits
    # the hidden tensors sized at construction.
    def rest_state(self, batch: int, device=None) -> BrainState:
        return self.brain.init_state(batch, device)

    @staticmethod
    def _flat(state: BrainState) -> torch.Tensor:
        """BrainState of batch B -> (B, S), per env (feature, side) row-major per tensor."""
        out = []
        for leaf, f in zip(_leaves(state), _feature_shapes(state), strict=True):
            batch = leaf.shape[-1] // 2
            out.append(leaf.reshape(*f, 2, batch).movedim(-1, 0).reshape(batch, -1))
        return torch.cat(out, dim=1)

    @staticmethod
    def _unflat(flat: torch.Tensor, template: BrainState) -> BrainState:
        """(B, S) -> BrainState of batch B, laid out as ``template`` (a rest state)."""
        batch = flat.shape[0]
        leaves, start = [], 0
        for f in _feature_shapes(template):
            n = 2 * math.prod(f)
            x = flat[:, start : start + n].reshape(batch, *f, 2).movedim(0, -1)
            leaves.append(x.reshape(*f, 2 * batch))
            start += n
        return _rebuild(template, iter(leaves))

    def pack(self, state: BrainState) -> RNNStates:
        """BrainState (batch B) -> ``RNNStates`` of four (1, B, H) tensors (module docstring)."""
        batch = state.rate.shape[1] // 2
        rest = self._flat(self.rest_state(1, state.rate.device))
        offset = self._flat(state) - rest
        pad = 4 * self.hidden_size - offset.shape[1]
        chunks = nn.functional.pad(offset, (0, pad)).reshape(batch, 4, self.hidden_size)
        h_pi, c_pi, h_vf, c_vf = (chunks[:, k][None] for k in range(4))
        return RNNStates((h_pi, c_pi), (h_vf, c_vf))

    def unpack(self, states: RNNStates) -> BrainState:
        """``RNNStates`` of four (1, B, H) tensors -> BrainState (batch B)."""
        parts = (states.pi[0], states.pi[1], states.vf[0], states.vf[1])
        for p in parts:
            if p.shape[0] != 1 or p.shape[-1] != self.hidden_size:
                raise ValueError(
                    f"hidden state of shape {tuple(p.shape)}; the spiking core packs its "
                    f"state into (1, n_envs, {self.hidden_size}) tensors"
                )
        template = self.rest_state(1, parts[0].device)
        rest = self._flat(template)
        flat = torch.cat([p[0] for p in parts], dim=1)[:, : rest.shape[1]]
        return self._unflat(flat + rest, template)

    def rate_offset(self) -> tuple[int, int]:
        """[start, stop) of the DN readout rate (``BrainState.rate``) in the flat packed
        state of one env; the state-reading critic needs it inside ``vf.h``/``vf.c``."""
        rest = self.rest_state(1)
        start = 0
        for name, leaf in zip(rest._fields, rest, strict=True):
            n = sum(2 * math.prod(f) for f in _feature_shapes(leaf)) if leaf is not None else 0
            if name == "rate":
                return start, start + n
            start += n
        raise ValueError("the brain state has no 'rate' field")

    def rate_from_vf(self, vf: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """The DN rates (B, 2 n_dn) of a state from its ``vf`` pair alone (what RecurrentPPO
        passes to ``predict_values``): (feature, side) order, as ``_flat``."""
        start, stop = self.rate_offset()
        lo = 2 * self.hidden_size
        if start < lo:
            raise ValueError(
                "the DN rate is not in the vf half of the packed state (a plastic brain "
                "puts its mushroom-body state after it); critic_reads_state and use_sde "
                "need a brain whose state ends with the rate"
            )
        flat = torch.cat([vf[0][0], vf[1][0]], dim=1)[:, start - lo : stop - lo]
        rest = self._flat(self.rest_state(1, flat.device))[:, start:stop]
        return flat + rest

    def reset(self, state: BrainState, episode_start: torch.Tensor) -> BrainState:
        """Set the envs where ``episode_start`` (B,) is 1 to rest; keep the others."""
        batch = episode_start.shape[0]
        keep = (1.0 - episode_start.to(state.rate.dtype)).repeat(2)  # (2B,): both sides
        rest = _leaves(self.rest_state(batch, state.rate.device))
        leaves = [r + (x - r) * keep for x, r in zip(_leaves(state), rest, strict=True)]
        return _rebuild(state, iter(leaves))

    # ------------------------------------------------------------------ dynamics
    def step(
        self, obs: torch.Tensor, state: BrainState, episode_start: torch.Tensor, params=None
    ) -> tuple[torch.Tensor, BrainState]:
        """One agent step of B envs: reset where an episode starts, then the brain's
        step. Returns the action mean (B, 2) in (-1, 1) and the new state."""
        state = self.reset(state, episode_start)
        action, state, _ = self.brain.step(obs, state, params=params)
        return action, state

    def forward(
        self, obs: torch.Tensor, states: RNNStates, episode_starts: torch.Tensor
    ) -> tuple[torch.Tensor, RNNStates]:
        """Sequences, as ``_process_sequence``: obs (n_seq x T, D) in sequence-major order,
        states from ``pack`` (n_seq columns), episode_starts (n_seq x T,) -> action means
        (n_seq x T, 2) and the packed state after the last step."""
        means, _, state = self.replay(obs, states, episode_starts)
        return means, state

    def replay(
        self, obs: torch.Tensor, states: RNNStates, episode_starts: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, RNNStates]:
        """``forward`` that also returns each step's DN rates before the step (after the
        episode-start reset), detached, (n_seq x T, 2 n_dn): the state-reading critic's input."""
        n_seq = states.pi[0].shape[1]
        obs_seq = obs.reshape(n_seq, -1, obs.shape[-1]).swapaxes(0, 1)  # (T, n_seq, D)
        starts = episode_starts.reshape(n_seq, -1).swapaxes(0, 1)  # (T, n_seq)
        state = self.unpack(states)
        params = self.brain._params()
        means, rates = [], []
        horizon = self.gradient_horizon_steps
        for t, (x, start) in enumerate(zip(obs_seq, starts, strict=True)):
            if horizon is not None and t % horizon == 0:  # truncated BPTT (class docstring)
                state = _rebuild(state, iter([leaf.detach() for leaf in _leaves(state)]))
            state = self.reset(state, start)
            n_dn = state.rate.shape[0]
            rates.append(
                state.rate.detach().reshape(n_dn, 2, n_seq).movedim(-1, 0).reshape(n_seq, -1)
            )
            mean, state, _ = self.brain.step(x, state, params=params)
            means.append(mean)
        out = torch.stack(means).swapaxes(0, 1).reshape(-1, 2)  # sequence-major again
        rate = torch.stack(rates).swapaxes(0, 1).reshape(out.shape[0], -1)
        return out, rate, self.pack(state)


class RecurrentSpikingPolicy(RecurrentActorCriticPolicy):
    """RecurrentPPO policy: Gaussian around the carried-state spiking brain's action,
    MLP value function on the observation (module docstring).

    ``policy_kwargs``: ``brain_config`` (dict), ``trainable``, ``mirror_readout``,
    ``log_std_init`` (default -1), ``net_arch`` (the critic's, default [64, 64]),
    ``critic_contrast_gain`` (as ``SpikingActorCriticPolicy``), ``critic_reads_state``
    (module docstring), ``gradient_horizon_steps`` (``SpikingBrainCore``).
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        lr_schedule,
        brain_config: dict[str, Any] | None = None,
        trainable: str = "mb_output",
        mirror_readout: bool = False,
        net_arch: list[int] | dict[str, list[int]] | None = None,
        log_std_init: float = -1.0,
        critic_contrast_gain: float | None = None,
        critic_reads_state: bool = False,
        gradient_horizon_steps: int | None = None,
        **kwargs: Any,
    ) -> None:
        check_spiking_policy_options(action_space, critic_contrast_gain)
        self.critic_reads_state = bool(critic_reads_state)
        lstm_keys = [k for k in kwargs if "lstm" in k]
        if lstm_keys:
            raise ValueError(f"{lstm_keys}: the recurrent core is the spiking brain, not an LSTM")
        self.brain_config = dict(brain_config or {})
        self.trainable = trainable
        self.mirror_readout = mirror_readout
        self.critic_contrast_gain = critic_contrast_gain
        self.gradient_horizon_steps = gradient_horizon_steps
        # what RecurrentActorCriticPolicy.__init__ sets, without building its LSTMs
        self.shared_lstm = False
        self.enable_critic_lstm = False
        self.lstm_kwargs: dict[str, Any] = {}
        vf = net_arch if isinstance(net_arch, list) else (net_arch or {}).get("vf", [64, 64])
        ActorCriticPolicy.__init__(
            self,
            observation_space,
            action_space,
            lr_schedule,
            net_arch=dict(pi=[], vf=list(vf)),
            log_std_init=log_std_init,
            **kwargs,
        )
        self.critic = None
        self.lstm_critic = None
        self.lstm_hidden_state_shape = (1, 1, self.lstm_actor.hidden_size)
        self.lstm_output_dim = 2

    def _build_mlp_extractor(self) -> None:
        extra = 0
        if self._reads_rate:  # fails early where the rate is not in vf
            core = self.lstm_actor
            core.rate_from_vf(core.pack(core.rest_state(1)).vf)
        if self.critic_reads_state:  # the DN rates of the brain state (module docstring)
            extra = 2 * self.lstm_actor.brain.n_dn
        self.mlp_extractor = MlpExtractor(
            self.features_dim + extra,
            net_arch=self.net_arch,
            activation_fn=self.activation_fn,
            device=self.device,
        )

    def _build(self, lr_schedule) -> None:
        obs_size = int(spaces.flatdim(self.observation_space))
        self.lstm_actor = SpikingBrainCore(
            obs_size,
            self.brain_config,
            self.trainable,
            self.mirror_readout,
            self.gradient_horizon_steps,
        )
        self._build_mlp_extractor()  # the critic's MLP (pi branch is empty)
        build_brain_heads(self, lr_schedule, sde_latent_dim=2 * self.brain.n_dn + 1)

    @property
    def brain(self) -> OlfactoryBrain:
        return self.lstm_actor.brain

    def reset_noise(self, n_envs: int = 1) -> None:
        """New gSDE exploration matrices, drawn without autograd: PPO's loss reads only
        the log-std (through the variance), and graph-free matrices let the policy be
        deep-copied (the ablation evaluation copies the model)."""
        with torch.no_grad():
            super().reset_noise(n_envs)

    @property
    def _reads_rate(self) -> bool:
        """Whether anything reads the DN rates of the state before a step: the
        state-reading critic or the gSDE latent (module docstring)."""
        return self.critic_reads_state or self.use_sde

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            brain_config=self.brain_config,
            trainable=self.trainable,
            mirror_readout=self.mirror_readout,
            critic_contrast_gain=self.critic_contrast_gain,
            critic_reads_state=self.critic_reads_state,
            gradient_horizon_steps=self.gradient_horizon_steps,
            net_arch=self.net_arch["vf"],
        )
        return data

    # ------------------------------------------------------------------ pieces
    def _features(self, obs: torch.Tensor) -> torch.Tensor:
        features = self.extract_features(obs)
        return features[0] if isinstance(features, tuple) else features

    def _values(self, features: torch.Tensor, rate: torch.Tensor | None = None) -> torch.Tensor:
        if self.critic_contrast_gain is not None:
            features = orn_contrast_features(features, self.brain.n_glom, self.critic_contrast_gain)
        if self.critic_reads_state:
            features = torch.cat([features, rate.detach()], dim=-1)
        return self.value_net(self.mlp_extractor.forward_critic(features))

    def _state_rate(self, vf, episode_starts: torch.Tensor) -> torch.Tensor | None:
        """The DN rates of the state before a step (rest where an episode starts), for the
        state-reading critic and the gSDE latent; None where neither is on."""
        if not self._reads_rate:
            return None
        rate = self.lstm_actor.rate_from_vf(vf)
        return rate * (1.0 - episode_starts.reshape(-1, 1).to(rate.dtype))

    def _dist(self, mean: torch.Tensor, rate: torch.Tensor | None) -> Distribution:
        """The action distribution around the brain's action ``mean``. With gSDE its noise
        is ``[rate, 1] @ M`` (module docstring), ``rate`` the DN rates before the step."""
        if not self.use_sde:
            return self.action_dist.proba_distribution(mean, self.log_std)
        latent = torch.cat([rate, torch.ones_like(rate[:, :1])], dim=1)
        return self.action_dist.proba_distribution(mean, self.log_std, latent)

    # ------------------------------------------------------------------ SB3 API
    def forward(
        self,
        obs: torch.Tensor,
        lstm_states: RNNStates,
        episode_starts: torch.Tensor,
        deterministic: bool = False,
    ):
        features = self._features(obs)
        rate = self._state_rate(lstm_states.vf, episode_starts)
        mean, states = self.lstm_actor(features, lstm_states, episode_starts)
        dist = self._dist(mean, rate)
        actions = dist.get_actions(deterministic=deterministic)
        log_prob = dist.log_prob(actions)
        actions = actions.reshape((-1, *self.action_space.shape))
        return actions, self._values(features, rate), log_prob, states

    def get_distribution(
        self, obs: torch.Tensor, lstm_states: RNNStates, episode_starts: torch.Tensor
    ) -> tuple[Distribution, RNNStates]:
        """The action distribution and the new state; ``lstm_states`` is the full
        ``RNNStates`` (all four tensors hold the brain state)."""
        rate = self._state_rate(lstm_states.vf, episode_starts)
        mean, states = self.lstm_actor(self._features(obs), lstm_states, episode_starts)
        return self._dist(mean, rate), states

    def predict_values(self, obs: torch.Tensor, lstm_states=None, episode_starts=None):
        """The MLP critic's value. ``lstm_states``: the ``vf`` pair RecurrentPPO passes; read
        only with ``critic_reads_state`` (the DN rates of the state)."""
        rate = None
        if self.critic_reads_state:
            if episode_starts is None:
                episode_starts = torch.zeros(obs.shape[0], device=obs.device)
            rate = self._state_rate(lstm_states, episode_starts)
        return self._values(self._features(obs), rate)

    def evaluate_actions(
        self,
        obs: torch.Tensor,
        actions: torch.Tensor,
        lstm_states: RNNStates,
        episode_starts: torch.Tensor,
    ):
        features = self._features(obs)
        mean, rate, _ = self.lstm_actor.replay(features, lstm_states, episode_starts)
        dist = self._dist(mean, rate)
        return self._values(features, rate), dist.log_prob(actions), dist.entropy()

    def _predict(self, observation, lstm_states, episode_starts, deterministic=False):
        dist, states = self.get_distribution(observation, lstm_states, episode_starts)
        return dist.get_actions(deterministic=deterministic), states

    def initial_state(self, n_envs: int) -> tuple[np.ndarray, ...]:
        """The rest state of ``n_envs`` envs in ``predict``'s format (all zeros)."""
        return tuple(np.zeros((1, n_envs, self.lstm_actor.hidden_size), np.float32) for _ in "abcd")

    def predict(
        self,
        observation: np.ndarray,
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        """Action and next state. ``state``: ``(pi.h, pi.c, vf.h, vf.c)``, each
        (1, n_envs, H), as returned by the previous call (None: rest); ``episode_start``
        (n_envs,) resets those envs to rest before the step."""
        self.set_training_mode(False)
        obs, vectorized = self.obs_to_tensor(observation)
        n_envs = obs.shape[0]
        if state is None:
            state = self.initial_state(n_envs)
        if len(state) != 4:
            raise ValueError(
                f"the recurrent spiking policy's state is a 4-tuple (pi.h, pi.c, vf.h, vf.c); "
                f"got {len(state)} arrays"
            )
        if episode_start is None:
            episode_start = np.zeros(n_envs, dtype=bool)
        with torch.no_grad():
            t = [
                torch.as_tensor(np.asarray(s), dtype=torch.float32, device=self.device)
                for s in state
            ]
            starts = torch.as_tensor(
                np.asarray(episode_start), dtype=torch.float32, device=self.device
            )
            actions, new = self._predict(
                obs, RNNStates((t[0], t[1]), (t[2], t[3])), starts.reshape(n_envs), deterministic
            )
        out_state = tuple(s.cpu().numpy() for s in (*new.pi, *new.vf))
        actions = actions.cpu().numpy().reshape((-1, *self.action_space.shape))
        actions = np.clip(actions, self.action_space.low, self.action_space.high)
        if not vectorized:
            actions = actions.squeeze(axis=0)
        return actions, out_state


__all__ = ["RECURRENT_BRAIN_DEFAULTS", "RecurrentSpikingPolicy", "SpikingBrainCore"]
