"""simtui: the terminal dashboard of the self-healing patch simulator."""
