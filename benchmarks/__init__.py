"""Benchmarks of tfmeta; see benchmarks/README.md. Results land in benchmarks/results/."""
