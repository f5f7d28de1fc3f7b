"""The connectome-constrained whole-brain LIF network (WholeBrainActivity env)."""
