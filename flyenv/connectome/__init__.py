"""Real connectome and receptor data: the FlyWire mushroom body and DoOR ORN responses."""

from flyenv.connectome.door import DoorData, OrnConfig, OrnFrontEnd, load_door
from flyenv.connectome.mushroom_body import (
    ConnectomeDataError,
    MushroomBody,
    Neurons,
    load_mushroom_body,
)

__all__ = [
    "ConnectomeDataError",
    "DoorData",
    "MushroomBody",
    "Neurons",
    "OrnConfig",
    "OrnFrontEnd",
    "load_door",
    "load_mushroom_body",
]
