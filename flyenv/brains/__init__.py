"""Spiking brains, one subpackage per brain.

- ``core``: what several brains share: surrogate spike functions, the current-based LIF
  population, the sparse connectome-constrained linear layer.
- ``olfactory``: the bilateral FlyWire mushroom-body brain, its fused KC <-> APL and LIF
  chunk kernels, and its policy wrapper for the walking envs.
- ``whole_brain``: the connectome-constrained whole-brain LIF network and its kernel.
- ``lateral_line``: the fish lateral-line LL -> MON -> TS network with STDP.
- ``ei_assembly``: the conductance-based E/I assembly network (firing statistics).

The names below are re-exported here because user code imports them from
``flyenv.brains``.
"""

from flyenv.brains.core.connectome_layer import ConnectomeLinear
from flyenv.brains.core.neurons import LIFConfig, LIFPopulation, LIFState
from flyenv.brains.core.surrogate import SURROGATES, spike
from flyenv.brains.olfactory.brain import BrainState, OlfactoryBrain, OlfactoryBrainConfig

__all__ = [
    "SURROGATES",
    "BrainState",
    "ConnectomeLinear",
    "LIFConfig",
    "LIFPopulation",
    "LIFState",
    "OlfactoryBrain",
    "OlfactoryBrainConfig",
    "spike",
]
