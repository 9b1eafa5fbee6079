"""Temporal strategies: how a model's parameters move from period to period."""
