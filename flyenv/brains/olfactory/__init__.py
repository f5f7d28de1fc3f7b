"""The bilateral FlyWire mushroom-body (olfactory) brain, its fused kernels and its policy wrapper."""
