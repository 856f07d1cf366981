"""Prompt specs, rendering and the versioned prompt library."""
