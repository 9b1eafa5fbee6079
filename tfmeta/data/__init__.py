"""Data: raw readers, the dataset registry, the period schema and tf.data input."""
