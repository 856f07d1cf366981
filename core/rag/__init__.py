"""Retrieval-augmented generation: load -> clean -> chunk -> embed -> store (LanceDB), retrieve, answer with citations.

The stable entry points live in `core.rag.api`; import from there. Nothing here imports torch at import time.
"""
