"""Lazy-label regimes as plug-ins, and their registry."""
