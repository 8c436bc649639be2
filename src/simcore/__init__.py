"""simcore: the engine of the self-healing patch simulator (no UI imports here)."""

__version__ = "0.1.0"
