"""Lantern: a local, grounded assistant that answers from a knowledge base and verifies every claim."""

__version__ = "0.1.0"
