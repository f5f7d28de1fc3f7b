"""Conductance-based LIF and the E/I assembly network (FiringStatistics env)."""
