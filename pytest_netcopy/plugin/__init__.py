"""Everything pytest: hooks, options, fixtures, the gate's wiring, the terminal summary."""
