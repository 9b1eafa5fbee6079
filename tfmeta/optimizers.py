"""Optimizers by name, including one whose step does not grow with the embedding tables.

tf-keras' Adam turns a sparse (IndexedSlices) gradient into a whole-table update: every
step decays every row's moments and moves every row, so a step costs O(table rows) and
an epoch O(rows x ids), quadratic in the data (benchmarks/results/scaling.md measured
Adam's table update at 1.4 ms per step for 16k ids and 8.6 ms for 159k). `LazyAdam`
updates only the rows a batch read, as TF Addons' LazyAdam did: moments and parameters
of those rows take Adam's step, the other rows are left as they are (Adam would keep
moving them along their old momentum). So its results differ from Adam's; dense
gradients (MLP weights) get Adam's own update.

    OPTIMIZERS: "adam" (the default everywhere), "lazy-adam"
"""
from __future__ import annotations

import tensorflow as tf

from tfmeta.choices import OPTIMIZERS


class LazyAdam(tf.keras.optimizers.Adam):
    """Adam that updates only the rows of a sparse gradient (see the module)."""

    def update_step(self, gradient, variable):
        if not isinstance(gradient, tf.IndexedSlices) or self.amsgrad:
            return super().update_step(gradient, variable)
        dtype = variable.dtype
        step = tf.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        beta_1_power, beta_2_power = tf.pow(beta_1, step), tf.pow(beta_2, step)
        alpha = (tf.cast(self.learning_rate, dtype) * tf.sqrt(1 - beta_2_power)
                 / (1 - beta_1_power))
        epsilon = (self.epsilon * tf.sqrt(1 - beta_2_power) if self.adaptive_epsilon
                   else self.epsilon)
        key = self._index_dict[self._var_key(variable)]
        m, v = self._momentums[key], self._velocities[key]
        # Repeated rows (an id twice in a batch) are summed first, as a dense gradient is.
        rows, position = tf.unique(gradient.indices)
        values = tf.math.unsorted_segment_sum(gradient.values, position, tf.size(rows))
        m_rows = tf.gather(m, rows) * beta_1 + values * (1 - beta_1)
        v_rows = tf.gather(v, rows) * beta_2 + tf.square(values) * (1 - beta_2)
        m.scatter_update(tf.IndexedSlices(m_rows, rows))
        v.scatter_update(tf.IndexedSlices(v_rows, rows))
        variable.scatter_sub(tf.IndexedSlices(m_rows * alpha / (tf.sqrt(v_rows) + epsilon),
                                              rows))


def make(name: str, learning_rate: float) -> tf.keras.optimizers.Optimizer:
    """The optimizer called `name` (OPTIMIZERS)."""
    if name == "adam":
        return tf.keras.optimizers.Adam(learning_rate)
    if name == "lazy-adam":
        return LazyAdam(learning_rate)
    raise ValueError(f"unknown optimizer {name!r}; choose from {', '.join(OPTIMIZERS)}")
