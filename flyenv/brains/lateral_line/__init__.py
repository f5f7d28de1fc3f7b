"""The fish lateral-line LL -> MON -> TS spiking network with STDP (docs/lateral_line.md)."""
