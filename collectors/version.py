"""The agent's version (one source: the agent distribution reads it from here)."""

__version__ = "0.1.0"
