"""The bilateral FlyWire mushroom-body brain, its fused kernels and its policy wrapper."""
