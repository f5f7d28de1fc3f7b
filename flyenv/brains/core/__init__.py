"""Building blocks several brains share: surrogate spikes, LIF populations, connectome layers."""
