"""Integration with stable-baselines3 (vector env adapters; policies come later)."""
