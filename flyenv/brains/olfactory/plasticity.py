"""Dopamine-gated KC->MBON plasticity in the mushroom body (optional part of ``OlfactoryBrain``).

In the fly the mushroom body is where odor valence is learned: dopaminergic neurons
(DANs; PAM cluster: reward, PPL1 cluster: punishment) gate plasticity at the Kenyon
cell (KC) -> mushroom-body output neuron (MBON) synapses compartment by compartment,
and the MBONs of each compartment bias approach or avoidance (Aso et al. 2014a eLife
3:e04577, 2014b eLife 3:e04580; Hige et al. 2015 Neuron 88:985). This module gives the
``OlfactoryBrain`` that circuit, from the FlyWire v783 mushroom body it already uses.
Switched on by ``OlfactoryBrainConfig(plasticity=MBPlasticityConfig())``; off (None) by
default, and then nothing of the brain changes. Longer write-up:
``docs/mushroom_body_learning.md``.

Compartments (how they were derived)
------------------------------------
FlyWire v783 types its MBONs and DANs with the hemibrain numbering (Scheffer et al. 2020
eLife 9:e57443; Li et al. 2020 eLife 9:e62576): ``MBON01``..``MBON35``, ``PAM01``..``PAM15``,
``PPL101``..``PPL108``, ``PPL201``..``PPL204``. The hemibrain *instance* name of each type
carries its compartments, e.g. ``MBON01(y5B'2a)``, ``MBON11(y1pedc>a/B)``,
``PAM07(y4<y1y2)``, ``PPL103(y2a'1)``. ``MBON_COMPARTMENTS`` and ``DAN_COMPARTMENTS``
copy those labels and reduce them to 17 canonical compartments: the 15 lobe
compartments γ1-γ5, α1-α3, β1-β2, α'1-α'3, β'1-β'2 (sub-compartments such as β'2mp,
β'2a, β'2d, α'3ap, α2sc, γ5d go to their parent), ``pedc`` (the pedunculus part of
γ1pedc) and the calyx. Only dendritic / teaching compartments count: the part after ``>`` of an MBON
(``MBON05(y4>y1y2)``: dendrites in γ4, axon to γ1γ2) and after ``<`` of a DAN
(``PAM07(y4<y1y2)``: teaches γ4, input in γ1γ2) is dropped. PPL106 has no compartment
in its name; it is α3 from the data (its only MBON target here is MBON14(α3) and its KC
targets are αβ KCs). PPL107 and PPL108 carry no compartment in the name and have
(almost) no KC synapses: they get none, and so gate nothing; the PPL2 neurons
(PPL201-204) innervate the calyx and lateral horn and are not reinforcement DANs in
the PAM/PPL1 sense: also none. PAM09 (β1ped) is β1 only: its pedunculus part lies
next to β1, not in γ1pedc. FlyWire merges hemibrain MBON25 (γ1γ2) and MBON34 (γ2) into
one type, ``MBON25,MBON34``: γ1, γ2.

Each KC->MBON synapse is placed in a compartment from the data: its MBON's compartments
intersected with the lobe its KC's axon runs in (FlyWire KC types: ``KCg-*`` -> γ lobe,
``KCab*`` -> α/β lobes and the pedunculus core, ``KCapbp-*``/``KCa'b'*`` -> α'/β' lobes; the
calyx has every KC). A γ KC onto MBON01(γ5β'2a) is a γ5 synapse, an α'β' KC onto it a
β'2 one. Where several compartments remain (MBON30(γ1γ2γ3) and a γ KC) the synapse is
gated by their mean dopamine; where none remains (a KC of the wrong lobe: 16 of
7,485 edges) it is not plastic.

The DAN->MBON edges of the data (303 DAN edges, 182 onto MBONs) check the name-based
table: ``MBCompartments.dan_mbon_agreement`` is the fraction of DAN->MBON synapses
(from DANs with a compartment) between a DAN and an MBON that share a compartment
(0.966 here).

Table (this data, ``compartment_table()``; cells of the right hemisphere; valence of the
compartment's MBONs in the default "compartment" mode; KC->MBON edges (synapses) placed
in the compartment, the 171 mixed-compartment edges counted in each)::

    comp.  DAN types (cells)                                valence   KC->MBON
    γ1     PPL101, PPL102                                   approach    785 (5,306)
           MBONs: MBON11, MBON20, MBON25,MBON34 (3), MBON30
    γ2     PPL103                                           approach    182 (1,028)
           MBONs: MBON12 (2), MBON20, MBON25,MBON34 (3), MBON30, MBON32, MBON33, MBON35
    γ3     PAM12 (12)                                       mixed       970 (6,136)
           MBONs: MBON09 (2), MBON30, MBON33
    γ4     PAM07 (10), PAM08 (22)                           avoid        25 (152)
           MBONs: MBON05, MBON21, MBON29
    γ5     PAM01 (20), PAM15                                avoid       117 (933)
           MBONs: MBON01, MBON21, MBON24, MBON27, MBON29
    α1     PAM11 (8)                                        avoid     1,263 (9,695)
           MBONs: MBON07 (2)
    α2     PPL105                                           approach    656 (5,041)
           MBONs: MBON18, MBON19 (2), MBON23
    α3     PPL106                                           approach  1,179 (9,581)
           MBONs: MBON14 (2), MBON19 (2)
    β1     PAM09 (5), PAM10 (7)                             avoid         0 (0)
           MBONs: MBON06
    β2     PAM03 (6), PAM04 (15)                            avoid       359 (2,338)
           MBONs: MBON02, MBON24
    α'1    PPL103                                           approach    541 (4,062)
           MBONs: MBON12 (2), MBON15 (2), MBON15-like (2), MBON31
    α'2    PPL105                                           approach    340 (2,746)
           MBONs: MBON13, MBON15-like (2), MBON17-like
    α'3    PPL104                                           approach    381 (2,558)
           MBONs: MBON16, MBON17, MBON17-like, MBON28
    β'1    PAM13 (6), PAM14 (8)                             avoid        10 (53)
           MBONs: MBON09 (2), MBON10 (5)
    β'2    PAM02 (8), PAM03 (6), PAM05 (10), PAM06 (15), PAM15 avoid       138 (1,726)
           MBONs: MBON01, MBON02, MBON03, MBON04, MBON26
    pedc   PPL101                                           approach    315 (2,141)
           MBONs: MBON11
    calyx  (none)                                           none        481 (3,213)
           MBONs: MBON22

16 of the 7,485 KC->MBON edges have no compartment (KC of another lobe) and stay fixed.
The DAN->MBON agreement is 0.966. β1's only MBON (MBON06) has no KC->MBON edge of >= 5
synapses in this data, so β1 is taught but has nothing to teach.

Valence of an MBON's output (model choice, ``MBPlasticityConfig.valence``):

* ``"compartment"`` (default): an MBON is avoidance-promoting (-1) if the dopamine it
  receives in the data comes from PAM (reward) DANs, approach-promoting (+1) if from
  PPL1 (punishment) DANs (DAN->MBON synapse counts; MBONs without DAN edges: the DANs
  of their compartments), 0 if neither (MBON22, calyx). This is the "valence balance"
  model (Aso et al. 2014b; Owald & Waddell 2015 Curr Opin Neurobiol 35:178): reward
  depresses the KC synapses onto avoidance MBONs of PAM compartments, so the odor's
  net MBON output shifts to approach; punishment depresses approach MBONs of PPL1
  compartments, shifting it to avoidance.
* ``"transmitter"``: glutamatergic MBONs avoid (-1), GABAergic and cholinergic MBONs
  approach (+1): Aso et al. 2014b's finding for optogenetic MBON activation. It agrees
  with ``"compartment"`` for 31 of the 47 MBON cells that have a compartment valence;
  it differs for the GABAergic/cholinergic MBONs of PAM compartments (MBON09, 10, 21,
  24, 26, 27, 29) and the glutamatergic MBONs of PPL1 compartments (MBON25,MBON34, 30).

DAN drive (model choice): DANs are rate units, not spiking neurons. With reinforcement
``R`` in [-1, 1] (the last observation column): every PAM DAN has rate
``dan_gain * max(R, 0)``, every PPL1 DAN ``dan_gain * max(-R, 0)``, the others 0, the
same on both hemispheres (sugar and shock are not lateralised). The dopamine of a
compartment, ``D_c``, is the mean rate of its DANs.

Plasticity rule (per agent step of length ``Δ`` = substeps x dt; per fly and hemisphere)::

    e_k  <- e_k exp(-Δ / tau_e) + n_k                    KC eligibility trace
    f_s  <- f_s exp(-Δ  eta_dep(s) e_k(s))               coincidence: depression
    f_s  <- f_s + (1 - f_s) (1 - exp(-Δ eta_rec(s)))     dopamine alone: recovery to 1
    eta_dep(s) = sum_c A_sc eta_dep_c D_c,   eta_rec(s) = sum_c A_sc eta_rec_c D_c

``n_k``: spikes of KC ``k`` in this agent step; ``A_sc``: 1/(number of compartments) of
synapse ``s`` in compartment ``c``, else 0; ``f_s``: the synapse's plastic factor, so its
weight is ``w_s = f_s x`` the learned baseline weight of ``kc_mbon`` (shared by all
flies). The MBONs of an agent step see the factors from the start of the step; the
update uses that step's KC spikes and reinforcement.

* Depression by coincident KC activity and dopamine: Hige et al. 2015 (pairing odor
  with PPL1-γ1pedc activation depresses that odor's KC->MBON-γ1pedc>α/β synapses and
  leaves unpaired odors alone); Cohn et al. 2015 Cell 163:1742 (compartment-
  specific). The rate is multiplicative (``exp``), so a weight stays positive.
* Eligibility trace: the KC activity must precede or overlap dopamine (Hige et al. 2015
  pair a 1 s odor with DAN activation; Handler et al. 2019 Cell 178:60: KC activity
  followed by dopamine within seconds depresses). ``tau_e`` = 1 s is a model choice on
  that scale.
* Recovery: dopamine without KC activity returns depressed synapses toward baseline,
  the forgetting / extinction side of the same compartment (Berry, Phan & Davis 2018
  Cell Rep 25:651: DAN activity bidirectionally modulates the memory trace; Cohn et
  al. 2015 and Handler et al. 2019: dopamine not preceded by KC activity potentiates).
  Slow by default (0.05 per s per unit dopamine).
* Without dopamine (``D_c = 0`` everywhere) ``exp(0) = 1`` and ``1 - exp(0) = 0``
  exactly: no change, whatever the KCs do.

Valence bias on the DNs (model choice): per hemisphere, ``v = sum_m sigma_m s_m`` (MBON
spikes weighted by their valence sign ``sigma``: +1 approach, ``-avoid_weight`` avoid,
0 mixed) is a kick into every DN, ipsilateral
with learnable weight ``w_valence_ipsi`` (init ``+valence_init_mv / sqrt(n_MBON)``) and
contralateral with ``w_valence_contra`` (init the negative): the DNs' push-pull
comparator, so more approach-MBON output on one side turns the fly to that side
(the crossed readout), more avoidance output turns it away. ``avoid_weight`` balances
the two groups: in the fly, naive odors drive approach and avoidance MBONs about equally
and learning tips the balance (Aso et al. 2014b; Owald & Waddell 2015 Curr Opin Neurobiol
35:178). With the default 1 the naive sum is not neutral (the approach MBONs fire more),
so the valence carries odor concentration as well as learned value; 1.589 makes the
summed naive response to the odors of the training phase zero (calibrated on training
pairs, docs/mushroom_body_learning.md).

Learnable (``learn_*`` flags): per-compartment log depression and recovery rates, the
eligibility time constant, the valence->DN weights; with the rest of the brain
(MBON->DN, DN readout, the baseline KC->MBON weights) BPTT through the twin trains how
the brain learns within an episode (learning to learn). Plastic factors, eligibility
traces and DAN rates are episode state (``OlfactoryBrain.init_state``): per fly, reset
by a new ``init_state``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

COMPARTMENTS = (
    "γ1", "γ2", "γ3", "γ4", "γ5", "α1", "α2", "α3", "β1", "β2",
    "α'1", "α'2", "α'3", "β'1", "β'2", "pedc", "calyx",
)  # fmt: skip
"""The 15 lobe compartments, the pedunculus and the calyx."""

MBON_COMPARTMENTS: dict[str, tuple[str, tuple[str, ...]]] = {
    # type: (hemibrain instance label, dendritic compartments)
    "MBON01": ("γ5β'2a", ("γ5", "β'2")),
    "MBON02": ("β2β'2a", ("β2", "β'2")),
    "MBON03": ("β'2mp", ("β'2",)),
    "MBON04": ("β'2mp_bilateral", ("β'2",)),
    "MBON05": ("γ4>γ1γ2", ("γ4",)),
    "MBON06": ("β1>α", ("β1",)),
    "MBON07": ("α1", ("α1",)),
    "MBON08": ("γ3", ("γ3",)),
    "MBON09": ("γ3β'1", ("γ3", "β'1")),
    "MBON10": ("β'1", ("β'1",)),
    "MBON11": ("γ1pedc>α/β", ("γ1", "pedc")),
    "MBON12": ("γ2α'1", ("γ2", "α'1")),
    "MBON13": ("α'2", ("α'2",)),
    "MBON14": ("α3", ("α3",)),
    "MBON15": ("α'1", ("α'1",)),
    "MBON15-like": ("α'1α'2", ("α'1", "α'2")),
    "MBON16": ("α'3ap", ("α'3",)),
    "MBON17": ("α'3m", ("α'3",)),
    "MBON17-like": ("α'2α'3", ("α'2", "α'3")),
    "MBON18": ("α2sc", ("α2",)),
    "MBON19": ("α2p3p", ("α2", "α3")),
    "MBON20": ("γ1γ2", ("γ1", "γ2")),
    "MBON21": ("γ4γ5", ("γ4", "γ5")),
    "MBON22": ("calyx", ("calyx",)),
    "MBON23": ("α2sp", ("α2",)),
    "MBON24": ("β2γ5", ("β2", "γ5")),
    "MBON25": ("γ1γ2", ("γ1", "γ2")),
    "MBON25,MBON34": ("γ1γ2 / γ2 (one FlyWire type)", ("γ1", "γ2")),
    "MBON26": ("β'2d", ("β'2",)),
    "MBON27": ("γ5d", ("γ5",)),
    "MBON28": ("α'3a", ("α'3",)),
    "MBON29": ("γ4γ5", ("γ4", "γ5")),
    "MBON30": ("γ1γ2γ3", ("γ1", "γ2", "γ3")),
    "MBON31": ("α'1a", ("α'1",)),
    "MBON32": ("γ2", ("γ2",)),
    "MBON33": ("γ2γ3", ("γ2", "γ3")),
    "MBON34": ("γ2", ("γ2",)),
    "MBON35": ("γ2", ("γ2",)),
}
"""MBON type -> (hemibrain instance label, canonical dendritic compartments)."""

DAN_COMPARTMENTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "PAM01": ("γ5", ("γ5",)),
    "PAM02": ("β'2a", ("β'2",)),
    "PAM03": ("β2β'2a", ("β2", "β'2")),
    "PAM04": ("β2", ("β2",)),
    "PAM05": ("β'2p", ("β'2",)),
    "PAM06": ("β'2m", ("β'2",)),
    "PAM07": ("γ4<γ1γ2", ("γ4",)),
    "PAM08": ("γ4", ("γ4",)),
    "PAM09": ("β1ped", ("β1",)),  # its pedunculus part is next to β1, not γ1pedc's
    "PAM10": ("β1", ("β1",)),
    "PAM11": ("α1", ("α1",)),
    "PAM12": ("γ3", ("γ3",)),
    "PAM13": ("β'1ap", ("β'1",)),
    "PAM14": ("β'1m", ("β'1",)),
    "PAM15": ("γ5β'2a", ("γ5", "β'2")),
    "PPL101": ("γ1pedc", ("γ1", "pedc")),
    "PPL102": ("γ1", ("γ1",)),
    "PPL103": ("γ2α'1", ("γ2", "α'1")),
    "PPL104": ("α'3", ("α'3",)),
    "PPL105": ("α'2α2", ("α'2", "α2")),
    "PPL106": ("(none in the name; α3 from its DAN->MBON/KC edges)", ("α3",)),
    "PPL107": ("(none in the name; barely any KC synapses)", ()),
    "PPL108": ("(none in the name; barely any KC synapses)", ()),
    "PPL201": ("PPL2 (calyx, lateral horn)", ()),
    "PPL202": ("PPL2 (calyx, lateral horn)", ()),
    "PPL203": ("PPL2 (calyx, lateral horn)", ()),
    "PPL204": ("PPL2 (calyx, lateral horn)", ()),
}
"""DAN type -> (hemibrain instance label, canonical compartments it teaches)."""

VALENCE_MODES = ("compartment", "transmitter")


def _lookup(table: dict, cell_type: str, what: str) -> tuple[str, ...]:
    key = str(cell_type)
    if key not in table:
        raise KeyError(f"no compartments known for {what} type {key!r}; known: {sorted(table)}")
    return table[key][1]


def compartment_of_mbon(cell_type: str) -> tuple[str, ...]:
    """Canonical dendritic compartments of an MBON type (e.g. ``"MBON11"`` -> γ1, pedc)."""
    return _lookup(MBON_COMPARTMENTS, cell_type, "MBON")


def compartment_of_dan(cell_type: str) -> tuple[str, ...]:
    """Compartments a DAN type teaches (``()`` for PPL107/108 and PPL2)."""
    return _lookup(DAN_COMPARTMENTS, cell_type, "DAN")


def dan_cluster(cell_type: str) -> str:
    """ "PAM" (reward), "PPL1" (punishment), "PPL2" or "" from a DAN type name."""
    t = str(cell_type)
    for prefix in ("PAM", "PPL1", "PPL2"):
        if t.startswith(prefix):
            return prefix
    return ""


def kc_lobe(cell_type: str) -> str:
    """Lobe system of a FlyWire KC type: "γ", "αβ" or "α'β'"."""
    t = str(cell_type)
    if t.startswith("KCg"):
        return "γ"
    if t.startswith(("KCapbp", "KCa'b'")):
        return "α'β'"
    if t.startswith("KCab"):
        return "αβ"
    raise ValueError(f"unknown KC type {t!r}")


def lobe_of_compartment(comp: str) -> str | None:
    """The KC lobe system whose axons run through a compartment (None: the calyx, all)."""
    if comp == "calyx":
        return None
    if comp == "pedc":
        return "αβ"  # the pedunculus core of γ1pedc / β1ped
    if comp.startswith("γ"):
        return "γ"
    return "α'β'" if "'" in comp else "αβ"


@dataclass(frozen=True)
class MBCompartments:
    """The compartment structure of one mushroom body (arrays in population order)."""

    mbon_types: tuple[str, ...]
    dan_types: tuple[str, ...]
    mbon_compartments: tuple[tuple[str, ...], ...]
    dan_compartments: tuple[tuple[str, ...], ...]
    dan_cluster: tuple[str, ...]
    synapse_compartments: tuple[tuple[str, ...], ...]
    """Per KC->MBON edge (the ``kc_mbon`` layer's edge order): its compartments."""
    mbon_valence_compartment: np.ndarray  # (n_mbon,) -1 avoid, +1 approach, 0 none
    mbon_valence_transmitter: np.ndarray  # (n_mbon,)
    dan_mbon_agreement: float

    def synapse_matrix(self) -> np.ndarray:
        """(n_syn, n_comp) A: 1/k for each of a synapse's k compartments, else 0."""
        a = np.zeros((len(self.synapse_compartments), len(COMPARTMENTS)), np.float32)
        index = {c: i for i, c in enumerate(COMPARTMENTS)}
        for s, comps in enumerate(self.synapse_compartments):
            for c in comps:
                a[s, index[c]] = 1.0 / len(comps)
        return a

    def dan_matrix(self) -> np.ndarray:
        """(n_comp, n_dan): mean over a compartment's DANs."""
        m = np.zeros((len(COMPARTMENTS), len(self.dan_types)), np.float32)
        index = {c: i for i, c in enumerate(COMPARTMENTS)}
        for d, comps in enumerate(self.dan_compartments):
            for c in comps:
                m[index[c], d] = 1.0
        n = m.sum(1, keepdims=True)
        return np.divide(m, n, out=np.zeros_like(m), where=n > 0)


def build_compartments(mb, syn_pre: np.ndarray, syn_post: np.ndarray) -> MBCompartments:
    """Compartments of ``mb`` (a ``MushroomBody``) for KC->MBON edges ``syn_pre`` (KC
    index in the KC population) -> ``syn_post`` (MBON index in the MBON population)."""
    neu = mb.neurons
    kc_idx, mbon_idx, dan_idx = (mb.populations[k] for k in ("KC", "MBON", "DAN"))
    mbon_types = tuple(str(t) for t in neu.cell_type[mbon_idx])
    dan_types = tuple(str(t) for t in neu.cell_type[dan_idx])
    mbon_comps = tuple(compartment_of_mbon(t) for t in mbon_types)
    dan_comps = tuple(compartment_of_dan(t) for t in dan_types)
    clusters = tuple(dan_cluster(t) for t in dan_types)
    lobes = [kc_lobe(t) for t in neu.cell_type[kc_idx]]
    syn_comps = []
    for k, m in zip(np.asarray(syn_pre), np.asarray(syn_post), strict=True):
        comps = tuple(c for c in mbon_comps[m] if lobe_of_compartment(c) in (None, lobes[k]))
        syn_comps.append(comps)
    # DAN -> MBON synapses (data) between DANs with a compartment and their MBON targets
    dan_pos = {int(g): i for i, g in enumerate(dan_idx)}
    mbon_pos = {int(g): i for i, g in enumerate(mbon_idx)}
    pam = np.zeros(len(mbon_idx))
    ppl1 = np.zeros(len(mbon_idx))
    agree = total = 0.0
    if mb.dan_counts is not None:
        coo = mb.dan_counts.tocoo()
        for a, b, n in zip(coo.row, coo.col, coo.data, strict=True):
            d, m = dan_pos.get(int(a)), mbon_pos.get(int(b))
            if d is None or m is None or not dan_comps[d]:
                continue
            total += n
            agree += n * bool(set(dan_comps[d]) & set(mbon_comps[m]))
            if clusters[d] == "PAM":
                pam[m] += n
            elif clusters[d] == "PPL1":
                ppl1[m] += n
    # MBONs without DAN edges: the DAN cells of their compartments
    for m, comps in enumerate(mbon_comps):
        if pam[m] == 0 and ppl1[m] == 0:
            for d, dc in enumerate(dan_comps):
                if set(dc) & set(comps):
                    pam[m] += clusters[d] == "PAM"
                    ppl1[m] += clusters[d] == "PPL1"
    val_comp = np.sign(ppl1 - pam).astype(np.float32)
    nt = neu.nt[mbon_idx]
    val_nt = np.where(
        nt == "glutamate", -1.0, np.where(np.isin(nt, ["gaba", "acetylcholine"]), 1.0, 0.0)
    )
    return MBCompartments(
        mbon_types=mbon_types,
        dan_types=dan_types,
        mbon_compartments=mbon_comps,
        dan_compartments=dan_comps,
        dan_cluster=clusters,
        synapse_compartments=tuple(syn_comps),
        mbon_valence_compartment=val_comp,
        mbon_valence_transmitter=val_nt.astype(np.float32),
        dan_mbon_agreement=float(agree / total) if total else float("nan"),
    )


def compartment_table(mb=None) -> list[dict]:
    """One row per compartment from the data: DAN types and cells, MBON types and cells,
    valence of its MBONs (``"compartment"`` mode), KC->MBON edges (mixed ones counted in
    each of their compartments) and their synapse count."""
    if mb is None:
        from flyenv.connectome.mushroom_body import load_mushroom_body

        mb = load_mushroom_body()
    blk = mb.block("KC", "MBON").tocoo()
    comp = build_compartments(mb, blk.row, blk.col)
    rows = []
    for c in COMPARTMENTS:
        dans = [t for t, dc in zip(comp.dan_types, comp.dan_compartments, strict=True) if c in dc]
        mbons = [
            (t, v)
            for t, mc, v in zip(
                comp.mbon_types, comp.mbon_compartments, comp.mbon_valence_compartment, strict=True
            )
            if c in mc
        ]
        in_c = [c in sc for sc in comp.synapse_compartments]
        vals = {int(v) for _, v in mbons}
        valence = {frozenset({-1}): "avoid", frozenset({1}): "approach"}.get(
            frozenset(vals - {0}), "mixed" if vals - {0} else "none"
        )
        rows.append(
            dict(
                compartment=c,
                dan_types={t: dans.count(t) for t in dict.fromkeys(dans)},
                dan_clusters=sorted({dan_cluster(t) for t in dans}),
                mbon_types={
                    t: [x for x, _ in mbons].count(t) for t in dict.fromkeys(x for x, _ in mbons)
                },
                valence=valence,
                kc_mbon_edges=int(np.sum(in_c)),
                kc_mbon_synapses=int(np.abs(blk.data[np.asarray(in_c, bool)]).sum()),
            )
        )
    return rows


@dataclass
class MBPlasticityConfig:
    """Dopamine-gated KC->MBON plasticity (module docstring). Rates per second per unit
    of dopamine (a DAN at ``|R| = 1`` has rate ``dan_gain``)."""

    eligibility_tau_ms: float = 1000.0
    depression_rate_per_s: float = 1.0
    """eta_dep: per KC eligibility unit (one recent spike) and unit dopamine."""
    recovery_rate_per_s: float = 0.05
    dan_gain: float = 1.0
    valence: str = "compartment"
    """MBON valence signs: "compartment" (from the DANs that innervate it) or
    "transmitter" (glutamate avoid, GABA/ACh approach; Aso et al. 2014b)."""
    valence_init_mv: float = 0.3
    avoid_weight: float = 1.0
    """Weight of the avoidance MBONs in the valence sum relative to the approach ones
    (module docstring: 1.589 balances naive odor responses)."""
    learn_rates: bool = True
    learn_eligibility_tau: bool = True
    learn_valence: bool = True

    def validate(self) -> None:
        for name in ("eligibility_tau_ms", "depression_rate_per_s", "recovery_rate_per_s"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"MBPlasticityConfig.{name} must be > 0, got {v}")
        if not (math.isfinite(self.avoid_weight) and self.avoid_weight >= 0):
            raise ValueError(
                f"MBPlasticityConfig.avoid_weight must be >= 0, got {self.avoid_weight}"
            )
        if not self.dan_gain >= 0:
            raise ValueError(f"MBPlasticityConfig.dan_gain must be >= 0, got {self.dan_gain}")
        if self.valence not in VALENCE_MODES:
            raise ValueError(f"valence must be one of {VALENCE_MODES}, got {self.valence!r}")


def as_plasticity_config(x) -> MBPlasticityConfig | None:
    """None, an ``MBPlasticityConfig`` or a dict of its fields (from a TOML/JSON config)."""
    if x is None or isinstance(x, MBPlasticityConfig):
        return x
    if isinstance(x, dict):
        return MBPlasticityConfig(**x)
    raise TypeError(f"plasticity must be None, MBPlasticityConfig or dict, got {type(x).__name__}")


class MBPlasticity(nn.Module):
    """Parameters, structure and update of the plastic KC->MBON synapses.

    Layout: feature-major (n, 2B) like the brain (left-side flies first).
    """

    def __init__(self, config: MBPlasticityConfig, mb, kc_mbon, n_dn: int) -> None:
        super().__init__()
        config.validate()
        self.config = config
        pre, post = kc_mbon.pre.cpu().numpy(), kc_mbon.post.cpu().numpy()
        self.compartments = build_compartments(mb, pre, post)
        comp = self.compartments
        self.n_kc, self.n_mbon, self.n_syn = kc_mbon.n_pre, kc_mbon.n_post, len(pre)
        self.n_dan, self.n_comp = len(comp.dan_types), len(COMPARTMENTS)
        self.register_buffer("syn_pre", kc_mbon.pre.clone(), persistent=False)
        self.register_buffer("syn_post", kc_mbon.post.clone(), persistent=False)
        self.register_buffer("syn_comp", torch.from_numpy(comp.synapse_matrix()), persistent=False)
        self.register_buffer("comp_dan", torch.from_numpy(comp.dan_matrix()), persistent=False)
        cl = np.array(comp.dan_cluster)
        self.register_buffer(
            "is_pam", torch.from_numpy((cl == "PAM").astype(np.float32))[:, None], persistent=False
        )
        self.register_buffer(
            "is_ppl1",
            torch.from_numpy((cl == "PPL1").astype(np.float32))[:, None],
            persistent=False,
        )
        sign = (
            comp.mbon_valence_compartment
            if config.valence == "compartment"
            else comp.mbon_valence_transmitter
        )
        sign = np.where(sign < 0, sign * config.avoid_weight, sign).astype(np.float32)
        self.register_buffer("valence_sign", torch.from_numpy(sign)[None, :], persistent=False)

        def param(value: torch.Tensor, learn: bool, name: str) -> None:
            if learn:
                setattr(self, name, nn.Parameter(value))
            else:
                self.register_buffer(name, value)

        ones = torch.ones(self.n_comp)
        param(
            ones * math.log(config.depression_rate_per_s), config.learn_rates, "log_depression_rate"
        )
        param(ones * math.log(config.recovery_rate_per_s), config.learn_rates, "log_recovery_rate")
        param(
            torch.tensor(math.log(config.eligibility_tau_ms)),
            config.learn_eligibility_tau,
            "log_eligibility_tau",
        )
        w = config.valence_init_mv / math.sqrt(self.n_mbon)
        param(torch.full((n_dn, 1), w), config.learn_valence, "w_valence_ipsi")
        param(torch.full((n_dn, 1), -w), config.learn_valence, "w_valence_contra")

    # ------------------------------------------------------------------ state
    def init_state(self, b2: int, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(plastic factors (n_syn, 2B) = 1, KC eligibility (n_kc, 2B) = 0, DAN rates (n_dan, 2B) = 0)."""
        return (
            torch.ones(self.n_syn, b2, device=device),
            torch.zeros(self.n_kc, b2, device=device),
            torch.zeros(self.n_dan, b2, device=device),
        )

    # ------------------------------------------------------------------ pieces
    def dan_rates(self, reinforcement: torch.Tensor) -> torch.Tensor:
        """(B,) reinforcement in [-1, 1] -> (n_dan, 2B) DAN rates (both hemispheres)."""
        r = reinforcement.reshape(1, -1)
        rate = self.config.dan_gain * (
            self.is_pam * r.clamp(min=0) + self.is_ppl1 * (-r).clamp(min=0)
        )
        return torch.cat([rate, rate], dim=1)

    def dopamine(self, dan: torch.Tensor) -> torch.Tensor:
        """(n_dan, 2B) DAN rates -> (n_comp, 2B) mean dopamine per compartment."""
        return self.comp_dan.to(dan.dtype) @ dan

    def kc_mbon_input(
        self, s_kc: torch.Tensor, values: torch.Tensor, factors: torch.Tensor
    ) -> torch.Tensor:
        """KC spikes (n_kc, 2B) or (T, n_kc, 2B) -> MBON kicks with per-fly weights
        ``values[s] * factors[s, col]``."""
        w = values.to(factors.dtype)[:, None] * factors  # (n_syn, 2B)
        src = s_kc.index_select(-2, self.syn_pre) * w.to(s_kc.dtype)
        shape = (*s_kc.shape[:-2], self.n_mbon, s_kc.shape[-1])
        return torch.zeros(shape, dtype=src.dtype, device=src.device).index_add_(
            -2, self.syn_post, src
        )

    def valence(self, s_mbon: torch.Tensor) -> torch.Tensor:
        """(..., n_mbon, 2B) MBON spikes -> (..., 1, 2B) signed valence sum."""
        return self.valence_sign.to(s_mbon.dtype) @ s_mbon

    def update(
        self,
        factors: torch.Tensor,
        eligibility: torch.Tensor,
        kc_counts: torch.Tensor,
        dan: torch.Tensor,
        step_ms: float,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One agent step of the rule: new (factors, eligibility)."""
        tau = self.log_eligibility_tau.exp()
        elig = eligibility * torch.exp(-step_ms / tau) + kc_counts
        da = self.dopamine(dan)  # (n_comp, 2B)
        a = self.syn_comp.to(da.dtype)
        dt_s = step_ms / 1000.0
        dep = a @ (self.log_depression_rate.exp()[:, None] * da)  # (n_syn, 2B) per s
        rec = a @ (self.log_recovery_rate.exp()[:, None] * da)
        f = factors * torch.exp(-dt_s * dep * elig.index_select(0, self.syn_pre))
        f = f - (1.0 - f) * torch.expm1(-dt_s * rec)  # exactly f where rec == 0
        return f, elig


def compartment_mean_weight(brain, state, relative: bool = False) -> torch.Tensor:
    """Per-compartment mean KC->MBON weight of each fly: (B, 2, n_comp) (hemisphere
    axis: left, right; compartments in ``COMPARTMENTS`` order), over the synapses of
    that compartment alone (the 171 mixed-compartment synapses are left out, so a
    compartment's mean moves only with its own dopamine). The weight is in mV per
    spike (baseline x factor); ``relative``: the mean plastic factor instead (1 =
    untouched). NaN for compartments without synapses (β1)."""
    pl = brain.plasticity
    if pl is None:
        raise ValueError("this brain has no plasticity (OlfactoryBrainConfig.plasticity is None)")
    f = state.kc_mbon_factor
    w = f if relative else brain.kc_mbon.values().abs().to(f.dtype)[:, None] * f
    member = (pl.syn_comp == 1).to(f.dtype)  # (n_syn, n_comp) single-compartment synapses
    n = member.sum(0)
    mean = (member.t() @ w) / n[:, None]  # (n_comp, 2B)
    mean = torch.where(n[:, None] > 0, mean, torch.full_like(mean, float("nan")))
    b = mean.shape[1] // 2
    return torch.stack([mean[:, :b], mean[:, b:]], dim=0).permute(2, 0, 1)


__all__ = [
    "COMPARTMENTS",
    "DAN_COMPARTMENTS",
    "MBCompartments",
    "MBON_COMPARTMENTS",
    "MBPlasticity",
    "MBPlasticityConfig",
    "as_plasticity_config",
    "build_compartments",
    "compartment_mean_weight",
    "compartment_of_dan",
    "compartment_of_mbon",
    "compartment_table",
    "dan_cluster",
    "kc_lobe",
    "lobe_of_compartment",
]
