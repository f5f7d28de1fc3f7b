"""Reusable training code (BPTT through the kinematic twin, checkpoints)."""
