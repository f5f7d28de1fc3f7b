"""Evaluation functions usable as ``flyenv sweep`` cells: ``fn(config, seed, run_dir) -> dict``."""
