"""Spiking brains: LIF neurons, connectome layers, the olfactory brain."""

from flyenv.brains.connectome_layer import ConnectomeLinear
from flyenv.brains.neurons import LIFConfig, LIFPopulation, LIFState
from flyenv.brains.olfactory import BrainState, OlfactoryBrain, OlfactoryBrainConfig
from flyenv.brains.surrogate import SURROGATES, spike

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
