"""LLM backends behind one interface (see base.py) and a registry that picks one from settings."""
