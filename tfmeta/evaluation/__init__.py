"""Evaluation: the scoring shared by every model, so their numbers are comparable."""
