"""Beam pipelines that build period datasets (locally, or on Dataflow)."""
