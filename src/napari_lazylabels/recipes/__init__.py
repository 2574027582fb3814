"""Recipes: the engine and the I/O layer put together (the one training recipe, the demo)."""
