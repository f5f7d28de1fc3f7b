"""Bilateral, connectome-constrained spiking olfactory brain
(docs/research_systems.md, olfactory navigation).

Pathway, per side (FlyWire v783 right mushroom body, ``flyenv.connectome``)::

    ORN rates (55 glomeruli) --glomerulus membership, learnable gain >= 0--> 124 PNs
    PN --FlyWire PN->KC (fixed)--> 2,597 KCs <--APL->KC (FlyWire, inhibitory)-- APL
    KC --FlyWire KC->APL--> 1 APL          (feedback inhibition, one step delayed)
    KC --FlyWire KC->MBON (learnable)--> 48 MBONs
    MBONs of both sides (+ PNs of both sides, "lateral horn" shortcut) --> DNs
    DN spikes --low-pass (learnable tau)--> tanh(linear readout) = 2-D drive

Model choices (documented because the data do not contain them):

* Bilateral design. The shipped mushroom body is the right hemisphere only; the left
  one is its mirror image with the SAME weights (the two hemispheres of the fly are
  near mirror-symmetric and sharing halves the parameters). Each side is fed only by
  its own antenna's ORNs; the two sides run as one batch of 2B columns, so a
  bilateral brain costs one pass of the shared kernels.
* DN layer: ``n_dn_per_side`` descending neurons per side (no DN data in the subgraph).
  A DN gets MBON spikes from its own side through ``w_mbon_dn_ipsi`` and from the other
  side through ``w_mbon_dn_contra`` (mirror-symmetric: the left DN's ipsi weights are
  the right DN's). Initialised ipsi-excitatory / contra-inhibitory, so a DN pair is a
  push-pull comparator of the two sides: this is where the brain can express the
  high-gain left/right comparison that steering needs (the antennal difference is
  only ~1-3 % at 15 mm). An optional lateral-horn shortcut (``lateral_horn=True``,
  default) gives the DNs the same ipsi/contra access to PN spikes: innate odor
  attraction in flies runs through the lateral horn, and it carries the bilateral
  difference before the KC expansion sparsifies it. DNs also get a learnable tonic
  synaptic drive so they fire near 80 Hz without odor and both signs of a side
  difference change their rate.
* Wind pathway (optional, off by default: ``wind_obs_columns``): antennal
  mechanosensation -> DNs. Wind deflects the antennae and Johnston's-organ neurons
  encode the deflection direction, so the fly feels wind direction with its antennae
  (Yorozu et al. 2009; Suver et al. 2019), and walking flies turn upwind while they
  smell odor (Alvarez-Salvado et al. 2018). Here each side gets four rectified wind
  channels from two observation columns (wind along the body, positive from behind;
  across it, positive blowing toward the fly's left): "from behind", "from the
  front", "from my side", "from the other side" (the left side's "from my side" is
  the right side's "from the other side": the pathway is mirror-symmetric). They
  drive the side's DNs through one learnable (n_dn, 4) matrix ``w_wind_dn`` shared
  by both sides, kicks in mV per ms like the tonic drive. Initialised as a push-pull
  upwind comparator: "from my side" excites, "from the other side" inhibits
  (``wind_dn_init_mv_per_ms``), so with the crossed readout wind from the left turns
  the fly left, into the wind; the front/behind channels start at 0 unless
  ``wind_surge_init_mv_per_ms`` > 0: "from the front" then excites every DN on both
  sides, and with the all-positive readout the fly walks faster while it faces the
  wind (flies walk faster upwind on odor, Alvarez-Salvado et al. 2018). Optional odor
  gate (``wind_odor_gate``): walking flies turn upwind during and shortly after odor
  and much less in clean air (Alvarez-Salvado et al. 2018, whose upwind drive is a
  slowly decaying odor filter), so the wind channels can be multiplied by
  ``g = m / (m + wind_gate_half_rate)``, where ``m`` is an odor memory: the pooled ORN
  rate (both antennae, all glomeruli) above ``wind_gate_spontaneous`` that rises at
  once with a hit and decays with ``wind_gate_tau_ms`` after it (``m <- max(odor,
  exp(-dt / tau) m)`` per agent step, kept in ``BrainState.odor_trace``). Off, the
  wind always steers. Everything here is a model choice: no JO or wind-pathway neuron
  is in the connectome subgraph, the wind enters as an instantaneous, noiseless rate
  and the gate is a non-spiking transform of the ORN rates.
* Readout: the DN spikes are low-pass filtered (exact exponential, ``readout_tau_ms``,
  learnable) into rates in units of 100 Hz, and ``action = tanh(W r + b)`` with a
  learnable W (2 x 2 n_dn) and b. W starts crossed (left DNs drive the right legs),
  a Braitenberg "approach" wiring, so more odor on the left turns the fly left.
* Input: ORN rates are the mean-field of the ORN population: a deterministic kick of
  ``gain_g x rate_g x dt`` per step into the PNs of glomerulus g (no Poisson input noise
  by default, which would swamp the small bilateral difference). Nothing but the ORN
  rates (and, if an observation vector is given, not even the self-motion part) enters:
  the brain never sees the source direction.
* Antennal lobe (optional, off by default; the BPTT agent turns it on): before the
  PNs, each glomerulus's drive on one side loses ``bilateral_contrast`` x the
  bilateral mean of that glomerulus (and is rescaled so equal sides are unchanged),
  then all drives are divided by the pooled mean ORN rate. Motivation: fly ORNs
  project to both antennal lobes with the ipsilateral side favoured, lateralising the
  PN response (Gaudry et al. 2013), and local-neuron lateral inhibition divisively
  normalises PN drive by total ORN activity (Olsen & Wilson 2008). The strength that
  makes the spiking brain steer from the start (0.97: a left/right difference
  amplified ~33x) is a model choice, stronger than anything measured. It is a
  non-spiking transform of the two antennas' ORN rates only (no source direction);
  everything downstream is spiking. The glomerular pattern of an odor, and so KC
  coding and sparsity, is unchanged when both sides are equal.
* Time: ``dt_ms`` = 1 ms brain steps, ``substeps`` per agent step (10 for the 10 ms
  control period of OdorTaxis). Within a brain step spikes propagate feed-forward
  through all layers; the APL feedback arrives one step later.
* Learnable by default: all time constants and thresholds (log-parametrised), the
  ORN->PN gains, KC->MBON magnitudes (signs and wiring fixed), MBON->DN and PN->DN
  weights (free signs: not data), DN tonic current, readout. PN->KC, KC->APL and
  APL->KC are fixed (``learn_*`` flags).

Ablations (``ablate(brain, name)``, ``ABLATIONS``), controls for which of these parts
do the steering; each changes only its own tensors or config field, in place:

* ``"intact"``: nothing.
* ``"mbon_dn_zeroed"``: MBON->DN weights (ipsi and contra) set to 0: no mushroom-body
  output reaches the DNs.
* ``"no_lateral_horn"``: PN->DN weights (the lateral-horn shortcut) set to 0.
* ``"no_contrast"``: ``config.bilateral_contrast = 0`` (divisive normalisation stays).
* ``"no_handedness_bias"``: the readout bias's left/right antisymmetric part (the
  handedness, ``action_bias_asymmetry`` at init; learned after training) set to 0, both
  entries to their mean.
* ``"no_odor_to_dn"``: both MBON->DN and PN->DN set to 0: the DNs get no odor signal,
  only their tonic drive (the chance level of walking with the handedness curve).
* ``"no_wind"``: the wind->DN weights set to 0 (nothing to do without a wind pathway).
* ``"no_wind_gate"``: ``config.wind_odor_gate = False``: the wind steers in clean air too.
* ``"no_wind_surge"``: the "wind from the front" -> DN weights set to 0 (the upwind
  surge of ``wind_surge_init_mv_per_ms``; learned after training), the steering kept.
* ``"no_drive_floor"``: ``config.drive_floor = None``: either side may drive backward
  (the readout's full tanh range), as without the floor.
* ``"no_plasticity"``: the KC->MBON depression rate set to 0 (plastic brains only): the
  dopamine-gated learning within an episode is off, everything trained stays.
* ``"mb_gains_reset"``: the mushroom-body gains of ``mb_output_gains`` (per-MBON KC->MBON,
  ipsi and contra MBON->DN) put back to 1, their start (brains with the gains only):
  what training changed on the mushroom-body side is undone, everything else it changed
  (e.g. the readout) stays.

Invented parts (model choices, not data): the antennal-lobe contrast stage, the
lateral-horn PN->DN shortcut, the DN layer with its ipsi/contra comparator and tonic
drive, the crossed readout, and the handedness bias. Only the ORN->PN membership, the
PN->KC, KC<->APL and KC->MBON wiring come from FlyWire (and the ORN rates from DoOR).

Dopamine-gated plasticity (optional, ``OlfactoryBrainConfig.plasticity``, off by
default): PAM/PPL1 DANs driven by the reinforcement column of the observation depress
the KC->MBON synapses of their compartments where KCs were recently active (per fly,
in the episode state), and the MBONs' valence-signed output biases the DNs; see
``flyenv.brains.olfactory.plasticity``. Off, none of it exists.

Layout: all populations are (n, 2B) tensors (feature-major; left-side flies in the
first B columns), the layout of the fast sparse kernels; records are (B, 2, n).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from flyenv.brains.core.connectome_layer import ConnectomeLinear
from flyenv.brains.core.neurons import LIFConfig, LIFPopulation, LIFState
from flyenv.brains.olfactory.kc_apl_block import fused_supported, kc_apl_chunk
from flyenv.brains.olfactory.lif_chunk import lif_chunk
from flyenv.brains.olfactory.plasticity import (
    MBPlasticity,
    MBPlasticityConfig,
    as_plasticity_config,
)
from flyenv.connectome.shuffle import degree_preserving_shuffle, strength_preserving_shuffle

POPULATIONS = ("PN", "KC", "APL", "MBON", "DN")
N_WIND_CHANNELS = 4  # per side: wind from behind, from the front, from my side, from the other


def shuffle_bipartite(counts, seed: int, keep_strength: bool = False, post_groups=None):
    """Degree-preserving shuffle of a (pre x post) block between two populations
    (``flyenv.connectome.shuffle``: every pre cell keeps its edges' counts and signs, every
    post cell its number of incoming edges; edges landing on the same pair merge). With
    ``keep_strength`` every post cell also keeps its incoming edges' counts, and with
    ``post_groups`` (a label per post cell) edges stay within their post cell's group."""
    if keep_strength:
        return strength_preserving_shuffle(counts, seed, post_groups)
    if post_groups is not None:
        raise ValueError("post_groups needs keep_strength=True (the stratified shuffle)")
    return degree_preserving_shuffle(counts, seed)


def _lif(**kw) -> LIFConfig:
    return LIFConfig(**kw)


@dataclass
class OlfactoryBrainConfig:
    """Olfactory brain parameters (weights in mV per synapse for kicks into an LIF)."""

    dt_ms: float = 1.0
    substeps: int = 10
    """Brain steps per agent step (agent step = substeps x dt_ms = 10 ms by default)."""
    pn: LIFConfig = field(default_factory=lambda: _lif(tau_m_ms=10.0, tau_syn_ms=5.0))
    kc: LIFConfig = field(default_factory=lambda: _lif(tau_m_ms=10.0, tau_syn_ms=5.0))
    apl: LIFConfig = field(default_factory=lambda: _lif(tau_m_ms=10.0, tau_syn_ms=10.0))
    mbon: LIFConfig = field(default_factory=lambda: _lif(tau_m_ms=10.0, tau_syn_ms=5.0))
    dn: LIFConfig = field(default_factory=lambda: _lif(tau_m_ms=10.0, tau_syn_ms=5.0))
    orn_pn_gain_mv_per_ms: float = 2.0
    """Initial ORN->PN gain: a PN's kick per step is gain x normalised rate x dt."""
    bilateral_contrast: float = 0.0
    """Antennal-lobe contrast enhancement ``c`` in [0, 1): each side's ORN drive of a
    glomerulus minus ``c`` x the bilateral mean of that glomerulus, divided by ``1 - c``
    (so equal sides keep their drive, and a left/right difference is amplified by
    ``1 / (1 - c)``). 0: the plain ipsilateral drive."""
    divisive_normalisation: bool = False
    """Divide the (contrast-enhanced) drive by the bilateral mean ORN rate over all
    glomeruli (+ ``normalisation_sigma``), scaled to ``normalisation_ref``: PN drive that
    is nearly independent of concentration (Olsen & Wilson 2008)."""
    normalisation_sigma: float = 0.02
    normalisation_ref: float = 0.07
    """Mean normalised ORN rate at which divisive normalisation leaves the drive as is."""
    pn_kc_mv_per_syn: float = 0.08
    pn_kc_shuffle_seed: int | None = None
    """Control: a degree-preserving shuffle of the FlyWire PN->KC wiring with this seed
    (``shuffle_bipartite``: every PN keeps its synapse counts, every KC its in-degree,
    which KC gets which PN edge is random). None: the data's wiring."""
    pn_kc_shuffle_keeps_kc_input: bool = False
    """With ``pn_kc_shuffle_seed``: permute PN edges only among edges of equal synapse
    count, so every KC also keeps its total PN input (the plain shuffle gives the weakly
    connected alpha'beta' KCs average-strength edges; docs/results/mushroom_body_learning.md)."""
    pn_kc_shuffle_within_kc_type: bool = False
    """With ``pn_kc_shuffle_keeps_kc_input``: also keep every PN edge within its KC's
    FlyWire cell type (KCg-m, KCab, KCapbp-m, ...), so each PN keeps how much it drives
    each KC type and only which KC of the type it reaches is random."""
    kc_apl_mv_per_syn: float = 0.002
    apl_kc_mv_per_syn: float = 0.1
    kc_mbon_mv_per_syn: float = 0.02
    n_dn_per_side: int = 4
    mbon_dn_init_mv: float = 0.3
    """Scale of the initial MBON->DN weights (ipsi +, contra -)."""
    mbon_dn_contra_init_scale: float = 1.0
    """Scale of the initial contra MBON->DN weights relative to ``mbon_dn_init_mv`` (1:
    the same scale as the ipsi matrix). Above 1 the brain starts with a miscalibrated
    mushroom-body output (too much opposite-side inhibition: at 4 the weak-contrast
    OdorTaxis brain finds the odor on a few % of starts), which only learning on the
    mushroom-body side, or a readout that compensates, can repair."""
    lateral_horn: bool = True
    pn_dn_init_mv: float = 0.3
    dn_tonic_mv_per_ms: float = 0.3
    """Initial tonic drive of the DNs (a kick of this x dt per step; ~1.5 mV steady)."""
    wind_obs_columns: tuple[int, int] | None = None
    """Wind pathway (model choice, module docstring): the observation columns of the wind
    along the body axis (positive: blowing from behind) and across it (positive: blowing
    toward the fly's left), in the observation's units (PlumeTracking
    observation="orn": columns 2 n_glom and 2 n_glom + 1, i.e. (110, 111) with the
    shipped connectome). None (default): the brain gets no wind input."""
    wind_dn_init_mv_per_ms: float = 0.1
    """Initial scale of the wind->DN weights: "wind from my side" +, "from the other
    side" -, per unit of the wind observation (an upwind-turning comparator); 0 starts
    the pathway silent (learnable from zero)."""
    wind_surge_init_mv_per_ms: float = 0.0
    """Initial weight of the "wind from the front" channel onto every DN of both sides:
    facing upwind raises both drives, so the fly walks faster into the wind (with
    ``wind_odor_gate``, only during and shortly after odor: an upwind surge). A model
    choice (module docstring); 0 (default) starts the channel silent, as before."""
    wind_odor_gate: bool = False
    """Gate the wind channels by an odor memory (module docstring): upwind turning
    during and after odor hits, little in clean air. Needs ``wind_obs_columns``."""
    wind_gate_tau_ms: float = 300.0
    """Decay time of the odor memory after a hit (0: no memory, the current step only)."""
    wind_gate_half_rate: float = 0.1
    """Odor memory (pooled ORN rate above spontaneous, normalised rate units) at which
    the gate is one half."""
    wind_gate_spontaneous: float = 0.05
    """Pooled ORN rate counted as clean air (the DoOR spontaneous rate is ~0.04)."""
    readout_tau_ms: float = 50.0
    readout_init: float = 0.25
    drive_floor: float | None = None
    """Lowest drive either side of the readout may send (model choice, off by default:
    None keeps ``tanh``'s range down to -1, a side walking backward). With 0 the
    brain steers by slowing the inner side, not by reversing it: ``action =
    max(tanh(W r + b), drive_floor)``. Turning harder than "inner side stopped" buys
    little yaw in the calibrated body (drives (1, 0): 3.5 rad/s at 13.6 mm/s; (1, -0.5):
    4.6 rad/s at 11.4 mm/s) and costs forward speed. Below the floor the drive's
    gradient is 0. Must lie in [-1, 1). Tried on the plume surge brain and not adopted
    (docs/results/rl.md): at 0 the fly walks faster but turns wider and succeeds less; at
    -0.5 it keeps its success and halves the median-start gap to cast and surge, which its
    odor-steered weave keeps open."""
    action_bias_init: float = -0.3
    action_bias_asymmetry: float = 0.0
    """Initial readout bias is ``action_bias_init + a`` on the left drive and ``- a`` on
    the right (a > 0: a gentle right-handed curve when both sides smell the same).
    Flies have individual locomotor handedness (Buchanan et al. 2015); here it breaks
    the symmetric dead end of facing straight away from the source, where the two
    antennas get the same odor. Learnable like the rest of the bias."""
    learn_pn_kc: bool = False
    learn_kc_apl: bool = False
    learn_apl_kc: bool = False
    learn_kc_mbon: bool = True
    mb_output_gains: bool = False
    """Model choice for learning (off by default: the brain is then exactly the one
    without it): learnable gains on the mushroom-body output side, each starting at 1,
    ``kc_mbon_log_gain`` (one per MBON: scales all of that MBON's KC inputs, as dopamine
    acts compartment by compartment) and ``mbon_dn_log_gain`` (two: the ipsi and the
    contra MBON->DN matrix). Why: a policy gradient spread over thousands of per-synapse
    weights is, per weight, mostly noise, and Adam normalises each weight by its own
    gradient size, so a direction the whole side agrees on (more or less MB output) can
    be lost among them; a gain collects it into one coordinate (as
    ``flyenv.rl.spiking_policy.MirrorReadoutWeight`` does for the readout's steering
    gain). Not in the data: no gain parameter exists in the connectome. Tried under
    RecurrentPPO on OdorTaxis: the gains did not learn either (docs/results/rl.md)."""
    init_seed: int = 0
    """Seed of the random part of the DN-layer initialisation."""
    fused_kernels: bool = True
    """On CPU, run the KC <-> APL loop of each agent step as one compiled autograd node
    (``flyenv.brains.olfactory.kc_apl_block``: same equations and gradients, ~8x less memory).
    False, or tensors on a GPU: the op-by-op torch path (the reference)."""
    plasticity: MBPlasticityConfig | None = None
    """Dopamine-gated KC->MBON plasticity (``flyenv.brains.olfactory.plasticity``). None
    (default): off, the brain is exactly the non-plastic one. Set: the observation must
    carry one more, last, column, the reinforcement in [-1, 1] (sugar +1, shock -1), the
    state holds per-fly plastic KC->MBON factors, KC eligibility traces and DAN rates,
    and MBON output also reaches the DNs as a valence bias."""

    def validate(self) -> None:
        if self.substeps < 1:
            raise ValueError(f"substeps must be >= 1, got {self.substeps}")
        if not self.dt_ms > 0:
            raise ValueError(f"dt_ms must be > 0, got {self.dt_ms}")
        if not 0.0 <= self.bilateral_contrast < 1.0:
            raise ValueError(f"bilateral_contrast must be in [0, 1), got {self.bilateral_contrast}")
        if self.n_dn_per_side < 1:
            raise ValueError(f"n_dn_per_side must be >= 1, got {self.n_dn_per_side}")
        if not self.mbon_dn_contra_init_scale >= 0:
            raise ValueError(
                f"mbon_dn_contra_init_scale must be >= 0 (the sign is set by the contra "
                f"role), got {self.mbon_dn_contra_init_scale}"
            )
        if self.pn_kc_shuffle_within_kc_type and not (
            self.pn_kc_shuffle_seed is not None and self.pn_kc_shuffle_keeps_kc_input
        ):
            raise ValueError(
                "pn_kc_shuffle_within_kc_type is a variant of the strength-preserving "
                "shuffle: set pn_kc_shuffle_seed and pn_kc_shuffle_keeps_kc_input=True too"
            )
        if self.wind_obs_columns is not None:
            cols = tuple(self.wind_obs_columns)
            if len(cols) != 2 or not all(isinstance(c, int) and c >= 0 for c in cols):
                raise ValueError(
                    f"wind_obs_columns must be two non-negative observation column indices "
                    f"(wind along, wind across the body), got {self.wind_obs_columns!r}; "
                    f"PlumeTracking observation='orn' has them at (110, 111)"
                )
            self.wind_obs_columns = (int(cols[0]), int(cols[1]))
            if self.plasticity is not None:
                raise ValueError(
                    "the wind pathway and MB plasticity cannot be combined (OdorConditioning "
                    "has no wind); set wind_obs_columns=None or plasticity=None"
                )
        if self.mb_output_gains and self.plasticity is not None:
            raise ValueError(
                "mb_output_gains and MB plasticity cannot be combined (the plastic factors "
                "already scale KC->MBON); set one of them off"
            )
        if self.drive_floor is not None and not -1.0 <= self.drive_floor < 1.0:
            raise ValueError(
                f"drive_floor must lie in [-1, 1) (the readout's tanh range), got "
                f"{self.drive_floor}; None switches the floor off"
            )
        if self.wind_surge_init_mv_per_ms != 0 and self.wind_obs_columns is None:
            raise ValueError(
                "wind_surge_init_mv_per_ms is a weight of the wind pathway: set "
                "wind_obs_columns (PlumeTracking observation='orn': (110, 111)) or leave it 0"
            )
        if self.wind_odor_gate:
            if self.wind_obs_columns is None:
                raise ValueError("wind_odor_gate=True needs the wind pathway: set wind_obs_columns")
            if self.wind_gate_tau_ms < 0 or not self.wind_gate_half_rate > 0:
                raise ValueError(
                    f"wind_gate_tau_ms must be >= 0 and wind_gate_half_rate > 0, got "
                    f"{self.wind_gate_tau_ms}, {self.wind_gate_half_rate}"
                )
        for name in ("pn", "kc", "apl", "mbon", "dn"):
            lif: LIFConfig = getattr(self, name)
            if abs(lif.dt_ms - self.dt_ms) > 1e-12:
                raise ValueError(
                    f"OlfactoryBrainConfig.{name}.dt_ms={lif.dt_ms} differs from dt_ms="
                    f"{self.dt_ms}; set both to the same step"
                )
            lif.validate()
        self.plasticity = as_plasticity_config(self.plasticity)
        if self.plasticity is not None:
            self.plasticity.validate()


class BrainState(NamedTuple):
    pn: LIFState
    kc: LIFState
    apl: LIFState
    mbon: LIFState
    dn: LIFState
    apl_spikes: torch.Tensor  # (1, 2B) last step's APL spikes (feedback is delayed)
    rate: torch.Tensor  # (n_dn, 2B) low-pass DN rate, units of 100 Hz
    odor_trace: torch.Tensor | None = None  # (1, 2B) odor memory of the wind gate, or None


class PlasticBrainState(NamedTuple):
    """``BrainState`` (same first seven fields) plus the episode state of the plastic
    mushroom body (``OlfactoryBrainConfig.plasticity``)."""

    pn: LIFState
    kc: LIFState
    apl: LIFState
    mbon: LIFState
    dn: LIFState
    apl_spikes: torch.Tensor
    rate: torch.Tensor
    kc_mbon_factor: torch.Tensor  # (n_KC->MBON edges, 2B) plastic factor, 1 = baseline
    kc_eligibility: torch.Tensor  # (n_kc, 2B) KC eligibility trace (spikes)
    dan: torch.Tensor  # (n_dan, 2B) DAN rates of the last agent step

    @property
    def core(self) -> BrainState:
        return BrainState(*self[:7])


class OlfactoryBrain(nn.Module):
    """Bilateral spiking mushroom-body brain: ORN rates -> 2-D descending drive.

    Args:
        config: ``OlfactoryBrainConfig``.
        mushroom_body: a ``MushroomBody`` (default: ``load_mushroom_body()``).
    """

    def __init__(self, config: OlfactoryBrainConfig | None = None, mushroom_body=None) -> None:
        super().__init__()
        cfg = OlfactoryBrainConfig() if config is None else config
        for name in ("pn", "kc", "apl", "mbon", "dn"):  # one dt for all populations
            getattr(cfg, name).dt_ms = cfg.dt_ms
        cfg.validate()
        self.config = cfg
        if mushroom_body is None:
            from flyenv.connectome.mushroom_body import load_mushroom_body

            mushroom_body = load_mushroom_body()
        mb = mushroom_body
        self.glomeruli = tuple(mb.glomeruli)
        self.n_glom = len(self.glomeruli)
        membership = torch.as_tensor(mb.glomerulus_to_pn().toarray(), dtype=torch.float32)
        self.register_buffer("glom_to_pn", membership.t().contiguous())  # (n_PN, n_glom)
        self.n_pn = membership.shape[1]
        self.log_orn_gain = nn.Parameter(
            torch.full((self.n_glom, 1), math.log(cfg.orn_pn_gain_mv_per_ms))
        )
        pn_kc = mb.block("PN", "KC")
        if cfg.pn_kc_shuffle_seed is not None:
            kc_types = None
            if cfg.pn_kc_shuffle_within_kc_type:
                kc_types = np.asarray(mb.neurons.cell_type[mb.populations["KC"]])
            pn_kc = shuffle_bipartite(
                pn_kc, cfg.pn_kc_shuffle_seed, cfg.pn_kc_shuffle_keeps_kc_input, kc_types
            )
        self.pn_kc = ConnectomeLinear(pn_kc, cfg.learn_pn_kc, cfg.pn_kc_mv_per_syn)
        self.kc_apl = ConnectomeLinear(
            mb.block("KC", "APL"), cfg.learn_kc_apl, cfg.kc_apl_mv_per_syn
        )
        self.apl_kc = ConnectomeLinear(
            mb.block("APL", "KC"), cfg.learn_apl_kc, cfg.apl_kc_mv_per_syn
        )
        self.kc_mbon = ConnectomeLinear(
            mb.block("KC", "MBON"), cfg.learn_kc_mbon, cfg.kc_mbon_mv_per_syn
        )
        self.n_kc, self.n_mbon = self.pn_kc.n_post, self.kc_mbon.n_post
        self.n_dn = cfg.n_dn_per_side
        fm = dict(feature_major=True)
        self.pn = LIFPopulation(self.n_pn, cfg.pn, **fm)
        self.kc = LIFPopulation(self.n_kc, cfg.kc, **fm)
        self.apl = LIFPopulation(self.kc_apl.n_post, cfg.apl, **fm)
        self.mbon = LIFPopulation(self.n_mbon, cfg.mbon, **fm)
        self.dn = LIFPopulation(self.n_dn, cfg.dn, **fm)
        gen = torch.Generator().manual_seed(cfg.init_seed)

        def rand(rows: int, cols: int, scale: float) -> torch.Tensor:
            # positive, varied weights: the sign is set by the ipsi/contra role
            return scale * (0.5 + torch.rand(rows, cols, generator=gen)) / math.sqrt(cols)

        self.w_mbon_dn_ipsi = nn.Parameter(rand(self.n_dn, self.n_mbon, cfg.mbon_dn_init_mv))
        contra_mv = cfg.mbon_dn_init_mv * cfg.mbon_dn_contra_init_scale
        self.w_mbon_dn_contra = nn.Parameter(-rand(self.n_dn, self.n_mbon, contra_mv))
        if cfg.mb_output_gains:  # model choice (config docstring); log 0 = gain 1
            self.kc_mbon_log_gain = nn.Parameter(torch.zeros(self.n_mbon))
            self.mbon_dn_log_gain = nn.Parameter(torch.zeros(2))
        if cfg.lateral_horn:
            self.w_pn_dn_ipsi = nn.Parameter(rand(self.n_dn, self.n_pn, cfg.pn_dn_init_mv))
            self.w_pn_dn_contra = nn.Parameter(-rand(self.n_dn, self.n_pn, cfg.pn_dn_init_mv))
        self.dn_tonic = nn.Parameter(torch.full((self.n_dn, 1), cfg.dn_tonic_mv_per_ms))
        if cfg.wind_obs_columns is not None:
            w_wind = torch.zeros(self.n_dn, N_WIND_CHANNELS)
            mag = rand(self.n_dn, 2, cfg.wind_dn_init_mv_per_ms) * math.sqrt(2)  # not / sqrt
            w_wind[:, 2], w_wind[:, 3] = mag[:, 0], -mag[:, 1]
            w_wind[:, 1] = cfg.wind_surge_init_mv_per_ms
            self.w_wind_dn = nn.Parameter(w_wind)
        self.log_readout_tau = nn.Parameter(torch.tensor(math.log(cfg.readout_tau_ms)))
        w = torch.zeros(2, 2 * self.n_dn)
        w[0, self.n_dn :] = cfg.readout_init  # left drive <- right DNs (crossed)
        w[1, : self.n_dn] = cfg.readout_init  # right drive <- left DNs
        self.readout = nn.Linear(2 * self.n_dn, 2)
        with torch.no_grad():
            self.readout.weight.copy_(w)
            a = cfg.action_bias_asymmetry
            self.readout.bias.copy_(torch.tensor([a, -a]) + cfg.action_bias_init)
        self.plasticity = (
            None
            if cfg.plasticity is None
            else MBPlasticity(cfg.plasticity, mb, self.kc_mbon, self.n_dn)
        )

    # ------------------------------------------------------------------ state
    def init_state(
        self, batch: int, device: torch.device | str | None = None
    ) -> BrainState | PlasticBrainState:
        """Rest state of ``batch`` flies; with plasticity, also fresh plastic weights
        (factor 1), zero eligibility and DAN rates (a new episode)."""
        dev = self.glom_to_pn.device if device is None else device
        b2 = 2 * batch
        core = BrainState(
            self.pn.init_state(b2, dev),
            self.kc.init_state(b2, dev),
            self.apl.init_state(b2, dev),
            self.mbon.init_state(b2, dev),
            self.dn.init_state(b2, dev),
            torch.zeros(self.apl.n, b2, device=dev),
            torch.zeros(self.n_dn, b2, device=dev),
            torch.zeros(1, b2, device=dev) if self.config.wind_odor_gate else None,
        )
        if self.plasticity is None:
            return core
        return PlasticBrainState(*core[:7], *self.plasticity.init_state(b2, dev))

    def reinforcement(self, obs: torch.Tensor) -> torch.Tensor:
        """(B,) reinforcement: the last column of an observation (B, 2 n_glom + k + 1)."""
        g = self.n_glom
        if obs.dim() != 2 or obs.shape[1] < 2 * g + 1:
            raise ValueError(
                f"a plastic OlfactoryBrain needs an observation (B, >= {2 * g + 1}): "
                f"{2 * g} left/right ORN rates, self-motion, then the reinforcement in "
                f"[-1, 1] as the last column (OdorConditioning); got {tuple(obs.shape)}"
            )
        return obs[:, -1]

    def orn_rates(self, obs: torch.Tensor) -> torch.Tensor:
        """(B, 2, n_glom) ORN rates from (B, 2, n_glom) or an OdorTaxis observation
        (B, 2 n_glom + k), whose first 2 n_glom entries are left then right ORN rates."""
        g = self.n_glom
        if obs.dim() == 3 and obs.shape[1:] == (2, g):
            return obs
        if obs.dim() == 2 and obs.shape[1] >= 2 * g:
            return obs[:, : 2 * g].reshape(-1, 2, g)
        raise ValueError(
            f"OlfactoryBrain needs ORN rates (B, 2, {g}) or an observation (B, >= {2 * g}) "
            f"whose first {2 * g} entries are left/right ORN rates (OdorTaxis "
            f'observation="orn"); got shape {tuple(obs.shape)}'
        )

    def wind_channels(self, obs: torch.Tensor) -> torch.Tensor:
        """(4, 2B) rectified wind channels per side from the observation's wind columns:
        from behind, from the front, from my side, from the other side (module docstring)."""
        cols = self.config.wind_obs_columns
        if obs.dim() != 2 or obs.shape[1] <= max(cols):
            raise ValueError(
                f"this brain's wind pathway reads observation columns {cols}, but the "
                f"observation has shape {tuple(obs.shape)}; use PlumeTracking "
                f'observation="orn" (wind at columns {2 * self.n_glom}, {2 * self.n_glom + 1}) '
                f"or set wind_obs_columns=None"
            )
        along, across = obs[:, cols[0]], obs[:, cols[1]]
        # across > 0 blows toward the left, i.e. comes from the right side
        from_side = torch.cat([-across, across])  # (2B,): left flies, then right flies
        along2 = torch.cat([along, along])
        return torch.stack(
            [along2.clamp(min=0), (-along2).clamp(min=0), from_side.clamp(min=0),
             (-from_side).clamp(min=0)]
        )  # fmt: skip

    def _odor_gate(
        self, rates: torch.Tensor, trace: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Wind gate (1, 2B) and the new odor memory from the raw ORN rates (n_glom, 2B)
        (module docstring); the same on both sides of a fly."""
        cfg = self.config
        pooled = 0.5 * (rates + self._swap(rates)).mean(dim=0, keepdim=True)
        odor = (pooled - cfg.wind_gate_spontaneous).clamp(min=0.0)
        if trace is None:
            raise ValueError("a brain with wind_odor_gate needs its odor_trace: use init_state")
        period_ms = cfg.substeps * cfg.dt_ms
        decay = math.exp(-period_ms / cfg.wind_gate_tau_ms) if cfg.wind_gate_tau_ms > 0 else 0.0
        trace = torch.maximum(odor, decay * trace)
        return trace / (trace + cfg.wind_gate_half_rate), trace

    def _params(self) -> dict:
        """Everything derived from parameters that is constant over a sequence."""
        tau = self.log_readout_tau.exp()
        return dict(
            pn=self.pn.coefficients(),
            kc=self.kc.coefficients(),
            apl=self.apl.coefficients(),
            mbon=self.mbon.coefficients(),
            dn=self.dn.coefficients(),
            pn_kc=self.pn_kc.values(),
            kc_apl=self.kc_apl.values(),
            apl_kc=self.apl_kc.values(),
            kc_mbon=self._kc_mbon_values(),
            mbon_dn=self.mbon_dn_weights(),
            orn_gain=self.log_orn_gain.exp(),
            decay=torch.exp(-self.config.dt_ms / tau),
        )

    def _kc_mbon_values(self) -> torch.Tensor:
        values = self.kc_mbon.values()
        if self.config.mb_output_gains:
            values = values * self.kc_mbon_log_gain.exp()[self.kc_mbon.post]
        return values

    def mbon_dn_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(ipsi, contra) MBON->DN matrices, with their gains when ``mb_output_gains``."""
        if not self.config.mb_output_gains:
            return self.w_mbon_dn_ipsi, self.w_mbon_dn_contra
        g = self.mbon_dn_log_gain.exp()
        return g[0] * self.w_mbon_dn_ipsi, g[1] * self.w_mbon_dn_contra

    # ------------------------------------------------------------------ dynamics
    def _antennal_lobe(self, rates: torch.Tensor) -> torch.Tensor:
        """Bilateral contrast enhancement and divisive normalisation of the ORN drive
        (n_glom, 2B) -> (n_glom, 2B); the identity with the default config."""
        cfg = self.config
        c = cfg.bilateral_contrast
        if c == 0.0 and not cfg.divisive_normalisation:
            return rates
        both = 0.5 * (rates + self._swap(rates))  # bilateral mean per glomerulus
        out = (rates - c * both) / (1.0 - c) if c else rates
        if cfg.divisive_normalisation:
            pooled = both.mean(dim=0, keepdim=True)  # (1, 2B), same on both sides
            out = (
                out
                * (cfg.normalisation_ref + cfg.normalisation_sigma)
                / (pooled + cfg.normalisation_sigma)
            )
        return out

    @staticmethod
    def _swap(x: torch.Tensor) -> torch.Tensor:
        """Exchange the left and right halves of the 2B columns (the other side), on
        the last axis of (n, 2B) or of a (T, n, 2B) sequence."""
        b = x.shape[-1] // 2
        return torch.cat([x[..., b:], x[..., :b]], dim=-1)

    def _brain_step(
        self,
        x_pn: torch.Tensor,
        st: BrainState,
        p: dict,
        rec: dict | None,
        acc: dict | None = None,
        plastic: dict | None = None,
        x_dn_ext: torch.Tensor | None = None,
    ):
        pn, kc = self.pn, self.kc
        s_pn, pn_st = pn.step(x_pn, st.pn, coeffs=p["pn"])
        x_kc = self.pn_kc.forward_t(s_pn, p["pn_kc"], binary=True)
        x_kc = x_kc + self.apl_kc.forward_t(st.apl_spikes, p["apl_kc"], binary=True)
        s_kc, kc_st = kc.step(x_kc, st.kc, coeffs=p["kc"])
        s_apl, apl_st = self.apl.step(
            self.kc_apl.forward_t(s_kc, p["kc_apl"], binary=True), st.apl, coeffs=p["apl"]
        )
        if plastic is None:
            x_mbon = self.kc_mbon.forward_t(s_kc, p["kc_mbon"], binary=True)
        else:  # per-fly plastic weights; KC spikes summed for the eligibility trace
            x_mbon = self.plasticity.kc_mbon_input(s_kc, p["kc_mbon"], plastic["factors"])
            plastic["kc_count"] = plastic["kc_count"] + s_kc if "kc_count" in plastic else s_kc
        s_mbon, mbon_st = self.mbon.step(x_mbon, st.mbon, coeffs=p["mbon"])
        s_dn, dn_st, rate = self._dn_step(s_pn, s_mbon, st.dn, st.rate, p, x_dn_ext)
        if rec is not None:
            for name, s in zip(POPULATIONS, (s_pn, s_kc, s_apl, s_mbon, s_dn), strict=True):
                rec[name].append(s.detach())
        if acc is not None:  # differentiable spike counts for activity losses
            for name, s in zip(POPULATIONS, (s_pn, s_kc, s_apl, s_mbon, s_dn), strict=True):
                acc[name] = acc[name] + s if name in acc else s
        return BrainState(pn_st, kc_st, apl_st, mbon_st, dn_st, s_apl, rate)

    def _use_fused(self, x: torch.Tensor) -> bool:
        if not self.config.fused_kernels or any(
            lay.lora_rank for lay in (self.pn_kc, self.apl_kc, self.kc_apl, self.kc_mbon)
        ):
            return False
        return fused_supported((self.pn, self.kc, self.apl, self.mbon, self.dn), x)

    def _dn_kicks(
        self,
        s_pn: torch.Tensor,
        s_mbon: torch.Tensor,
        x_dn_ext: torch.Tensor | None = None,
        mbon_dn: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """DN input from MBON (and lateral-horn PN) spikes of both sides, the tonic drive
        and ``x_dn_ext`` (the wind kicks, constant over the agent step; None: none):
        (n, 2B) for one step or (T, n, 2B) for a chunk at once. ``mbon_dn``: the
        (ipsi, contra) matrices cached in ``_params()`` (computed if None)."""
        w_ipsi, w_contra = self.mbon_dn_weights() if mbon_dn is None else mbon_dn
        x_dn = w_ipsi @ s_mbon + w_contra @ self._swap(s_mbon)
        if self.plasticity is not None:  # valence bias: signed MBON sum, ipsi/contra
            v = self.plasticity.valence(s_mbon)
            pl = self.plasticity
            x_dn = x_dn + pl.w_valence_ipsi * v + pl.w_valence_contra * self._swap(v)
        if self.config.lateral_horn:
            x_dn = x_dn + self.w_pn_dn_ipsi @ s_pn + self.w_pn_dn_contra @ self._swap(s_pn)
        x_dn = x_dn + self.dn_tonic * self.config.dt_ms
        return x_dn if x_dn_ext is None else x_dn + x_dn_ext

    def _dn_step(self, s_pn, s_mbon, st_dn, rate, p, x_dn_ext):
        """DN layer and readout rate for one brain step."""
        x_dn = self._dn_kicks(s_pn, s_mbon, x_dn_ext, p["mbon_dn"])
        s_dn, dn_st = self.dn.step(x_dn, st_dn, coeffs=p["dn"])
        d = p["decay"]
        rate = d * rate + (1.0 - d) * s_dn * (10.0 / self.config.dt_ms)  # 100 Hz units
        return s_dn, dn_st, rate

    def _chunk_fused(
        self,
        x_pn: torch.Tensor,
        st: BrainState,
        p: dict,
        rec,
        acc,
        plastic: dict | None = None,
        x_dn_ext: torch.Tensor | None = None,
    ) -> BrainState:
        """``substeps`` brain steps, population by population: the circuit is
        feed-forward except for the KC <-> APL loop, so each population runs the whole
        chunk in one compiled autograd node, in order: PN, the KC/APL loop (which also
        sums the KC->MBON kicks), MBON, DN (kicks batched over the chunk), and the
        readout filter in closed form. Same result as ``_brain_step`` repeated. With
        ``plastic``, the KC spikes leave the kernel and the KC->MBON kicks are computed
        with the per-fly plastic weights outside it (the kernel's shared ones unused)."""
        n = self.config.substeps
        km = p["kc_mbon"] if plastic is None else p["kc_mbon"].detach()
        s_pn, pn_st = lif_chunk(self.pn, x_pn.expand(n, *x_pn.shape), st.pn, p["pn"])
        s_kc, x_mbon, s_apl, kc_st, apl_st = kc_apl_chunk(
            s_pn, self.kc, self.apl, st.kc, st.apl, st.apl_spikes, p["kc"], p["apl"],
            self.pn_kc, self.apl_kc, self.kc_apl, self.kc_mbon,
            p["pn_kc"], p["apl_kc"], p["kc_apl"], km,
            want_kc_spikes=rec is not None or acc is not None or plastic is not None,
        )  # fmt: skip
        if plastic is not None:
            x_mbon = self.plasticity.kc_mbon_input(s_kc, p["kc_mbon"], plastic["factors"])
            plastic["kc_count"] = s_kc.sum(0)
        s_mbon, mbon_st = lif_chunk(self.mbon, x_mbon, st.mbon, p["mbon"])
        x_dn = self._dn_kicks(s_pn, s_mbon, x_dn_ext, p["mbon_dn"])
        s_dn, dn_st = lif_chunk(self.dn, x_dn, st.dn, p["dn"])
        # readout low-pass at the end of the chunk: the same recursion, summed in closed form
        d = p["decay"]
        weights = d ** torch.arange(n - 1, -1, -1, dtype=s_dn.dtype)  # d^(n-1-t)
        drive = (weights[:, None, None] * s_dn).sum(0)
        rate = d**n * st.rate + (1.0 - d) * (10.0 / self.config.dt_ms) * drive
        seqs = (s_pn, s_kc, s_apl, s_mbon, s_dn)
        if rec is not None:  # (s_kc is None only when neither is asked for)
            for name, s in zip(POPULATIONS, seqs, strict=True):
                rec[name].extend(s.detach().unbind(0))
        if acc is not None:
            for name, s in zip(POPULATIONS, seqs, strict=True):
                acc[name] = acc[name] + s.sum(0) if name in acc else s.sum(0)
        return BrainState(pn_st, kc_st, apl_st, mbon_st, dn_st, s_apl[-1], rate)

    def step(
        self,
        obs: torch.Tensor,
        state: BrainState,
        record: bool = False,
        params: dict | None = None,
        summary: bool = False,
    ) -> tuple[torch.Tensor, BrainState, dict[str, torch.Tensor] | None]:
        """One agent step (``substeps`` brain steps) on constant ORN input.

        Args:
            obs: (B, 2, n_glom) ORN rates in [0, 1] or an OdorTaxis "orn" observation;
                with plasticity, a 2-D observation whose last column is the
                reinforcement (OdorConditioning).
            state: from ``init_state(B)`` or the previous step.
            record: also return each population's spikes.
            params: ``self._params()`` cached by ``forward`` (computed if None).
            summary: also return differentiable (surrogate-gradient) per-neuron firing
                rates over this agent step, ``{"rate_hz/<POP>": (B, 2, n)}``, for
                sparsity and activity losses.
        Returns:
            action (B, 2) in (-1, 1), the new state, and None or a dict with the record
            {population: (substeps, B, 2, n) spikes} and/or the summary rates.
        """
        orn = self.orn_rates(obs)
        batch = orn.shape[0]
        if state.rate.shape[1] != 2 * batch:
            raise ValueError(
                f"state is for batch {state.rate.shape[1] // 2}, observation for batch {batch}"
            )
        p = self._params() if params is None else params
        pl = self.plasticity
        full_state, plastic = state, None
        if pl is not None:
            if not isinstance(state, PlasticBrainState):
                raise ValueError("a plastic brain needs its PlasticBrainState (init_state)")
            reinforcement = self.reinforcement(obs)
            plastic = {"factors": state.kc_mbon_factor}
            state = state.core
        rates = torch.cat([orn[:, 0].t(), orn[:, 1].t()], dim=1)  # (n_glom, 2B)
        x_wind, trace = None, None  # wind -> DN kicks, constant over the agent step
        if self.config.wind_obs_columns is not None:
            channels = self.wind_channels(obs)
            if self.config.wind_odor_gate:
                gate, trace = self._odor_gate(rates, state.odor_trace)
                channels = channels * gate
            x_wind = self.w_wind_dn @ channels * self.config.dt_ms
        rates = self._antennal_lobe(rates)
        x_pn = self.glom_to_pn @ (p["orn_gain"] * rates) * self.config.dt_ms
        rec = {k: [] for k in POPULATIONS} if record else None
        acc: dict | None = {} if summary else None
        if self._use_fused(x_pn):
            state = self._chunk_fused(x_pn, state, p, rec, acc, plastic, x_wind)
        else:
            for _ in range(self.config.substeps):
                state = self._brain_step(x_pn, state, p, rec, acc, plastic, x_wind)
        if pl is not None:  # the plasticity rule, once per agent step
            dan = pl.dan_rates(reinforcement).to(state.rate.dtype)
            factors, elig = pl.update(
                full_state.kc_mbon_factor,
                full_state.kc_eligibility,
                plastic["kc_count"],
                dan,
                self.config.substeps * self.config.dt_ms,
            )
            state = PlasticBrainState(*state[:7], factors, elig, dan)
        if trace is not None:
            state = state._replace(odor_trace=trace)
        r = state.rate
        feats = torch.cat([r[:, :batch], r[:, batch:]], dim=0)  # (2 n_dn, B)
        action = torch.tanh(self.readout.weight @ feats + self.readout.bias[:, None]).t()
        if self.config.drive_floor is not None:
            action = action.clamp(min=self.config.drive_floor)
        out = None
        if rec is not None:
            out = {k: _to_batch_side(torch.stack(v), batch) for k, v in rec.items()}
        if acc is not None:
            per_s = 1000.0 / (self.config.substeps * self.config.dt_ms)
            rates = {
                f"rate_hz/{k}": _to_batch_side(v[None] * per_s, batch)[0] for k, v in acc.items()
            }
            out = {**(out or {}), **rates}
        return action, state, out

    def forward(
        self, obs_sequence: torch.Tensor, state: BrainState | None = None, record: bool = False
    ) -> tuple[torch.Tensor, BrainState, dict[str, torch.Tensor] | None]:
        """Open-loop sequence: obs (T, B, ...) -> actions (T, B, 2), last state, and
        None or a record {population: (T * substeps, B, 2, n)}."""
        if obs_sequence.dim() < 3:
            raise ValueError(f"obs_sequence must be (T, B, ...), got {tuple(obs_sequence.shape)}")
        batch = obs_sequence.shape[1]
        state = self.init_state(batch, obs_sequence.device) if state is None else state
        p = self._params()
        actions, recs = [], []
        for obs in obs_sequence:
            a, state, r = self.step(obs, state, record, p)
            actions.append(a)
            if r is not None:
                recs.append(r)
        out = {k: torch.cat([r[k] for r in recs]) for k in POPULATIONS} if record else None
        return torch.stack(actions), state, out

    def extra_repr(self) -> str:
        return (
            f"glomeruli={self.n_glom}, pn={self.n_pn}, kc={self.n_kc}, mbon={self.n_mbon}, "
            f"dn={self.n_dn}x2, dt_ms={self.config.dt_ms}, substeps={self.config.substeps}"
        )


ABLATIONS = (
    "intact",
    "mbon_dn_zeroed",
    "no_lateral_horn",
    "no_contrast",
    "no_handedness_bias",
    "no_odor_to_dn",
    "no_wind",
    "no_wind_gate",
    "no_wind_surge",
    "no_drive_floor",
    "no_plasticity",
    "mb_gains_reset",
)
"""Controls ``ablate`` applies (module docstring)."""


@torch.no_grad()
def ablate(brain: OlfactoryBrain, name: str) -> OlfactoryBrain:
    """Switch one invented part of ``brain`` off, in place (``ABLATIONS``); returns it.

    Meant for evaluation: zeroed weights stay learnable, so training would regrow them.
    """
    if name not in ABLATIONS:
        raise ValueError(f"unknown ablation {name!r}; choose one of {ABLATIONS}")
    if name in ("mbon_dn_zeroed", "no_odor_to_dn"):
        brain.w_mbon_dn_ipsi.zero_()
        brain.w_mbon_dn_contra.zero_()
        if brain.plasticity is not None:  # the valence bias is MBON output too
            brain.plasticity.w_valence_ipsi.zero_()
            brain.plasticity.w_valence_contra.zero_()
    if name in ("no_lateral_horn", "no_odor_to_dn"):
        if brain.config.lateral_horn:  # without the shortcut there is nothing to remove
            brain.w_pn_dn_ipsi.zero_()
            brain.w_pn_dn_contra.zero_()
    if name == "no_wind" and brain.config.wind_obs_columns is not None:
        brain.w_wind_dn.zero_()
    if name == "no_wind_gate":  # the wind steers whatever the odor
        brain.config.wind_odor_gate = False
    if name == "no_wind_surge" and brain.config.wind_obs_columns is not None:
        brain.w_wind_dn[:, 1].zero_()  # "from the front": the upwind surge
    if name == "no_drive_floor":  # either side may drive backward again
        brain.config.drive_floor = None
    if name == "no_plasticity":
        if brain.plasticity is None:
            raise ValueError("no_plasticity: this brain has no plasticity to switch off")
        brain.plasticity.log_depression_rate.fill_(-math.inf)  # rate exp(-inf) = 0
    if name == "mb_gains_reset":
        if not brain.config.mb_output_gains:
            raise ValueError(
                "mb_gains_reset: this brain has no mushroom-body gains (mb_output_gains=False)"
            )
        brain.kc_mbon_log_gain.zero_()  # gain exp(0) = 1
        brain.mbon_dn_log_gain.zero_()
    if name == "no_contrast":
        brain.config.bilateral_contrast = 0.0
    elif name == "no_handedness_bias":
        if torch.nn.utils.parametrize.is_parametrized(brain.readout, "bias"):
            raise ValueError(
                "this brain's readout bias is parametrized (e.g. mirror_readout=True); its "
                "handedness is fixed by the parametrization, not ablatable here"
            )
        bias = brain.readout.bias
        bias.copy_(bias.mean().expand_as(bias))
    return brain


def _to_batch_side(s: torch.Tensor, batch: int) -> torch.Tensor:
    """(T, n, 2B) -> (T, B, 2, n)."""
    t, n, _ = s.shape
    return s.reshape(t, n, 2, batch).permute(0, 3, 2, 1)


def kc_activity_fraction(record: dict[str, torch.Tensor], skip_steps: int = 0) -> torch.Tensor:
    """Fraction of KCs that spiked at least once after ``skip_steps``: (B, 2)."""
    kc = record["KC"][skip_steps:]
    return (kc.sum(0) > 0).float().mean(-1)


__all__ = [
    "ABLATIONS",
    "BrainState",
    "MBPlasticityConfig",
    "OlfactoryBrain",
    "OlfactoryBrainConfig",
    "POPULATIONS",
    "PlasticBrainState",
    "ablate",
    "kc_activity_fraction",
]
