"""Training drivers: run a method over a period dataset and score it."""
